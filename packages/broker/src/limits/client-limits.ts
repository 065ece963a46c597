/**
 * Per-client limits that bite inside a connection: each hit is counted in
 * tern_limits_hit_total, and the first hit of each limit on a connection logs one line (a
 * client hammering a limit does not flood the log).
 */
import type { Client } from '../client.js';
import type { LimitName } from '../stats.js';

/** One bit per limit in Client.limitsLogged. */
const LIMIT_BITS: Readonly<Record<LimitName, number>> = {
  'max-packet-size': 1 << 0,
  'max-connections': 1 << 1,
  'connect-timeout': 1 << 2,
  'max-inflight': 1 << 3,
  'max-queued': 1 << 4,
  'max-socket-buffer': 1 << 5,
  'max-subscriptions': 1 << 6,
  'max-topic-length': 1 << 7,
  'max-topic-levels': 1 << 8,
  'max-publish-rate': 1 << 9,
  'memory-high-water-mark': 1 << 10,
};

/**
 * Counts a hit of `limit` by `client`. True the first time on this connection: the caller
 * logs its one line then. (No fields object is built for the hits that log nothing.)
 */
export function limitHit(client: Client, limit: LimitName): boolean {
  client.broker.stats.limitsHit[limit]++;
  const bit = LIMIT_BITS[limit];
  if ((client.limitsLogged & bit) !== 0) return false;
  client.limitsLogged |= bit;
  return true;
}
