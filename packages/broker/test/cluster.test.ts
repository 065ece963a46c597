/**
 * Nodes joined through a real redis-server behave as one broker for routing and retained
 * messages: a publish reaches subscribers on every node, crosses to a node only when that node
 * has a matching subscription, retained messages are one per topic cluster-wide (and a node
 * that starts later has them), and a node that dies (SIGKILL) is reaped by a survivor, which
 * stops routing to it. Nodes here are supervisors in this process (their own workers and
 * their own Redis connections) and, where a process must die, the real CLI.
 */
import { RawClient, startBroker, startRedis, type TestBroker, type TestRedis } from '@tern/testkit';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { startCli } from './support/cli.js';
import { CLUSTER_TIMING_FLAGS, clusterNode } from './support/cluster.js';
import { connectMqttjs, Inbox } from './support/mqttjs.js';

let redis: TestRedis;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.destroy());

/** A node of `workers` routing workers in this process, in the test Redis under `prefix`. */
const node = (t: Test, prefix: string, workers = 1, name = 'node'): Promise<TestBroker> =>
  clusterNode(t, redis.url, prefix, workers, name);

/** Resolves when `tb` has heard that another node now routes `filter` to itself. */
function routeKnown(tb: TestBroker, filter: string): Promise<unknown> {
  return tb.logs.waitFor(
    (l) => l.msg === 'routes of another node changed' && (l.added as string[] | undefined)?.includes(filter) === true,
  );
}

t.test('a publish reaches a subscriber on another node, at QoS 0, 1 and 2, in order', async (t) => {
  const a = await node(t, 'qos', 2, 'a');
  const b = await node(t, 'qos', 1, 'b');
  const subscriber = await connectMqttjs(t, b.port, 'sub-b');
  const inbox = new Inbox(subscriber);
  const known = routeKnown(a, 'chat/#');
  await subscriber.subscribeAsync('chat/#', { qos: 2 });
  await known;
  const publisher = await connectMqttjs(t, a.port, 'pub-a');
  await publisher.publishAsync('chat/room', 'zero', { qos: 0 });
  await publisher.publishAsync('chat/room', 'one', { qos: 1 });
  await publisher.publishAsync('chat/room', 'two', { qos: 2 });
  const got = [await inbox.next(), await inbox.next(), await inbox.next()];
  t.same(
    got.map((m) => [m.topic, m.payload, m.qos]),
    [
      ['chat/room', 'zero', 0],
      ['chat/room', 'one', 1],
      ['chat/room', 'two', 2],
    ],
  );
});

t.test('a publish crosses to another node only when that node has a matching subscription', async (t) => {
  const a = await node(t, 'only', 1, 'a');
  const b = await node(t, 'only', 1, 'b');
  const subscriber = await connectMqttjs(t, b.port, 'sub');
  const inbox = new Inbox(subscriber);
  const known = routeKnown(a, 'wanted/+');
  await subscriber.subscribeAsync('wanted/+', { qos: 1 });
  await known;
  const publisher = await connectMqttjs(t, a.port, 'pub');
  for (let i = 0; i < 20; i++) await publisher.publishAsync(`unwanted/${i}`, 'x', { qos: 1 });
  await publisher.publishAsync('wanted/1', 'yes', { qos: 1 });
  // One publisher's messages are handled in order: once the wanted one arrives, the unwanted
  // ones before it have been routed (nowhere).
  t.equal((await inbox.next()).topic, 'wanted/1');
  t.equal(a.supervisor?.clusterStats()?.forwardedOut, 1, 'node a sent one record to node b');
  t.equal(b.supervisor?.clusterStats()?.forwardedIn, 1, 'node b received one record');
  t.equal(b.supervisor?.clusterStats()?.forwardedOut, 0, 'node b sent nothing: nobody else subscribes');

  // Once b's last subscriber to the filter goes, a stops sending it there.
  const withdrawn = a.logs.waitFor(
    (l) =>
      l.msg === 'routes of another node changed' && (l.removed as string[] | undefined)?.includes('wanted/+') === true,
  );
  await subscriber.unsubscribeAsync('wanted/+');
  await withdrawn;
  await publisher.publishAsync('wanted/2', 'no one', { qos: 1 });
  const marker = await connectMqttjs(t, a.port, 'marker');
  const markerInbox = new Inbox(marker);
  await marker.subscribeAsync('wanted/+', { qos: 1 });
  await publisher.publishAsync('wanted/3', 'local', { qos: 1 });
  t.equal((await markerInbox.next()).payload, 'local');
  t.equal(a.supervisor?.clusterStats()?.forwardedOut, 1, 'nothing more crossed to node b');
});

