import type { Packet } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t, { type Test } from 'tap';
import { settledMqttjs } from './support/mqttjs.js';

/** The packets received before the PINGRESP that answers a PINGREQ sent now. */
async function untilPingresp(client: RawClient): Promise<Packet[]> {
  client.send({ cmd: 'pingreq' });
  const got: Packet[] = [];
  for (let p = await client.next(); p.cmd !== 'pingresp'; p = await client.next()) got.push(p);
  return got;
}

const payloads = (packets: Packet[]): string[] =>
  packets.map((p) => (p.cmd === 'publish' ? p.payload.toString() : `<${p.cmd}>`));

t.test('inflight window: maxInflight 5', async (t) => {
  const { port, stop } = await startBroker({ maxInflight: 5 });
  t.teardown(stop);

  await t.test(
    'a subscriber that never acks gets exactly 5 of 20 QoS 1 messages; each PUBACK lets exactly one more through, in order',
    async (t) => {
      const { client: sub } = await RawClient.connected(port, { clientId: 'window-sub' });
      t.teardown(() => sub.destroy());
      sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'window/t', qos: 1 }] });
      await sub.expect('suback');

      const pub = await mqtt.connectAsync({
        port,
        host: '127.0.0.1',
        clientId: 'window-pub',
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      t.teardown(() => pub.endAsync());
      await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publishAsync('window/t', String(i), { qos: 1 })));
      // The subscriber's side has routed all 20 (with routing workers, maybe on another worker).
      await settledMqttjs(pub);

      const window = await untilPingresp(sub);
      t.same(payloads(window), ['0', '1', '2', '3', '4'], 'exactly the first 5');
      const ids = window.map((p) => (p as { messageId: number }).messageId);
      t.equal(new Set(ids).size, 5, 'five distinct packet ids');

      sub.send({ cmd: 'puback', messageId: ids[0] as number });
      t.same(payloads(await untilPingresp(sub)), ['5'], 'one PUBACK, one more message');

      // Acking them all drains the rest, still in order, never more than the window at a time.
      let next = 6;
      const outstanding = ids.slice(1);
      while (next < 20) {
        sub.send({ cmd: 'puback', messageId: outstanding.shift() as number });
        const got = await untilPingresp(sub);
        t.same(payloads(got), [String(next)], `PUBACK lets message ${next} through`);
        outstanding.push((got[0] as { messageId: number }).messageId);
        next++;
      }
      for (const id of outstanding) sub.send({ cmd: 'puback', messageId: id });
      t.same(payloads(await untilPingresp(sub)), [], 'nothing left');
    },
  );
});

t.test('session queue limit: maxQueued 10, offline persistent session, 25 messages', async (t) => {
  /**
   * Subscribes a persistent session, leaves, publishes `count` QoS 1 messages from `from` on,
   * comes back and returns the payloads resent on CONNECT.
   */
  const episode = async (t: Test, port: number, clientId: string, count: number, from: number) => {
    const first = await RawClient.connected(port, { clientId, clean: false });
    first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `queue/${clientId}`, qos: 1 }] });
    await first.client.expect('suback');
    await first.client.disconnect();

    const pub = await mqtt.connectAsync({
      port,
      host: '127.0.0.1',
      clientId: `${clientId}-pub`,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    for (let i = from; i < from + count; i++) await pub.publishAsync(`queue/${clientId}`, String(i), { qos: 1 });
    // Every one has reached the offline session (with routing workers, maybe on another worker).
    await settledMqttjs(pub);
    await pub.endAsync();

    const again = await RawClient.connected(port, { clientId, clean: false });
    t.teardown(() => again.client.destroy());
    // The queue is resent on CONNECT, before the PINGREQ is read.
    const got = await untilPingresp(again.client);
    for (const p of got)
      if (p.cmd === 'publish') again.client.send({ cmd: 'puback', messageId: p.messageId as number });
    await untilPingresp(again.client);
    await again.client.disconnect();
    return payloads(got);
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String(from + i));

  await t.test('drop-oldest keeps the newest 10; one warn line per overflow episode', async (t) => {
    const tb = await startBroker({ maxQueued: 10, queueOverflow: 'drop-oldest' });
    const { port, logs } = tb;
    t.teardown(tb.stop);
    t.same(await episode(t, port, 'oldest', 25, 0), range(15, 25));
    // Routing workers send their log lines on the channel that brings their figures, before them.
    t.equal((await tb.stats()).counters.messagesDropped['queue-full'], 15, '15 dropped, counted');
    let lines = logs.find('session queue full');
    t.equal(lines.length, 1, 'one log line for the episode');
    t.equal(lines[0]?.level, 40, 'at warn');
    t.equal(lines[0]?.clientId, 'oldest');
    t.equal(lines[0]?.policy, 'drop-oldest');

    t.same(await episode(t, port, 'oldest', 25, 100), range(115, 125), 'a second episode');
    t.equal((await tb.stats()).counters.messagesDropped['queue-full'], 30, '15 more dropped, counted');
    lines = logs.find('session queue full');
    t.equal(lines.length, 2, 'one more line for the second episode');
  });

  await t.test('drop-new keeps the first 10', async (t) => {
    const tb = await startBroker({ maxQueued: 10, queueOverflow: 'drop-new' });
    const { port, logs } = tb;
    t.teardown(tb.stop);
    t.same(await episode(t, port, 'newest', 25, 0), range(0, 10));
    t.equal((await tb.stats()).counters.messagesDropped['queue-full'], 15, '15 dropped, counted');
    const lines = logs.find('session queue full');
    t.equal(lines.length, 1, 'one log line for the episode');
    t.equal(lines[0]?.level, 40, 'at warn');
    t.equal(lines[0]?.policy, 'drop-new');
  });
});

