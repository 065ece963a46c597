/**
 * Hostile clients (issue 7, DESIGN guarantee 6): random bytes from many sockets at once,
 * malformed CONNECTs and packets malformed.test.ts does not cover, slowloris sockets, a
 * 256 MB announced packet, a subscriber that never reads under a QoS 0 and QoS 1 flood, and
 * connect/disconnect floods. After each, a fresh client still publishes and receives, and
 * the process's memory (the broker's, in this thread or in its worker threads) stays within
 * a wide margin of the baseline. Every wait is for an event (a close, a packet), never a timer.
 */
import { connect, type Socket } from 'node:net';
import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { publish, receive, settled, subscribe, text } from './support/flows.js';
import { randomBytes } from './support/random.js';

/** Generous: a leak of one 256 MB buffer, or of every flood's sockets, still shows. */
const MEMORY_MARGIN = 200 * 1024 * 1024;

/** Opens a plain socket; resolves once connected. */
function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    // Whatever the broker answers is read and thrown away: a socket whose input is never
    // consumed never sees the end of it, nor its 'close'.
    socket.resume();
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the socket is closed (by either side). */
function closed(socket: Socket): Promise<void> {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Runs `task` for 0..count-1 with at most `width` at a time. */
async function inBatches(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < count; start += width) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + width); i++) batch.push(task(i));
    await Promise.all(batch);
  }
}

