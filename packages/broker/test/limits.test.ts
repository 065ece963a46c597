/**
 * Every configured limit hit on purpose (DESIGN guarantee 6, issue 7): what the client sees,
 * the metric that counts it (tern_limits_hit_total and the family that says more), and
 * exactly one log line however often it bites.
 */
import type { BrokerConfig, StatsSnapshot } from '@tern/broker';
import type { Packet } from '@tern/protocol';
import { RawClient, startBroker, type TestBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, receiveUntil, settled, subscribe, text } from './support/flows.js';

const hits = (s: StatsSnapshot, limit: string): number => s.counters.limitsHit[limit] ?? 0;

/** Applies `changes` as a SIGHUP reload would, and resolves once every worker has them. */
async function reload(tb: TestBroker, changes: Partial<BrokerConfig>): Promise<void> {
  if (tb.broker !== null) {
    tb.broker.applyConfig({ ...tb.broker.config, ...changes });
    await tb.broker.accessReload;
    return;
  }
  const supervisor = tb.supervisor as NonNullable<TestBroker['supervisor']>;
  await supervisor.reload({ ...supervisor.config, ...changes });
}

/** Packets received before the PINGRESP that answers a PINGREQ sent now. */
async function untilPingresp(client: RawClient): Promise<Packet[]> {
  client.send({ cmd: 'pingreq' });
  const got: Packet[] = [];
  for (let p = await client.next(); p.cmd !== 'pingresp'; p = await client.next()) got.push(p);
  return got;
}

t.test('maxPacketSize: closed from the fixed header, counted, one line', async (t) => {
  const tb = await startBroker({ maxPacketSize: 1024 });
  t.teardown(tb.stop);
  for (let i = 0; i < 3; i++) {
    const { client } = await RawClient.connected(tb.port, { clientId: `big-${i}` });
    // PUBLISH announcing 2000 bytes; the body never comes.
    client.sendBytes([0x30, 0xd0, 0x0f]);
    await client.waitClosed();
  }
  const s = await tb.stats();
  t.equal(hits(s, 'max-packet-size'), 3, 'limits_hit{limit="max-packet-size"}');
  t.equal(s.counters.disconnects['protocol-error'], 3);
  for (let i = 0; i < 3; i++) {
    const lines = tb.logs.lines.filter((l) => l.clientId === `big-${i}` && l.code === 'TERN_PROTO_PACKET_TOO_LARGE');
    t.equal(lines.length, 1, `one line for big-${i}`);
  }
});

t.test('maxConnections: extra sockets closed on accept, counted, one line for the node', async (t) => {
  const tb = await startBroker({ maxConnections: 2 });
  t.teardown(tb.stop);
  const held = await Promise.all([RawClient.connected(tb.port), RawClient.connected(tb.port)]);
  t.teardown(() => {
    for (const h of held) h.client.destroy();
  });
  for (let i = 0; i < 3; i++) {
    const extra = await RawClient.open(tb.port);
    await extra.waitClosed();
    t.pass(`extra socket ${i} closed`);
  }
  const s = await tb.stats();
  t.equal(s.counters.connectionsRejected['max-connections'], 3);
  t.equal(hits(s, 'max-connections'), 3);
  const lines = tb.logs.find('maxConnections reached');
  t.equal(lines.length, 1, 'one line for three refusals');
  t.match(lines[0], { level: 40, limit: 2, refusedSinceLastLine: 1 });
  // The clients inside are still served.
  held[0]?.client.send({ cmd: 'pingreq' });
  t.equal((await held[0]?.client.next())?.cmd, 'pingresp');
});

t.test('connectTimeoutMs: silent sockets closed, counted, one line', async (t) => {
  const tb = await startBroker({ connectTimeoutMs: 100 });
  t.teardown(tb.stop);
  const silent = await Promise.all([RawClient.open(tb.port), RawClient.open(tb.port), RawClient.open(tb.port)]);
  await Promise.all(silent.map((c) => c.waitClosed()));
  const s = await tb.stats();
  t.equal(s.counters.disconnects['connect-timeout'], 3);
  t.equal(hits(s, 'connect-timeout'), 3);
  const lines = tb.logs.find('no CONNECT in time');
  t.equal(lines.length, 1, 'one line for three closes');
  t.match(lines[0], { level: 30, timeoutMs: 100 });
});

