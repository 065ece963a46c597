/**
 * MQTT 5 across the nodes of a cluster (a real redis-server): properties and expiry travel
 * with a message from node to node and through the session store, subscription options hold
 * on every node, and a session's expiry interval ends it cluster-wide.
 */
import { RawClient, startRedis, type TestRedis } from '@tern/testkit';
import t, { type Test } from 'tap';
import { clusterNode, receivePublishes } from './support/cluster.js';

let redis: TestRedis;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.destroy());

const node = (t: Test, prefix: string, workers = 1) => clusterNode(t, redis.url, prefix, workers);

async function v5Client(t: Test, port: number, clientId: string, clean: boolean, properties = {}) {
  const { client, connack } = await RawClient.connected(port, { protocolVersion: 5, clientId, clean, properties });
  t.teardown(() => client.destroy());
  return { c: client, connack };
}

async function subscribe(c: RawClient, topic: string, options: { noLocal?: boolean; id?: number } = {}) {
  c.send({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [{ topic, qos: 1, noLocal: options.noLocal ?? false }],
    properties: options.id === undefined ? undefined : { subscriptionIdentifiers: [options.id] },
  });
  const suback = await c.expect('suback');
  if (suback.granted[0] !== 1) throw new Error(`SUBACK ${suback.granted[0]}`);
}

const PROPS = {
  contentType: 'application/json',
  responseTopic: 'reply/here',
  correlationData: Buffer.from('corr-1'),
  userProperties: [
    ['k', 'v1'],
    ['k', 'v2'],
  ] as Array<[string, string]>,
};

async function publish(c: RawClient, topic: string, payload: string, properties: object, messageId = 1) {
  c.send({
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos: 1,
    retain: false,
    dup: false,
    messageId,
    properties,
  });
  const ack = await c.expect('puback');
  if ((ack.reasonCode ?? 0) >= 0x80) throw new Error(`PUBACK 0x${(ack.reasonCode ?? 0).toString(16)}`);
}

t.test('properties cross nodes live, with the subscriber’s own identifier', async (t) => {
  const a = await node(t, 'v5live', 2);
  const b = await node(t, 'v5live', 1);
  const sub = await v5Client(t, b.port, 'v5-live-sub', true);
  await subscribe(sub.c, 'live/#', { id: 42 });
  const pub = await v5Client(t, a.port, 'v5-live-pub', true);
  await publish(pub.c, 'live/x', 'hello', { ...PROPS, messageExpiryInterval: 600 });
  const [got] = await receivePublishes(sub.c, 1);
  t.equal(got?.payload.toString(), 'hello');
  t.match(got?.properties, { ...PROPS, subscriptionIdentifiers: [42] });
  const left = got?.properties?.messageExpiryInterval ?? 0;
  t.ok(left > 0 && left <= 600, `expiry counted down, not reset (${left})`);
});

t.test('no local holds for a subscriber on another node than its publishes enter', async (t) => {
  const a = await node(t, 'v5nolocal', 1);
  const b = await node(t, 'v5nolocal', 1);
  const me = await v5Client(t, a.port, 'v5-nl', true);
  await subscribe(me.c, 'nl/t', { noLocal: true });
  const other = await v5Client(t, b.port, 'v5-nl-other', true);
  await subscribe(other.c, 'nl/t');
  await publish(me.c, 'nl/t', 'mine', {});
  const [seen] = await receivePublishes(other.c, 1);
  t.equal(seen?.payload.toString(), 'mine', 'another subscriber gets it');
  const pub = await v5Client(t, b.port, 'v5-nl-pub', true);
  await publish(pub.c, 'nl/t', 'theirs', {});
  const [got] = await receivePublishes(me.c, 1);
  t.equal(got?.payload.toString(), 'theirs', 'its own publish never came back first');
});

t.test('a queued message keeps its properties in the store and resumes on another node', async (t) => {
  const a = await node(t, 'v5store', 1);
  const b = await node(t, 'v5store', 1);
  const first = await v5Client(t, a.port, 'v5-roam', false, { sessionExpiryInterval: 600 });
  await subscribe(first.c, 'roam/#', { id: 7 });
  await first.c.disconnect();
  const pub = await v5Client(t, a.port, 'v5-roam-pub', true);
  await publish(pub.c, 'roam/x', 'kept', { ...PROPS, messageExpiryInterval: 600 });
  const again = await v5Client(t, b.port, 'v5-roam', false, { sessionExpiryInterval: 600 });
  t.equal(again.connack.sessionPresent, true);
  const [got] = await receivePublishes(again.c, 1);
  t.equal(got?.payload.toString(), 'kept');
  t.match(got?.properties, { ...PROPS, subscriptionIdentifiers: [7] });
  t.ok((got?.properties?.messageExpiryInterval ?? 0) > 0);
});