t.test('hostile clients leave the broker serving others, memory bounded', async (t) => {
  const tb = await startBroker({ connectTimeoutMs: 300, logLevel: 'warn' });
  t.teardown(tb.stop);
  const { port } = tb;

  let fresh = 0;
  /** A new client publishes QoS 1 to a new subscriber and gets it. */
  const stillServing = async (): Promise<void> => {
    const id = ++fresh;
    const { client: sub } = await RawClient.connected(port, { clientId: `fresh-sub-${id}` });
    const { client: pub } = await RawClient.connected(port, { clientId: `fresh-pub-${id}` });
    await subscribe(sub, { [`fresh/${id}`]: 1 });
    await publish(pub, `fresh/${id}`, `hello ${id}`, 1);
    const got = await receive(sub);
    t.equal(text(got), `hello ${id}`, 'a fresh client publishes and receives');
    await pub.disconnect();
    await sub.disconnect();
  };
  await stillServing();
  const baseline = process.memoryUsage().rss;
  const memoryBounded = (what: string): void => {
    const rss = process.memoryUsage().rss;
    t.ok(
      rss < baseline + MEMORY_MARGIN,
      `${what}: RSS ${Math.round(rss / 1048576)} MB, baseline ${Math.round(baseline / 1048576)} MB`,
    );
  };

  await t.test('random bytes from 100 sockets at once, before and after CONNECT', async (t) => {
    await inBatches(100, 50, async (i) => {
      const socket = await openSocket(port);
      socket.on('error', () => {});
      if (i % 2 === 1) {
        socket.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00]));
      }
      socket.write(randomBytes(1000 + i, 8192));
      // Some random prefixes are a valid start of a long packet: the client's end (or the
      // connect timeout) closes those.
      socket.end();
      await closed(socket);
    });
    t.pass('every socket closed');
    await stillServing();
    memoryBounded('after random bytes');
  });

  await t.test('malformed CONNECTs and packets not covered by malformed.test.ts', async (t) => {
    const connect = (flags: number, rest: number[] = [], name = [0x4d, 0x51, 0x54, 0x54], level = 4): Buffer => {
      const body = [0x00, name.length, ...name, level, flags, 0x00, 0x00, 0x00, 0x01, 0x63, ...rest];
      return Buffer.from([0x10, body.length, ...body]);
    };
    const before: Array<{ name: string; bytes: Buffer }> = [
      { name: 'CONNECT reserved flag set [MQTT-3.1.2-3]', bytes: connect(0x03) },
      { name: 'will QoS 3 [MQTT-3.1.2-14]', bytes: connect(0x1e, [0, 1, 0x77, 0, 0]) },
      { name: 'will QoS without the will flag [MQTT-3.1.2-13]', bytes: connect(0x0a) },
      { name: 'password without user name [MQTT-3.1.2-22]', bytes: connect(0x42, [0, 1, 0x70]) },
      { name: 'protocol name MQTX [MQTT-3.1.2-1]', bytes: connect(0x02, [], [0x4d, 0x51, 0x54, 0x58]) },
      { name: 'protocol level 9 [MQTT-3.1.2-2]', bytes: connect(0x02, [], undefined, 9) },
      { name: 'CONNECT cut short [MQTT-1.5.4]', bytes: Buffer.from([0x10, 0x04, 0x00, 0x04, 0x4d, 0x51]) },
      {
        name: 'CONNECT with trailing bytes [MQTT-2.2.3]',
        bytes: Buffer.concat([
          connect(0x02).subarray(0, 1),
          Buffer.from([(connect(0x02)[1] as number) + 2]),
          connect(0x02).subarray(2),
          Buffer.from([1, 2]),
        ]),
      },
    ];
    for (const input of before) {
      const client = await RawClient.open(port);
      client.sendBytes(input.bytes);
      await client.waitClosed();
      const answer = client.pending[0];
      t.ok(
        answer === undefined || (answer.cmd === 'connack' && answer.returnCode === 1),
        `${input.name}: closed (at most CONNACK 0x01 first)`,
      );
    }
    const after: Array<{ name: string; bytes: number[] }> = [
      { name: 'PUBREL with flags 0000 [MQTT-3.6.1-1]', bytes: [0x60, 0x02, 0x00, 0x01] },
      { name: 'UNSUBSCRIBE with flags 0000 [MQTT-3.10.1-1]', bytes: [0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61] },
      { name: "SUBSCRIBE filter 'a+' [MQTT-4.7.1-3]", bytes: [0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 0x61, 0x2b, 0x00] },
      { name: 'PINGREQ with a body [MQTT-2.2.3]', bytes: [0xc0, 0x01, 0x00] },
      { name: 'PUBACK cut short [MQTT-1.5.4]', bytes: [0x40, 0x01, 0x00] },
    ];
    for (const input of after) {
      const { client } = await RawClient.connected(port);
      client.sendBytes(input.bytes);
      await client.waitClosed();
      t.pass(`${input.name}: closed`);
    }
    await stillServing();
  });

  await t.test(
    'slowloris: CONNECTs dribbled byte by byte that never finish, partial packets after CONNECT',
    async (t) => {
      const full = Buffer.from([
        0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78,
      ]);
      const dribblers = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const socket = await openSocket(port);
          socket.on('error', () => {});
          // One write per byte, all but the last: the CONNECT never completes.
          for (let b = 0; b < 1 + (i % (full.length - 1)); b++) socket.write(full.subarray(b, b + 1));
          return socket;
        }),
      );
      // After CONNECT (keepalive 1 s): a PUBLISH header promising more than ever comes.
      const partial = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const { client } = await RawClient.connected(port, { clientId: `partial-${i}`, keepalive: 1 });
          client.sendBytes([0x30, 0x80, 0x08, 0x00, 0x01]);
          return client;
        }),
      );
      await Promise.all(dribblers.map(closed));
      t.pass('the connect timeout closed every dribbling socket');
      await Promise.all(partial.map((c) => c.waitClosed()));
      t.pass('the keepalive closed every stalled connection');
      const s = await tb.stats();
      t.ok(s.counters.disconnects['connect-timeout'] >= 100, 'counted as connect timeouts');
      t.ok(s.counters.keepaliveTimeouts >= 20, 'counted as keepalive timeouts');
      await stillServing();
      memoryBounded('after slowloris');
    },
  );

  await t.test('a 256 MB announced packet is refused from its header, before the body is buffered', async (t) => {
    const before = await tb.stats();
    const { client } = await RawClient.connected(port, { clientId: 'huge' });
    // PUBLISH with the largest remaining length there is (268 435 455 bytes).
    client.sendBytes([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x61]);
    // A first slice of the body, as a client streaming it would send.
    client.sendBytes(Buffer.alloc(64 * 1024, 0x61));
    await client.waitClosed();
    const after = await tb.stats();
    t.equal(after.counters.limitsHit['max-packet-size'] - before.counters.limitsHit['max-packet-size'], 1);
    await stillServing();
    memoryBounded('after the 256 MB announcement');
  });

  await t.test('a subscriber that never reads, under a QoS 0 and QoS 1 flood', async (t) => {
    const { client: sub } = await RawClient.connected(port, { clientId: 'never-reads' });
    await subscribe(sub, { 'flood/#': 1 });
    sub.socket.pause();
    const pub = await mqtt.connectAsync({
      port,
      host: '127.0.0.1',
      clientId: 'flooder',
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const payload = Buffer.alloc(4096, 0x66);
    for (let round = 0; round < 40; round++) {
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        batch.push(pub.publishAsync('flood/q0', payload, { qos: 0 }));
        batch.push(pub.publishAsync('flood/q1', payload, { qos: 1 }));
      }
      await Promise.all(batch);
    }
    await pub.publishAsync('$tern-test/settle', '', { qos: 1, retain: true });
    const s = await tb.stats();
    t.ok(s.counters.messagesDropped['slow-subscriber'] > 0, 'QoS 0 dropped for the slow subscriber');
    t.ok(s.counters.messagesDropped['queue-full'] > 0, 'QoS 1 beyond its queue dropped');
    t.equal(sub.closed, false, 'the slow subscriber is still connected');
    memoryBounded('while 16 MB were published to a subscriber that never reads');
    await stillServing();
    await pub.endAsync();
    sub.destroy();
    await sub.waitClosed();
  });

  await t.test('connect/disconnect floods: 2000 CONNECT+DISCONNECT, 2000 opened and dropped', async (t) => {
    await inBatches(2000, 100, async (i) => {
      const { client, connack } = await RawClient.connected(port, { clientId: `flood-${i % 300}`, clean: i % 2 === 0 });
      if (connack.returnCode !== 0) throw new Error(`CONNACK ${connack.returnCode}`);
      if (i % 3 === 0) {
        client.destroy();
        await client.waitClosed();
      } else {
        await client.disconnect();
      }
    });
    t.pass('2000 connections came and went');
    await inBatches(2000, 100, async () => {
      const socket = await openSocket(port);
      socket.on('error', () => {});
      socket.destroy();
      await closed(socket);
    });
    t.pass('2000 sockets opened and dropped before CONNECT');
    await stillServing();
    memoryBounded('after the floods');
  });

  await t.test('the broker still counts every connection it holds', async (t) => {
    const { client } = await RawClient.connected(port, { clientId: 'last' });
    t.teardown(() => client.destroy());
    const s = await tb.stats();
    t.ok(s.gauges.connectionsOpen < 200, `${s.gauges.connectionsOpen} connections open after the floods`);
    await settled(client);
  });
});
