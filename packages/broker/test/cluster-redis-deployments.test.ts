/**
 * The `redis` setting's other deployments, for real: nodes joined through a Redis Cluster
 * (three masters: every key Tern writes carries one hash tag, so its scripts and transactions
 * stay on one slot) and through Sentinel (the nodes ask the sentinel where the master is).
 * In each: a publish crosses nodes, a persistent session resumes on the other node with its
 * queue, and a retained message is shared.
 */
import type { Packet } from '@tern/protocol';
import {
  RawClient,
  startBroker,
  startRedisCluster,
  startRedisSentinel,
  type TestBroker,
  type TestRedisDeployment,
} from '@tern/testkit';
import t, { type Test } from 'tap';

type Publish = Extract<Packet, { cmd: 'publish' }>;

async function node(t: Test, url: string, name: string): Promise<TestBroker> {
  const tb = await startBroker({ workers: 1, redis: url, nodeName: name });
  t.teardown(() => tb.stop());
  return tb;
}

async function connect(t: Test, port: number, clientId: string, clean: boolean) {
  const { client, connack } = await RawClient.connected(port, { clientId, clean });
  t.teardown(() => client.destroy());
  return { c: client, connack };
}

async function next(c: RawClient): Promise<Publish> {
  const p = await c.expect('publish');
  if (p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId as number });
  return p;
}

function checks(name: string, start: () => Promise<TestRedisDeployment>): void {
  t.test(`through ${name}`, async (t) => {
    const redis = await start();
    t.teardown(() => redis.stop());
    const a = await node(t, redis.url, 'a');
    const b = await node(t, redis.url, 'b');

    const sub = await connect(t, b.port, 'far', false);
    sub.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x/#', qos: 1 }] });
    await sub.c.expect('suback');
    const pub = await connect(t, a.port, 'near', true);
    pub.c.send({
      cmd: 'publish',
      topic: 'x/1',
      payload: Buffer.from('across'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 1,
    });
    await pub.c.expect('puback');
    t.equal((await next(sub.c)).payload.toString(), 'across', 'a publish crosses nodes');

    await sub.c.disconnect();
    pub.c.send({
      cmd: 'publish',
      topic: 'x/2',
      payload: Buffer.from('queued'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 2,
    });
    await pub.c.expect('puback');
    const back = await connect(t, a.port, 'far', false);
    t.equal(back.connack.sessionPresent, true, 'the session resumes on the other node');
    t.equal((await next(back.c)).payload.toString(), 'queued', 'with its queue');

    pub.c.send({
      cmd: 'publish',
      topic: 'r/1',
      payload: Buffer.from('kept'),
      qos: 1,
      retain: true,
      dup: false,
      messageId: 3,
    });
    await pub.c.expect('puback');
    const reader = await connect(t, b.port, 'reader', true);
    reader.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'r/#', qos: 0 }] });
    await reader.c.expect('suback');
    const retained = await reader.c.expect('publish');
    t.same([retained.payload.toString(), retained.retain], ['kept', true], 'retained messages are shared');
  });
}

checks('a Redis Cluster of three masters', () => startRedisCluster(3));
checks('Redis Sentinel', () => startRedisSentinel());