t.test('subscribers on several nodes and several workers each get one copy', async (t) => {
  const a = await node(t, 'fan', 2, 'a');
  const b = await node(t, 'fan', 2, 'b');
  const c = await node(t, 'fan', 1, 'c');
  const inboxes: Inbox[] = [];
  for (const [i, tb] of [b, b, c, a].entries()) {
    const sub = await connectMqttjs(t, tb.port, `sub-${i}`);
    await sub.subscribeAsync('fan/#', { qos: 1 });
    inboxes.push(new Inbox(sub));
  }
  const publisher = await connectMqttjs(t, a.port, 'pub');
  for (let i = 0; i < 50; i++) await publisher.publishAsync(`fan/${i}`, String(i), { qos: 1 });
  for (const inbox of inboxes) {
    const payloads: string[] = [];
    for (let i = 0; i < 50; i++) payloads.push((await inbox.next()).payload);
    t.same(
      payloads,
      Array.from({ length: 50 }, (_, i) => String(i)),
      'every message once, in order',
    );
  }
  t.equal(a.supervisor?.clusterStats()?.forwardedOut, 100, 'each message crossed once to each other node');
});

t.test('retained messages are one per topic across the cluster, and a node that starts later has them', async (t) => {
  const a = await node(t, 'ret', 2, 'a');
  const b = await node(t, 'ret', 1, 'b');
  const publisher = await connectMqttjs(t, a.port, 'pub');
  // A retained QoS 1 publish is acknowledged once the cluster's store holds it.
  await publisher.publishAsync('presence/alice', 'online', { qos: 1, retain: true });
  await publisher.publishAsync('presence/bob', 'online', { qos: 1, retain: true });
  await publisher.publishAsync('presence/bob', 'offline', { qos: 1, retain: true });

  const reader = await connectMqttjs(t, b.port, 'reader');
  const inbox = new Inbox(reader);
  await reader.subscribeAsync('presence/+', { qos: 1 });
  const got = [await inbox.next(), await inbox.next()].sort((x, y) => x.topic.localeCompare(y.topic));
  t.same(
    got.map((m) => [m.topic, m.payload, m.retain]),
    [
      ['presence/alice', 'online', true],
      ['presence/bob', 'offline', true],
    ],
    'the latest retained message per topic, from another node',
  );

  // An empty retained payload deletes the topic's message everywhere, the store included.
  const deleter = await connectMqttjs(t, b.port, 'deleter');
  await deleter.publishAsync('presence/alice', '', { qos: 1, retain: true });
  const direct = new Redis(redis.url);
  t.teardown(() => direct.quit());
  t.same((await direct.hkeys('{ret}:retained')).sort(), ['presence/bob'], 'the store holds the one left');

  const c = await node(t, 'ret', 1, 'c');
  const late = await connectMqttjs(t, c.port, 'late');
  const lateInbox = new Inbox(late);
  await late.subscribeAsync('presence/+', { qos: 0 });
  const first = await lateInbox.next();
  t.same([first.topic, first.payload, first.retain], ['presence/bob', 'offline', true], 'a new node loads the store');
  await publisher.publishAsync('presence/marker', 'now', { qos: 1 });
  t.equal((await lateInbox.next()).topic, 'presence/marker', 'and nothing deleted came back');
});

t.test('$SYS topics stay on their own node', async (t) => {
  const a = await node(t, 'sys', 1, 'a');
  await node(t, 'sys', 1, 'b');
  a.supervisor?.publishSys([['$SYS/broker/test', 'a']]);
  const direct = new Redis(redis.url);
  t.teardown(() => direct.quit());
  // A retained QoS 1 publish through a is acknowledged after what a handled before it.
  const publisher = await connectMqttjs(t, a.port, 'pub');
  await publisher.publishAsync('after/sys', 'x', { qos: 1, retain: true });
  t.same(await direct.hkeys('{sys}:retained'), ['after/sys'], 'no $SYS topic in the shared store');
});

