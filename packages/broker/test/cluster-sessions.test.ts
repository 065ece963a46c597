/**
 * Persistent sessions across the nodes of a cluster (a real redis-server): a client that
 * leaves one node and comes back on another finds its session and every queued message, in
 * order; a client id has one connection in the cluster (takeover across nodes, and two
 * CONNECTs racing on two nodes); a node killed with SIGKILL loses no accepted QoS 1 message
 * of its persistent sessions and its clients' wills are published once, by a survivor.
 */
import { RawClient, startBroker, startRedis, type TestRedis } from '@tern/testkit';
import t, { type Test } from 'tap';
import { startCli } from './support/cli.js';
import {
  CLUSTER_TIMING_FLAGS,
  clusterNode,
  HEARTBEAT_MS,
  NODE_TIMEOUT_MS,
  numbered,
  publishQos1,
  rawClient,
  receivePublishes,
  texts,
} from './support/cluster.js';

let redis: TestRedis;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.destroy());

const node = (t: Test, prefix: string, workers = 1) => clusterNode(t, redis.url, prefix, workers);
const client = rawClient;
const receive = receivePublishes;

async function subscribe(c: RawClient, topic: string, qos: 0 | 1 | 2): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
  await c.expect('suback');
}

async function publishQos2(c: RawClient, topic: string, payloads: string[]): Promise<void> {
  let id = 100;
  for (const payload of payloads) {
    const messageId = id++;
    c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 2, retain: false, dup: false, messageId });
    await c.expect('pubrec');
    c.send({ cmd: 'pubrel', messageId });
    await c.expect('pubcomp');
  }
}

t.test('a persistent session left on one node resumes on another with every queued message', async (t) => {
  const a = await node(t, 'resume', 2);
  const b = await node(t, 'resume', 1);
  const first = await client(t, a.port, 'roamer', false);
  t.equal(first.connack.sessionPresent, false);
  await subscribe(first.c, 'inbox/#', 1);
  await first.c.disconnect();

  // Published on both nodes while the client is away.
  const pubA = await client(t, a.port, 'pub-a', true);
  const pubB = await client(t, b.port, 'pub-b', true);
  await publishQos1(pubA.c, 'inbox/roamer', numbered(10, 'a'));
  await publishQos1(pubB.c, 'inbox/roamer', numbered(10, 'b'));

  const back = await client(t, b.port, 'roamer', false);
  t.equal(back.connack.sessionPresent, true, 'session present on the other node');
  t.same(texts(await receive(back.c, 20)), [...numbered(10, 'a'), ...numbered(10, 'b')], 'all of them, in order');

  // Its subscription came along: a new message reaches it on its new node.
  await publishQos1(pubA.c, 'inbox/roamer', ['later']);
  t.same(texts(await receive(back.c, 1)), ['later']);
  t.equal((await a.session('roamer'))?.online ?? false, false, 'node a let go of it');
});

t.test('a CONNECT on another node takes over the client id and its session', async (t) => {
  const a = await node(t, 'takeover', 1);
  const b = await node(t, 'takeover', 1);
  const old = await client(t, a.port, 'device', false);
  await subscribe(old.c, 'cmd/device', 1);
  const closed = old.c.waitClosed();
  const fresh = await client(t, b.port, 'device', false);
  t.equal(fresh.connack.sessionPresent, true);
  await closed;
  t.pass('the connection on node a was closed');
  const pub = await client(t, a.port, 'controller', true);
  await publishQos1(pub.c, 'cmd/device', ['reboot']);
  t.same(texts(await receive(fresh.c, 1)), ['reboot'], 'the subscription moved with the session');
});

t.test('two CONNECTs with one client id on two nodes at once leave one connection', async (t) => {
  const a = await node(t, 'race', 1);
  const b = await node(t, 'race', 1);
  for (let round = 0; round < 5; round++) {
    const [x, y] = await Promise.all([RawClient.open(a.port), RawClient.open(b.port)]);
    t.teardown(() => {
      x.destroy();
      y.destroy();
    });
    x.sendConnect({ clientId: `racer${round}`, clean: false });
    y.sendConnect({ clientId: `racer${round}`, clean: false });
    // One of the two is closed (after or instead of its CONNACK); the other stays.
    await Promise.race([x.waitClosed(), y.waitClosed()]);
    const alive = x.closed ? y : x;
    const dead = x.closed ? x : y;
    t.ok(dead.closed && !alive.closed, `round ${round}: one connection left`);
    // The survivor has its CONNACK (it may still be on its way) and still answers.
    const connack = await alive.expect('connack');
    t.equal(connack.returnCode, 0);
    alive.send({ cmd: 'pingreq' });
    await alive.expect('pingresp');
  }
});

t.test('a clean start on another node discards the stored session', async (t) => {
  const a = await node(t, 'clean', 1);
  const b = await node(t, 'clean', 1);
  const first = await client(t, a.port, 'forgetful', false);
  await subscribe(first.c, 'x/#', 1);
  await first.c.disconnect();
  const clean = await client(t, b.port, 'forgetful', true);
  t.equal(clean.connack.sessionPresent, false);
  await clean.c.disconnect();
  const again = await client(t, a.port, 'forgetful', false);
  t.equal(again.connack.sessionPresent, false, 'nothing was kept');
  const pub = await client(t, b.port, 'pub', true);
  await publishQos1(pub.c, 'x/1', ['nobody listens']);
  await subscribe(again.c, 'marker', 1);
  await publishQos1(pub.c, 'marker', ['marker']);
  t.same(texts(await receive(again.c, 1)), ['marker'], 'the old subscription is gone');
});

