/**
 * What moving a persistent session between routing workers costs in bytes and time: the
 * transfer codec the broker uses (packages/broker/src/session-transfer.ts: publish-batch records
 * plus a small msgpack head) against the msgpack snapshot it replaced (@tern/session
 * encodeSnapshot / decodeSnapshot, still the format kept on disk).
 *
 *   npm run build && node benchmarks/micro/session-move.bench.mjs [--messages 10000] [--payload 64] [--rounds 9]
 *
 * Each round builds a fresh session with --messages queued QoS 1 messages (as a subscriber's
 * offline queue holds them) and times encode, decode, and taking every queued delivery out of
 * the decoded queue, with each codec, interleaved. The transfer codec makes queued messages only
 * as they are taken (a drain does it window by window, after the CONNACK), so its decode alone
 * is what a resume waits for and "decode + take" the whole work.
 * The first round is reported apart ("cold": code V8 has not compiled yet, as in a worker's
 * first move); the rest as a median ("warm"). Each codec also runs once in a process of its
 * own before anything else, so its cold figure is not warmed by the other's shared code.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeSessionTransfer, encodeSessionTransfer } from '../../packages/broker/dist/session-transfer.js';
import { decodeSnapshot, encodeSnapshot, Message, Session } from '../../packages/session/dist/index.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    payload: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '9' },
    only: { type: 'string' },
  },
});
const n = Number(values.messages);
const payloadSize = Number(values.payload);
const rounds = Number(values.rounds);
const limits = { maxInflight: 32, maxQueued: 1_000_000, overflowPolicy: 'drop-new' };

const CODECS = {
  transfer: {
    encode: (s) => encodeSessionTransfer(s),
    decode: (b) => decodeSessionTransfer(b, limits),
  },
  'msgpack snapshot': {
    encode: (s) => encodeSnapshot({ sessions: [s], retained: [] }),
    decode: (b) => decodeSnapshot(b, limits).sessions[0],
  },
};

function session() {
  const s = new Session('bench-persist', Number.POSITIVE_INFINITY, limits);
  s.setSubscription('bench/persist/#', 1);
  for (let i = 0; i < n; i++) {
    const m = new Message('bench/persist/0', Buffer.alloc(payloadSize, i & 0xff), 1, false, 'bench-pub');
    m.id = i + 1;
    m.time = Date.now();
    m.keepQueued(1);
    s.queue.restore({ message: m, qos: 1, retain: false });
  }
  return s;
}

function once(codec) {
  const s = session();
  let t = performance.now();
  const bytes = codec.encode(s);
  const encodeMs = performance.now() - t;
  t = performance.now();
  const back = codec.decode(bytes);
  const decodeMs = performance.now() - t;
  if (back.queue.length !== n) throw new Error(`decoded ${back.queue.length} of ${n}`);
  let taken = 0;
  while (back.queue.shift() !== null) taken++;
  const takeMs = performance.now() - t;
  if (taken !== n) throw new Error(`took ${taken} of ${n}`);
  return { encodeMs, decodeMs, takeMs, bytes: bytes.length };
}

if (values.only !== undefined) {
  // A child's cold run: one codec, first use in this process.
  console.log(JSON.stringify(once(CODECS[values.only])));
  process.exit(0);
}

const cold = {};
for (const name of Object.keys(CODECS)) {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--only', name, '--messages', String(n), '--payload', String(payloadSize)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  cold[name] = JSON.parse(r.stdout);
}
const warm = Object.fromEntries(Object.keys(CODECS).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) for (const [name, codec] of Object.entries(CODECS)) warm[name].push(once(codec));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => x.toFixed(1);

console.log(`${n} queued QoS 1 messages of ${payloadSize} B; Node ${process.version}; warm: median of ${rounds}`);
console.log(
  '| codec | bytes | cold encode ms | cold decode ms | cold decode + take ms | warm encode ms | warm decode ms | warm decode + take ms |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const name of Object.keys(CODECS)) {
  const w = warm[name];
  console.log(
    `| ${name} | ${cold[name].bytes} | ${fmt(cold[name].encodeMs)} | ${fmt(cold[name].decodeMs)} | ${fmt(cold[name].takeMs)} | ${fmt(median(w.map((x) => x.encodeMs)))} | ${fmt(median(w.map((x) => x.decodeMs)))} | ${fmt(median(w.map((x) => x.takeMs)))} |`,
  );
}
