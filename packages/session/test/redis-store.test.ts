/** The store contract against a real redis-server (each case in its own key prefix). */
import { startRedis, type TestRedis } from '@tern/testkit';
import { Redis } from 'ioredis';
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
  const make = (): RedisSessionStore => {
    const connection = new Redis(redis.url);
    connections.push(connection);
    return new RedisSessionStore(connection, { ...limits, prefix, maxInflight: 32 });
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