t.test('maxInflight and maxQueued: a subscriber that never acks', async (t) => {
  const tb = await startBroker({ maxInflight: 2, maxQueued: 3 });
  t.teardown(tb.stop);
  const { client: sub } = await RawClient.connected(tb.port, { clientId: 'no-acks' });
  t.teardown(() => sub.destroy());
  t.same(await subscribe(sub, { 'window/t': 1 }), [1]);
  const { client: pub } = await RawClient.connected(tb.port, { clientId: 'window-pub' });
  t.teardown(() => pub.destroy());
  for (let i = 0; i < 8; i++) await publish(pub, 'window/t', String(i), 1);
  await settled(pub);

  const got = await untilPingresp(sub);
  t.same(
    got.map((p) => (p.cmd === 'publish' ? text(p) : p.cmd)),
    ['0', '1'],
    'the window: 2 sent, the rest wait',
  );
  const s = await tb.stats();
  // 2 sent; 3 queued behind the window; 3 more each pushed the oldest out of the queue.
  t.equal(hits(s, 'max-inflight'), 3, 'three queued behind the window');
  t.equal(hits(s, 'max-queued'), 3, 'three dropped from the queue of three');
  t.equal(s.counters.messagesDropped['queue-full'], 3);
  t.equal(tb.logs.find('inflight window full').length, 1, 'one line for the window');
  t.match(tb.logs.find('inflight window full')[0], { clientId: 'no-acks', limitValue: 2 });
  t.equal(tb.logs.find('session queue full').length, 1, 'one line for the queue');
});

t.test('maxSubscriptions: filters beyond it get 0x80, one line', async (t) => {
  const tb = await startBroker({ maxSubscriptions: 2 });
  t.teardown(tb.stop);
  const { client } = await RawClient.connected(tb.port, { clientId: 'many-subs' });
  t.teardown(() => client.destroy());
  t.same(await subscribe(client, { a: 0, b: 1, c: 1 }), [0, 1, 0x80], 'the third is refused');
  t.same(await subscribe(client, { a: 2 }), [2], 'replacing a filter held is not one more');
  t.same(await subscribe(client, { d: 0 }), [0x80], 'still full');
  const s = await tb.stats();
  t.equal(hits(s, 'max-subscriptions'), 2);
  t.same((await tb.session('many-subs'))?.subscriptions.map(([f]) => f).sort(), ['a', 'b']);
  const lines = tb.logs.find('maxSubscriptions reached');
  t.equal(lines.length, 1, 'one line for two refusals');
  t.match(lines[0], { clientId: 'many-subs', limitValue: 2, filter: 'c' });
});

t.test('maxTopicLength and maxTopicLevels', async (t) => {
  const tb = await startBroker({ maxTopicLength: 10, maxTopicLevels: 3 });
  t.teardown(tb.stop);

  await t.test('a SUBSCRIBE filter beyond either gets 0x80, one line per limit', async (t) => {
    const { client } = await RawClient.connected(tb.port, { clientId: 'long-filters' });
    t.teardown(() => client.destroy());
    t.same(await subscribe(client, { 'a/b/c/d': 0, 'a/b/+': 1, abcdefghijk: 0, '0123456789': 1 }), [0x80, 1, 0x80, 1]);
    t.same(await subscribe(client, { '+/+/+/#': 0, éééééé: 0 }), [0x80, 0x80], 'bytes, not characters');
    const s = await tb.stats();
    t.equal(hits(s, 'max-topic-levels'), 2);
    t.equal(hits(s, 'max-topic-length'), 2);
    t.equal(tb.logs.find('filter beyond maxTopicLevels').length, 1);
    t.equal(tb.logs.find('filter beyond maxTopicLength').length, 1);
    client.send({ cmd: 'pingreq' });
    t.equal((await client.next()).cmd, 'pingresp', 'the connection stays');
  });

  await t.test('a PUBLISH topic beyond either closes the connection as a protocol violation', async (t) => {
    const cases = [
      { id: 'deep', topic: 'a/b/c/d', line: 'PUBLISH topic beyond maxTopicLevels' },
      { id: 'long', topic: 'abcdefghijk', line: 'PUBLISH topic beyond maxTopicLength' },
      // 6 characters, 11 bytes of UTF-8.
      { id: 'wide', topic: 'ééééé/', line: 'PUBLISH topic beyond maxTopicLength' },
    ];
    const before = await tb.stats();
    for (const c of cases) {
      const { client } = await RawClient.connected(tb.port, { clientId: c.id });
      client.send({ cmd: 'publish', topic: c.topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
      await client.waitClosed();
      const lines = tb.logs.lines.filter((l) => l.clientId === c.id && l.level === 40);
      t.equal(lines.length, 1, `${c.id}: one warn line`);
      t.equal(lines[0]?.msg, `closing connection: ${c.line}`);
    }
    const after = await tb.stats();
    t.equal(after.counters.disconnects['protocol-error'] - before.counters.disconnects['protocol-error'], 3);
    t.equal(after.counters.protocolErrors - before.counters.protocolErrors, 3);
    t.equal(hits(after, 'max-topic-levels') - hits(before, 'max-topic-levels'), 1);
    t.equal(hits(after, 'max-topic-length') - hits(before, 'max-topic-length'), 2);
  });

  await t.test('a will topic beyond them is refused at CONNECT the same way', async (t) => {
    const client = await RawClient.open(tb.port);
    client.sendConnect({
      clientId: 'deep-will',
      will: { topic: 'w/x/y/z', payload: Buffer.from('gone'), qos: 0, retain: false },
    });
    await client.waitClosed();
    t.equal(client.pending.length, 0, 'no CONNACK');
    t.equal(tb.logs.find('will topic beyond maxTopicLevels').length, 1);
  });

  await t.test('topics within both pass', async (t) => {
    const { client: sub } = await RawClient.connected(tb.port, { clientId: 'fits-sub' });
    t.teardown(() => sub.destroy());
    await subscribe(sub, { 'a/b/c': 1 });
    const { client: pub } = await RawClient.connected(tb.port, { clientId: 'fits-pub' });
    t.teardown(() => pub.destroy());
    await publish(pub, 'a/b/c', 'ok', 1);
    t.equal(text(await receive(sub)), 'ok');
  });
});

t.test('maxPublishRate: a fast publisher is slowed, nothing is lost, one line', async (t) => {
  const rate = 40;
  const tb = await startBroker({ maxPublishRate: rate });
  t.teardown(tb.stop);
  const { client: sub } = await RawClient.connected(tb.port, { clientId: 'rate-sub' });
  t.teardown(() => sub.destroy());
  await subscribe(sub, { 'rate/#': 1 });
  const { client: pub } = await RawClient.connected(tb.port, { clientId: 'rate-pub' });
  t.teardown(() => pub.destroy());
  // Three seconds' worth in one write: the broker must read it over about two seconds.
  const count = rate * 3;
  const bytes: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    bytes.push(
      Buffer.from([0x30, 2 + 6 + String(i).length, 0, 6, ...Buffer.from('rate/t'), ...Buffer.from(String(i))]),
    );
  }
  bytes.push(Buffer.from([0x30, 2 + 6 + 3, 0, 6, ...Buffer.from('rate/e'), ...Buffer.from('end')]));
  pub.sendBytes(Buffer.concat(bytes));

  // Meanwhile another client is served as usual.
  const { client: other } = await RawClient.connected(tb.port, { clientId: 'rate-other' });
  t.teardown(() => other.destroy());
  other.send({ cmd: 'pingreq' });
  t.equal((await other.next()).cmd, 'pingresp', 'another client is answered');

  const got = await receiveUntil(sub, 'rate/e');
  t.same(
    got.slice(0, -1).map(text),
    Array.from({ length: count }, (_, i) => String(i)),
    `all ${count} messages, in order`,
  );
  const s = await tb.stats();
  t.ok(hits(s, 'max-publish-rate') >= 1, `reading paused ${hits(s, 'max-publish-rate')} time(s)`);
  const lines = tb.logs.find('over maxPublishRate');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], { clientId: 'rate-pub', rate });
  pub.send({ cmd: 'pingreq' });
  t.equal((await pub.next()).cmd, 'pingresp', 'the publisher stays connected');
});