t.test('a session whose expiry interval runs out is gone on every node', async (t) => {
  const a = await node(t, 'v5expire', 1);
  const b = await node(t, 'v5expire', 1);
  const first = await v5Client(t, a.port, 'v5-brief', false, { sessionExpiryInterval: 1 });
  await subscribe(first.c, 'brief/#');
  await first.c.disconnect();
  // The node that held it ends it, and the store with it.
  await a.logs.waitFor((l) => l.msg === 'session expired' && l.clientId === 'v5-brief');
  const again = await v5Client(t, b.port, 'v5-brief', false, { sessionExpiryInterval: 1 });
  t.equal(again.connack.sessionPresent, false, 'no session to resume');
});

t.test('the store ends an expired session whose node is gone', async (t) => {
  const a = await node(t, 'v5orphan', 1);
  const b = await node(t, 'v5orphan', 1);
  const first = await v5Client(t, a.port, 'v5-orphan', false, { sessionExpiryInterval: 1 });
  await subscribe(first.c, 'orphan/#');
  await first.c.disconnect();
  await a.stop();
  // Nobody holds it now: a surviving node's sweep of the store ends it.
  await b.logs.waitFor((l) => l.msg === 'stored session expired' && l.clientId === 'v5-orphan');
  const again = await v5Client(t, b.port, 'v5-orphan', false, { sessionExpiryInterval: 1 });
  t.equal(again.connack.sessionPresent, false, 'no session to resume');
});

/** PUBLISHes the broker wrote to `c` before answering a PINGREQ sent now; QoS 1 ones acknowledged. */
async function drainToPing(c: RawClient): Promise<string[]> {
  c.send({ cmd: 'pingreq' });
  const out: string[] = [];
  for (let p = await c.next(); p.cmd !== 'pingresp'; p = await c.next()) {
    if (p.cmd !== 'publish') continue;
    if (p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId as number });
    out.push(p.payload.toString());
  }
  return out;
}

t.test('a shared subscription group spread over nodes: each message to one member', async (t) => {
  const a = await node(t, 'v5share', 2);
  const b = await node(t, 'v5share', 1);
  const members = [
    (await v5Client(t, a.port, 'sh-a1', true)).c,
    (await v5Client(t, a.port, 'sh-a2', true)).c,
    (await v5Client(t, b.port, 'sh-b1', true)).c,
  ];
  for (const m of members) {
    m.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/grp/jobs/#', qos: 1 }] });
    await m.expect('suback');
  }
  const pub = await v5Client(t, a.port, 'sh-pub', true);
  const sent = Array.from({ length: 30 }, (_, i) => `j${i}`);
  let id = 1;
  for (const job of sent) await publish(pub.c, `jobs/${job}`, job, {}, id++);
  // Retained, so acknowledged once every node has it; the group messages went before it.
  pub.c.send({
    cmd: 'publish',
    topic: 'jobs-settle',
    payload: Buffer.alloc(0),
    qos: 1,
    retain: true,
    dup: false,
    messageId: 500,
  });
  await pub.c.expect('puback');
  const got = [];
  for (const m of members) got.push(await drainToPing(m));
  t.same(got.flat().sort(), [...sent].sort(), 'each message once across the group');
  t.ok((got[2] as string[]).length > 0, 'the member on the other node had its turn');
  t.ok((got[0] as string[]).length + (got[1] as string[]).length > 0, 'the members on the publishing node had theirs');
});

t.test('a member leaving with unacknowledged messages: a member on another node gets them', async (t) => {
  const a = await node(t, 'v5sharere', 1);
  const b = await node(t, 'v5sharere', 1);
  const leaving = await v5Client(t, a.port, 'shr-leave', true);
  const staying = await v5Client(t, b.port, 'shr-stay', true);
  for (const m of [leaving.c, staying.c]) {
    m.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/grp2/re/#', qos: 1 }] });
    await m.expect('suback');
  }
  const pub = await v5Client(t, a.port, 'shr-pub', true);
  const sent = Array.from({ length: 10 }, (_, i) => `r${i}`);
  let id = 1;
  for (const m of sent) await publish(pub.c, 're/x', m, {}, id++);
  // The leaving member takes its share without acknowledging it, then goes.
  leaving.c.send({ cmd: 'pingreq' });
  let unacked = 0;
  for (let p = await leaving.c.next(); p.cmd !== 'pingresp'; p = await leaving.c.next())
    if (p.cmd === 'publish') unacked++;
  t.ok(unacked > 0, 'the leaving member had some');
  leaving.c.destroy();
  const got: string[] = [];
  while (got.length < sent.length) {
    const [p] = await receivePublishes(staying.c, 1);
    got.push(p?.payload.toString() as string);
  }
  t.same(got.sort(), [...sent].sort(), 'all ten reach the member that stayed');
});