t.test(
  'a node killed with SIGKILL: its sessions resume elsewhere with no accepted QoS 1 lost, its wills fire once',
  async (t) => {
    const a = await node(t, 'crash', 1);
    const victim = await startCli([
      '--workers',
      '1',
      '--redis',
      redis.url,
      '--redis-prefix',
      'crash',
      ...CLUSTER_TIMING_FLAGS,
    ]);
    t.teardown(() => {
      if (victim.child.exitCode === null) victim.child.kill('SIGKILL');
    });
    const watcher = await client(t, a.port, 'watcher', true);
    await subscribe(watcher.c, 'presence/#', 1);

    const will = { topic: 'presence/sensor', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const sensor = await client(t, victim.port, 'sensor', false, { will });
    await subscribe(sensor.c, 'jobs/#', 1);
    sensor.c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'orders/#', qos: 2 }] });
    await sensor.c.expect('suback');
    const online = await client(t, victim.port, 'sensor-status', true);
    await publishQos1(online.c, 'presence/sensor', ['online'], true);
    t.same(texts(await receive(watcher.c, 1)), ['online']);

    // Accepted (PUBACKed) by node a, delivered to the sensor on the victim and never acknowledged.
    const pub = await client(t, a.port, 'dispatcher', true);
    await publishQos1(pub.c, 'jobs/1', numbered(10, 'job'));
    t.same(texts(await receive(sensor.c, 10, false)), numbered(10, 'job'), 'in flight to the sensor');
    // QoS 2 in flight: the first PUBRECed (so PUBREL is owed), the others not answered at all.
    await publishQos2(pub.c, 'orders/1', ['order0', 'order1', 'order2']);
    const orders = await receive(sensor.c, 3, false);
    const orderIds = new Map(orders.map((p) => [p.messageId as number, p.payload.toString()]));
    sensor.c.send({ cmd: 'pubrec', messageId: orders[0]?.messageId as number });
    t.equal((await sensor.c.expect('pubrel')).messageId, orders[0]?.messageId);
    // And more while it is cut off.
    const reaped = a.logs.waitFor((l) => l.msg === 'published the wills of a dead node');
    victim.child.kill('SIGKILL');
    await victim.exited;
    await publishQos1(pub.c, 'jobs/1', numbered(5, 'late'));
    await reaped;

    const wills = await receive(watcher.c, 1);
    t.same(texts(wills), ['offline'], 'the will of the client on the dead node');
    await publishQos1(pub.c, 'presence/marker', ['marker']);
    t.same(texts(await receive(watcher.c, 1)), ['marker'], 'published once');

    const back = await client(t, a.port, 'sensor', false);
    t.equal(back.connack.sessionPresent, true, 'its session resumes on a survivor');
    const jobs: string[] = [];
    const again = new Map<number, string>();
    let pubrel = false;
    while (jobs.length < 15 || again.size + (pubrel ? 1 : 0) < 3) {
      const p = await back.c.next();
      if (p.cmd === 'pubrel') {
        t.equal(p.messageId, orders[0]?.messageId, 'PUBREL under the id that was PUBRECed');
        pubrel = true;
        continue;
      }
      if (p.cmd !== 'publish') throw new Error(`unexpected ${p.cmd}`);
      if (p.qos === 1) {
        back.c.send({ cmd: 'puback', messageId: p.messageId as number });
        jobs.push(p.payload.toString());
        continue;
      }
      // A QoS 2 delivery comes again only under the packet id it went out with, marked DUP,
      // so the client takes it for the same message: exactly once [MQTT-4.3.3-1].
      const id = p.messageId as number;
      t.equal(orderIds.get(id), p.payload.toString(), `order under its original id ${id}`);
      t.ok(p.dup, 'with DUP=1 [MQTT-4.4.0-1]');
      again.set(id, p.payload.toString());
    }
    t.same(jobs, [...numbered(10, 'job'), ...numbered(5, 'late')], 'no accepted QoS 1 message was lost, in order');
    t.same(
      [...again.values()].sort(),
      pubrel ? ['order1', 'order2'] : ['order0', 'order1', 'order2'],
      'every QoS 2 delivery owed, none twice',
    );

    const late = await client(t, a.port, 'late-reader', true);
    await subscribe(late.c, 'presence/sensor', 0);
    t.same(texts(await receive(late.c, 1)), ['offline'], 'the retained will is the presence now');
  },
);

t.test('a Redis restart (append-only file) keeps the stored sessions and their queues', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.destroy());
  const options = {
    workers: 1,
    redis: own.url,
    redisPrefix: 'aof',
    clusterHeartbeatMs: HEARTBEAT_MS,
    clusterNodeTimeoutMs: NODE_TIMEOUT_MS,
  };
  const a = await startBroker(options);
  t.teardown(() => a.stop());
  const first = await client(t, a.port, 'survivor', false);
  await subscribe(first.c, 'mail/#', 1);
  await first.c.disconnect();
  const pub = await client(t, a.port, 'postman', true);
  await publishQos1(pub.c, 'mail/1', numbered(5, 'letter'));

  const down = a.logs.waitFor((l) => l.msg.startsWith('Redis is unreachable'));
  await own.stop('SIGTERM');
  await down;
  const back = a.logs.waitFor((l) => l.msg.startsWith('Redis is reachable again'));
  await own.restart();
  await back;

  // A node that starts now knows nothing but what Redis kept.
  const b = await startBroker(options);
  t.teardown(() => b.stop());
  const resumed = await client(t, b.port, 'survivor', false);
  t.equal(resumed.connack.sessionPresent, true, 'the session is still there');
  t.same(texts(await receive(resumed.c, 5)), numbered(5, 'letter'), 'with its queue, in order');
});