t.test('memoryHighWaterMark: CONNACK 0x03 and QoS 0 shed while above, one line each way', async (t) => {
  const tb = await startBroker({});
  t.teardown(tb.stop);
  const { client: sub } = await RawClient.connected(tb.port, { clientId: 'mem-sub' });
  t.teardown(() => sub.destroy());
  await subscribe(sub, { 'mem/#': 1 });
  const { client: pub } = await RawClient.connected(tb.port, { clientId: 'mem-pub' });
  t.teardown(() => pub.destroy());

  // One byte: every process is above it.
  await reload(tb, { memoryHighWaterMark: 1 });
  const started = await tb.logs.waitFor('memory high-water mark reached');
  t.match(started, { level: 40, limit: 1 });

  const refused = await RawClient.connected(tb.port, { clientId: 'mem-late' });
  t.equal(refused.connack.returnCode, 0x03, 'CONNACK 0x03 server unavailable');
  await refused.client.waitClosed();

  await publish(pub, 'mem/q0', 'shed', 0);
  await publish(pub, 'mem/q1', 'kept', 1);
  const during = await receive(sub);
  t.equal(during.topic, 'mem/q1', 'the QoS 0 message was shed, the QoS 1 one delivered');

  let s = await tb.stats();
  t.equal(s.counters.messagesDropped['memory-high-water-mark'], 1);
  t.equal(s.counters.connectionsRejected['server-unavailable'], 1);
  t.equal(hits(s, 'memory-high-water-mark'), 2, 'one refusal, one shed message');
  t.ok(s.gauges.memoryHighWater > 0, 'the gauge says so');

  await reload(tb, { memoryHighWaterMark: 0 });
  await tb.logs.waitFor('memory high-water mark cleared');
  const back = await RawClient.connected(tb.port, { clientId: 'mem-back' });
  t.teardown(() => back.client.destroy());
  t.equal(back.connack.returnCode, 0, 'accepted again');
  await publish(pub, 'mem/q0', 'delivered', 0);
  t.equal(text(await receive(sub)), 'delivered', 'QoS 0 delivered again');
  s = await tb.stats();
  t.equal(s.gauges.memoryHighWater, 0);
  t.equal(tb.logs.find('memory high-water mark reached').length, 1, 'one line when it started');
  t.equal(tb.logs.find('memory high-water mark cleared').length, 1, 'one line when it ended');
});
