/**
 * The store contract against a real redis-server (each case in its own key prefix), and again
 * against a Redis Cluster: every script must stay on the slot of its hash tag.
 */
import { startRedis, startRedisCluster, type TestRedis } from '@tern/testkit';
import { Cluster, Redis } from 'ioredis';
import t from 'tap';
import { RedisSessionStore } from '../src/index.js';
import { storeContract } from './store-contract.js';

let redis: TestRedis;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.destroy());

let cases = 0;
storeContract(t, async (limits) => {
  const prefix = `contract${cases++}`;
  const connections: Redis[] = [];
  const make = (): RedisSessionStore<number> => {
    const connection = new Redis(redis.url);
    connections.push(connection);
    return new RedisSessionStore<number>(connection, { ...limits, prefix, maxInflight: 32 });
  };
  const store = make();
  return {
    store,
    reopen: async () => make(),
    storedMessages: async () => (await (connections[0] as Redis).keys(`{${prefix}}:m:*`)).length,
    stop: async () => {
      await Promise.all(connections.map((c) => c.quit()));
    },
  };
});

t.test('an expired session leaves no key behind', async (t) => {
  const connection = new Redis(redis.url);
  t.teardown(() => connection.quit());
  const store = new RedisSessionStore<number>(connection, {
    prefix: 'leftovers',
    maxQueued: 10,
    overflowPolicy: 'drop-oldest',
    maxInflight: 4,
  });
  await store.open('a', 60, false);
  store.subscribe('a', 'x/#', 1 + 64);
  store.enqueue(
    { id: 1, topic: 'x/1', payload: Buffer.from('p'), qos: 1, retain: false, origin: 'o', time: 1, properties: null },
    [['a', 1]],
  );
  store.sent('a', 1, 5);
  store.incomingQos2('a', 3, true);
  store.offline('a', 1000);
  await store.flushed();
  t.same(await store.expire(1000), ['a']);
  t.same(await connection.keys('{leftovers}:*'), []);
});

t.test('a holder leaves no key behind: offline, delete, expire and orphaned each clear it', async (t) => {
  const connection = new Redis(redis.url);
  t.teardown(() => connection.quit());
  const store = new RedisSessionStore<number>(connection, {
    prefix: 'holders',
    maxQueued: 10,
    overflowPolicy: 'drop-oldest',
    maxInflight: 4,
  });
  const held = async () => (await connection.keys('{holders}:held:*')).sort();
  await store.open('a', 60, false, 'n1');
  await store.open('b', 60, false, 'n1');
  await store.open('c', 60, false, 'n2');
  await store.open('d', 60, false, 'n3');
  t.same(await held(), ['{holders}:held:n1', '{holders}:held:n2', '{holders}:held:n3']);
  t.equal(await connection.hget('{holders}:s:a', 'holder'), 'n1', 'the session names its holder');
  store.offline('a', 1000);
  store.delete('b');
  await store.flushed();
  t.same(await held(), ['{holders}:held:n2', '{holders}:held:n3']);
  t.equal(await connection.hget('{holders}:s:a', 'holder'), null, 'an offline session has none');
  t.equal(await store.orphaned('n2', 2000), 1);
  await store.open('d', 60, false, 'n1');
  t.same(await held(), ['{holders}:held:n1'], 'orphaned, and moved to another holder');
  t.same(await store.expire(2000 + 60_000), ['a', 'c']);
  store.delete('d');
  await store.flushed();
  t.same(await connection.keys('{holders}:*'), []);
});

t.test('on a Redis Cluster of three masters', async (t) => {
  const deployment = await startRedisCluster(3);
  t.teardown(() => deployment.stop());
  const nodes = deployment.url
    .slice('redis-cluster://'.length)
    .split(',')
    .map((node) => {
      const [host, port] = node.split(':');
      return { host: host as string, port: Number(port) };
    });
  let clusterCases = 0;
  storeContract(t, async (limits) => {
    const prefix = `cluster${clusterCases++}`;
    const connections: Cluster[] = [];
    const make = (): RedisSessionStore<number> => {
      const connection = new Cluster(nodes);
      connections.push(connection);
      return new RedisSessionStore<number>(connection, { ...limits, prefix, maxInflight: 32 });
    };
    const store = make();
    return {
      store,
      reopen: async () => make(),
      // KEYS reaches one node: ask each master (the hash tag puts every key on one of them).
      storedMessages: async () => {
        const masters = (connections[0] as Cluster).nodes('master');
        const counts = await Promise.all(masters.map(async (m) => (await m.keys(`{${prefix}}:m:*`)).length));
        return counts.reduce((a, b) => a + b, 0);
      },
      stop: async () => {
        await Promise.all(connections.map((c) => c.quit()));
      },
    };
  });
});
