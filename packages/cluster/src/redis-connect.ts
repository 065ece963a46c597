/**
 * An ioredis client for a Redis target (redis-url.ts): a single instance, Sentinel, or a
 * Redis Cluster. Every key Tern writes carries the same hash tag ({prefix}), so multi-key transactions and
 * scripts stay on one slot of a Redis Cluster.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-url.js';

export type RedisClient = Redis | Cluster;

/**
 * A client that connects when asked (connect()), so a start-up failure is an answer rather
 * than a retry loop, and then reconnects on its own for as long as the node runs.
 * `name` shows in Redis's CLIENT LIST.
 */
export function createRedisClient(target: RedisTarget, name: string): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: name,
    // Commands issued while the connection is down wait for it instead of failing after
    // 20 retries: the caller decides what may wait (see the gateway's health state).
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  };
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, common);
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.hosts,
        name: target.master,
        username: target.username,
        password: target.password,
        db: target.db,
      });
    case 'cluster':
      return new Cluster(target.hosts, {
        lazyConnect: true,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
        redisOptions: { ...common, username: target.username, password: target.password },
      });
  }
}