t.test('slow QoS 0 subscriber: maxSocketBuffer 1024', async (t) => {
  const limit = 1024;
  const tb = await startBroker({ maxSocketBuffer: limit });
  const { port, logs } = tb;
  t.teardown(tb.stop);

  const { client: sub } = await RawClient.connected(port, { clientId: 'slow-sub' });
  t.teardown(() => sub.destroy());
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'slow/t', qos: 0 }] });
  await sub.expect('suback');
  // Stop reading: the kernel buffers fill, then the broker's socket buffer.
  sub.socket.pause();

  // In one thread the test can watch the broker's buffer for the subscriber as it fills.
  const conn = tb.broker === null ? null : [...tb.broker.connections].find((c) => c.clientId === 'slow-sub')?.conn;
  if (conn === undefined) throw new Error('the subscriber has no connection in the broker');

  const pub = await mqtt.connectAsync({
    port,
    host: '127.0.0.1',
    clientId: 'slow-pub',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  t.teardown(() => pub.endAsync());
  const payload = Buffer.alloc(64 * 1024, 0x61);
  const messageBytes = payload.length + 'slow/t'.length + 2 + 4;
  let maxBuffered = 0;
  // Far more than loopback's kernel buffers take (a few MB each way).
  const count = 800;
  for (let i = 0; i < count; i++) {
    // QoS 1 only to know the broker has routed it before looking at the buffer.
    await pub.publishAsync('slow/t', payload, { qos: 1 });
    if (conn !== null && conn.writableLength > maxBuffered) maxBuffered = conn.writableLength;
  }
  // The subscriber's side has routed all of them (with routing workers, maybe on another worker).
  await settledMqttjs(pub);

  const dropped = (await tb.stats()).counters.messagesDropped['slow-subscriber'];
  t.ok(dropped > 0, `dropped ${dropped} messages for the slow subscriber`);
  const line = await logs.waitFor('subscriber too slow');
  t.equal(line.level, 40, 'at warn');
  t.equal(line.clientId, 'slow-sub');
  t.equal(logs.find('subscriber too slow').length, 1, 'one line for the episode');
  if (conn !== null) {
    t.ok(maxBuffered > 0, `the broker did buffer for it (${maxBuffered} bytes at most)`);
    t.ok(
      maxBuffered <= limit + messageBytes,
      `buffered at most the limit plus one message (${maxBuffered} <= ${limit + messageBytes})`,
    );
    t.equal(conn.isClosed, false, 'the slow subscriber stays connected');
  }

  // Seen from the subscriber: it reads what the broker kept for it, up to the PINGRESP that
  // follows all of it, and every message is either there or counted as dropped.
  sub.socket.resume();
  sub.send({ cmd: 'pingreq' });
  let received = 0;
  for (let p = await sub.next(); p.cmd !== 'pingresp'; p = await sub.next()) {
    if (p.cmd !== 'publish') throw new Error(`expected publish, got ${p.cmd}`);
    received++;
  }
  t.ok(received > 0, `the broker did buffer for it (${received} messages delivered)`);
  t.equal(received + dropped, count, 'each message delivered or counted as dropped');
  t.equal(sub.closed, false, 'the slow subscriber stays connected and answers');
});
