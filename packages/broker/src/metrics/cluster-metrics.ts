/**
 * The cluster figures of a node (its gateway's), read at scrape time: whether Redis is
 * reachable, how many other nodes and persistent sessions it knows, and what crossed between
 * nodes. Absent on a node that runs on its own.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { GatewayStats } from '../workers/node-gateway.js';

export type ClusterStatsSource = () => GatewayStats | null;

export function registerClusterMetrics(registry: Registry, source: ClusterStatsSource): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: GatewayStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const stats = source();
        if (stats !== null) this.set(read(stats));
      },
    });
  };
  const counter = (name: string, help: string, read: (s: GatewayStats) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        const stats = source();
        if (stats === null) return;
        this.reset();
        this.inc(read(stats));
      },
    });
  };
  gauge('tern_redis_up', '1 while this node reaches Redis, 0 while it does not', (s) => (s.redisUp ? 1 : 0));
  gauge('tern_cluster_nodes', 'Other nodes of the cluster that route filters to themselves', (s) => s.nodes);
  gauge('tern_cluster_remote_filters', 'Filters other nodes route to themselves', (s) => s.remoteFilters);
  gauge(
    'tern_cluster_persistent_sessions',
    'Persistent sessions with subscriptions, cluster-wide',
    (s) => s.persistentSessions,
  );
  counter('tern_cluster_forwarded_out_total', 'Publish records sent to other nodes', (s) => s.forwardedOut);
  counter('tern_cluster_forwarded_in_total', 'Publish records received from other nodes', (s) => s.forwardedIn);
  counter('tern_cluster_store_queued_total', 'Deliveries this node queued in the session store', (s) => s.storeQueued);
  counter(
    'tern_cluster_orphan_wills_total',
    'Wills of dead nodes\u2019 clients this node published',
    (s) => s.orphanWills,
  );
}