t.test('a node killed with SIGKILL is reaped by a survivor, which stops routing to it', async (t) => {
  const a = await node(t, 'kill', 1, 'a');
  const victim = await startCli([
    '--workers',
    '1',
    '--redis',
    redis.url,
    '--redis-prefix',
    'kill',
    '--node-name',
    'victim',
    ...CLUSTER_TIMING_FLAGS,
  ]);
  t.teardown(() => {
    if (victim.child.exitCode === null) victim.child.kill('SIGKILL');
  });
  const joined = await victim.waitForLog((l) => l.msg === 'joined the cluster through Redis');
  const victimId = joined.nodeId as string;
  const known = routeKnown(a, 'doomed/#');
  const sub = await RawClient.open(victim.port);
  t.teardown(() => sub.destroy());
  await sub.connect({ clientId: 'doomed' });
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'doomed/#', qos: 1 }] });
  await sub.expect('suback');
  await known;
  t.equal(a.supervisor?.clusterStats()?.remoteFilters, 1);

  const reaped = a.logs.waitFor((l) => l.msg === 'reaped a node that stopped answering' && l.gone === victimId);
  victim.child.kill('SIGKILL');
  await victim.exited;
  await reaped;
  t.equal(a.supervisor?.clusterStats()?.remoteFilters, 0, 'its routes are gone');
  const direct = new Redis(redis.url);
  t.teardown(() => direct.quit());
  t.equal(await direct.exists(`{kill}:routes:${victimId}`), 0, 'and so is its route set in Redis');
  t.notOk((await direct.zrange('{kill}:nodes', 0, -1)).includes(victimId), 'and its registration');
});

t.test('a node that stops cleanly leaves at once', async (t) => {
  const a = await node(t, 'leave', 1, 'a');
  const b = await startBroker({ workers: 1, redis: redis.url, redisPrefix: 'leave', nodeName: 'b' });
  const sub = await connectMqttjs(t, b.port, 'sub');
  const known = routeKnown(a, 'x/#');
  await sub.subscribeAsync('x/#', { qos: 0 });
  await known;
  const left = a.logs.waitFor((l) => l.msg === 'a node left the cluster');
  await sub.endAsync();
  await b.stop();
  await left;
  t.equal(a.supervisor?.clusterStats()?.remoteFilters, 0);
});

t.test('a bad or unreachable Redis stops start-up with one line', async (t) => {
  const { tern } = await import('./support/cli.js');
  const bad = await tern(['--port', '0', '--no-metrics', '--redis', 'mongodb://x']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^tern: redis = "mongodb:\/\/x" is not valid: unsupported scheme/);
  t.equal(bad.stderr.trim().split('\n').length, 1);
  const closed = await import('@tern/testkit').then((m) => m.freePort());
  const down = await tern(['--port', '0', '--no-metrics', '--redis', `redis://127.0.0.1:${closed}`]);
  t.equal(down.code, 1);
  t.match(down.stderr, /^tern: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
  t.equal(down.stderr.trim().split('\n').length, 1);
});

t.test('while Redis is unreachable a node refuses new clients clearly, serves its own, and recovers', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.destroy());
  const tern = await startCli(['--workers', '1', '--redis', own.url, '--metrics', '--metrics-port', '0']);
  t.teardown(() => {
    if (tern.child.exitCode === null) tern.child.kill('SIGKILL');
  });
  const http = await tern.waitForLog((l) => l.msg.startsWith('listening for HTTP'));
  const base = `http://127.0.0.1:${http.port as number}`;
  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { status: res.status, text: await res.text() };
  };
  t.equal((await get('/ready')).status, 200);
  t.match((await get('/metrics')).text, /^tern_redis_up\{[^}]*\} 1$/m);

  const subscriber = await RawClient.connected(tern.port, { clientId: 'local-sub' });
  t.teardown(() => subscriber.client.destroy());
  subscriber.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'local/#', qos: 0 }] });
  await subscriber.client.expect('suback');

  const down = tern.waitForLog((l) => l.msg.startsWith('Redis is unreachable'));
  await own.stop();
  await down;
  const ready = await get('/ready');
  t.equal(ready.status, 503);
  t.match(ready.text, /Redis is unreachable/);
  t.match((await get('/metrics')).text, /^tern_redis_up\{[^}]*\} 0$/m);

  const refused = await RawClient.connected(tern.port, { clientId: 'newcomer' });
  t.teardown(() => refused.client.destroy());
  t.equal(refused.connack.returnCode, 3, 'CONNACK 0x03: server unavailable');
  await tern.waitForLog((l) => l.msg.startsWith('connection refused: the cluster cannot take the client id'));

  // What is already connected keeps working locally (QoS 0 needs nothing from Redis).
  const publisher = subscriber.client;
  publisher.send({
    cmd: 'publish',
    topic: 'local/x',
    payload: Buffer.from('still here'),
    qos: 0,
    retain: false,
    dup: false,
  });
  const p = await subscriber.client.expect('publish');
  t.equal(p.payload.toString(), 'still here');

  const back = tern.waitForLog((l) => l.msg.startsWith('Redis is reachable again'));
  await own.restart();
  await back;
  t.equal((await get('/ready')).status, 200, 'ready again on its own');
  const welcome = await RawClient.connected(tern.port, { clientId: 'newcomer' });
  t.teardown(() => welcome.client.destroy());
  t.equal(welcome.connack.returnCode, 0, 'and takes new clients');
});
