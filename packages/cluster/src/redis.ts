/**
 * The Redis side of the cluster transport, a separate entry point (`@tern/cluster/redis`) so
 * that a node without Redis never loads ioredis.
 */
export {
  RedisBus,
  type RedisBusEvents,
  type RedisBusOptions,
  RedisUnavailableError,
  retryTransient,
} from './redis-bus.js';
export { createRedisClient, type RedisClient } from './redis-connect.js';
