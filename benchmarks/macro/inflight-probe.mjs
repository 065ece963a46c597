/**
 * How many unacknowledged QoS 1 PUBLISHes a broker sends one subscriber: the window it really
 * keeps, which decides how a redelivery benchmark reads (a broker that keeps a window of W
 * drains N queued messages in about N / W round trips; one that does not, in a stream).
 *
 *   node benchmarks/macro/inflight-probe.mjs --port 1883 [--messages 2000] [--acks 0,1,5]
 *
 * For each count k in --acks, twice:
 *   live     a subscriber (QoS 1) that acknowledges only the first k PUBLISHes it gets, while a
 *            publisher sends --messages QoS 1 messages;
 *   resumed  the same subscriber as a persistent session (cleanSession=0) that was away while
 *            they were published, then reconnects.
 * It then counts the PUBLISHes that arrive within --wait seconds (default 1). A broker that
 * keeps a window of W shows W + k; more than that means each acknowledgement let more through.
 * The broker needs room for --messages queued per session (mosquitto: max_queued_messages 0;
 * Tern: --max-queued). Loopback only; every client id starts with "probe-".
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { encode } from '@tern/protocol';
import { connectBytes, DISCONNECT_BYTES, encodeAck, FrameScanner, publishPacketId, subscribeBytes } from './wire.mjs';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '1883' },
    messages: { type: 'string', default: '2000' },
    acks: { type: 'string', default: '0,1,5' },
    wait: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const host = values.host;
const port = Number(values.port);
const messages = Number(values.messages);
const acks = values.acks.split(',').map(Number);
const waitMs = Number(values.wait) * 1000;
if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !host.startsWith('127.')) {
  process.stderr.write('inflight-probe: loopback hosts only\n');
  process.exit(2);
}
const topic = `probe/${process.pid}`;

/** A connected client: resolves once CONNACK arrives; `onPacket(first, buf, start, end)` for the rest. */
function client(clientId, clean, onPacket) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let connected = false;
    const scanner = new FrameScanner((first, buf, start, end) => {
      if (!connected && first >> 4 === 2) {
        connected = true;
        resolve(socket);
      } else onPacket(first, buf, start, end, socket);
    });
    socket.on('data', (chunk) => scanner.push(chunk));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(connectBytes(clientId, clean, 60)));
  });
}

/** Resolves when the client of `state` next gets a packet of `type` (9: SUBACK). */
const nextPacket = (state, type) =>
  new Promise((resolve) => {
    state.waiting = { type, resolve };
  });

/** A subscriber that acknowledges only its first `k` PUBLISHes; `counts.received` counts them all. */
async function subscriber(clientId, clean, k, counts) {
  const state = {};
  const socket = await client(clientId, clean, (first, buf, start, _end, s) => {
    if (first >> 4 === 3) {
      counts.received++;
      if (counts.received <= k) s.write(encodeAck('puback', publishPacketId(buf, start)));
    } else if (state.waiting && first >> 4 === state.waiting.type) state.waiting.resolve();
  });
  return { socket, state };
}

async function publishAll() {
  let acked = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const pub = await client(`probe-pub-${process.pid}`, true, (first) => {
    if (first >> 4 === 4 && ++acked === messages) done();
  });
  const payload = Buffer.alloc(16);
  const packets = [];
  for (let i = 0; i < messages; i++) {
    packets.push(encode({ cmd: 'publish', topic, qos: 1, messageId: (i % 65535) + 1, payload, retain: false }, 4));
  }
  pub.write(Buffer.concat(packets));
  await all;
  pub.end(DISCONNECT_BYTES);
}

const close = (socket) =>
  new Promise((resolve) => {
    socket.once('close', resolve);
    socket.end(DISCONNECT_BYTES);
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function probe(mode, k) {
  const id = `probe-sub-${process.pid}-${mode}-${k}`;
  const counts = { received: 0 };
  // Start from no session.
  await close(await client(id, true, () => {}));
  let sub = await subscriber(id, mode === 'live', k, counts);
  sub.socket.write(subscribeBytes(1, topic, 1));
  await nextPacket(sub.state, 9);
  if (mode === 'resumed') {
    await close(sub.socket);
    await publishAll();
    sub = await subscriber(id, false, k, counts);
  } else {
    await publishAll();
  }
  await sleep(waitMs);
  await close(sub.socket);
  // Leave no session behind.
  await close(await client(id, true, () => {}));
  return counts.received;
}

const rows = [];
for (const mode of ['live', 'resumed']) {
  for (const k of acks) rows.push({ mode, acked: k, received: await probe(mode, k) });
}
if (values.json) console.log(JSON.stringify({ host, port, messages, rows }));
else {
  console.log(
    `${messages} QoS 1 messages; PUBLISHes received within ${values.wait} s by a subscriber that acknowledges only the first k:`,
  );
  console.log('| subscriber | k | received | window implied (received - k) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.mode} | ${r.acked} | ${r.received} | ${r.received - r.acked} |`);
}
process.exit(0);
