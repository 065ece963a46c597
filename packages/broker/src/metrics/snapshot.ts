/**
 * A routing worker's figures at one instant, as plain numbers: what a worker hands the thread
 * that serves /metrics (through postMessage or JSON), so the broker's hot-path counters never
 * touch prom-client and one collector can sum any number of workers.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { Broker } from '../broker.js';

/** Ever-growing totals. Arrays are indexed by packet type or QoS; records are keyed by reason. */
export interface SnapshotCounters {
  /** By listener: tcp, tls, ws, wss. */
  connectionsAccepted: Record<string, number>;
  connectionsRejected: Record<string, number>;
  disconnects: Record<string, number>;
  /** By packet type (index 1 CONNECT ... 15 AUTH). */
  packetsReceived: number[];
  packetsSent: number[];
  /** By packet type (whole packets, fixed header included). */
  bytesReceived: number[];
  /** By packet type. */
  bytesSent: number[];
  /** By QoS (index 0..2). */
  messagesPublished: number[];
  messagesDelivered: number[];
  messagesDropped: Record<string, number>;
  queueOverflows: number;
  willsPublished: number;
  /** By what the topic ACL refused: publish, subscribe, will, delivery, retained. */
  aclDenied: Record<string, number>;
  keepaliveTimeouts: number;
  protocolErrors: number;
  takeovers: number;
  /** Publishes forwarded to other routing workers ('out') and received from them ('in'). */
  messagesForwarded: Record<'out' | 'in', number>;
  /** Restarts of this worker's broker after a crash. */
  workerRestarts: number;
  /** Times each configured limit bit, by limit (max-packet-size, max-subscriptions, ...). */
  limitsHit: Record<string, number>;
  /** Refused by the auth plug-in, by action: connect, publish, subscribe. */
  authPluginDenied: Record<string, number>;
  /** Calls into the auth plug-in that threw or timed out, by action. */
  authPluginFailures: Record<string, number>;
}

/** Values of the moment. */
export interface SnapshotGauges {
  /** Sockets open, CONNECTed or not. */
  connectionsOpen: number;
  /** Clients with a completed CONNECT. */
  clientsConnected: number;
  /** (filter, client) pairs in the subscription index. */
  subscriptions: number;
  /**
   * Distinct filters this worker routes for. Until the cluster route table exists this is the
   * subscription index's filter count; then it becomes the route table's size.
   */
  routeTableFilters: number;
  retainedMessages: number;
  /** Sessions that outlive their connection (cleanSession=0), by whether their client is online. */
  persistentSessions: Record<'online' | 'offline', number>;
  /** Messages waiting in session queues, over all sessions. */
  queuedMessages: number;
  /** Outbound QoS 1/2 messages awaiting acknowledgement, over all sessions. */
  inflightMessages: number;
  /** Mean event-loop delay of the worker's thread since its previous snapshot, seconds. */
  eventLoopLagSeconds: number;
  /** 99th percentile of the same, seconds. */
  eventLoopLagP99Seconds: number;
  /** When the worker's counters started, seconds since the epoch. */
  startTimeSeconds: number;
  /** 1 while the node is above memoryHighWaterMark (every worker reports the node's state). */
  memoryHighWater: number;
}

export interface StatsSnapshot {
  /** The `worker` label: stable across restarts of the same worker slot. */
  worker: string;
  /** Changes when the counters restart from zero (see BrokerStats.incarnation). */
  incarnation: string;
  counters: SnapshotCounters;
  gauges: SnapshotGauges;
}

/** Where snapshots come from: this thread's broker now, every routing worker later. */
export interface StatsSource {
  /** One snapshot per worker that answered; called once per scrape. */
  snapshots(): StatsSnapshot[] | Promise<StatsSnapshot[]>;
}

/** The source for a broker running in this thread: one worker, labelled `worker`. */
export function brokerStatsSource(broker: Broker, worker = '0'): StatsSource {
  return { snapshots: () => [snapshotStats(broker, worker)] };
}

/**
 * Reads a broker's figures. Walks the sessions and connections once (queue sizes, bytes of
 * live connections), so it is meant for scrapes, not for every packet.
 */
export function snapshotStats(broker: Broker, worker = '0', options: { eventLoop?: boolean } = {}): StatsSnapshot {
  const s = broker.stats;
  let online = 0;
  let offline = 0;
  let queued = 0;
  let inflight = 0;
  for (const session of broker.sessions.values()) {
    queued += session.queue.length;
    inflight += session.inflight.size;
    if (session.isTransient) continue;
    if (session.owner === null) offline++;
    else online++;
  }
  // Reading the lag restarts its measurement: only the scrape's snapshot may do that.
  const lag = options.eventLoop === false ? { mean: 0, p99: 0 } : readEventLoopLag();
  return {
    worker,
    incarnation: s.incarnation,
    counters: {
      connectionsAccepted: { ...s.connectionsAccepted },
      connectionsRejected: { ...s.connectionsRejected },
      disconnects: { ...s.disconnects },
      packetsReceived: Array.from(s.packetsReceived),
      packetsSent: Array.from(s.sent.packetsSent),
      bytesReceived: Array.from(s.bytesReceivedByType),
      bytesSent: Array.from(s.sent.bytesSent),
      messagesPublished: Array.from(s.publishedByQos),
      messagesDelivered: Array.from(s.deliveredByQos),
      messagesDropped: {
        'queue-full': s.droppedQueueFull,
        'slow-subscriber': s.droppedSlowSubscriber,
        'offline-qos0': s.droppedOffline,
        'memory-high-water-mark': s.droppedMemory,
        'too-large-for-client': s.droppedTooLarge,
        expired: s.droppedExpired,
        'no-share-member': s.droppedNoShareMember,
      },
      queueOverflows: s.queueOverflows,
      willsPublished: s.willsPublished,
      aclDenied: { ...s.aclDenied },
      keepaliveTimeouts: s.keepaliveTimeouts,
      protocolErrors: s.protocolErrors,
      takeovers: s.takeovers,
      messagesForwarded: { out: s.forwardedOut, in: s.forwardedIn },
      workerRestarts: s.restarts,
      limitsHit: { ...s.limitsHit },
      authPluginDenied: { ...s.pluginDenied },
      authPluginFailures: { ...s.pluginFailures },
    },
    gauges: {
      connectionsOpen: broker.connections.size,
      clientsConnected: s.clientsConnected,
      subscriptions: broker.subscriptions.size,
      routeTableFilters: broker.subscriptions.filterCount,
      retainedMessages: broker.retained.size,
      persistentSessions: { online, offline },
      queuedMessages: queued,
      inflightMessages: inflight,
      eventLoopLagSeconds: lag.mean,
      eventLoopLagP99Seconds: lag.p99,
      startTimeSeconds: s.startedAt / 1000,
      memoryHighWater: broker.memoryHigh ? 1 : 0,
    },
  };
}

/** One per thread (module state is per thread): it measures the thread that takes snapshots. */
let lagMonitor: IntervalHistogram | null = null;

/** Event-loop delay since the last call, in seconds; the first call starts measuring and reads 0. */
function readEventLoopLag(): { mean: number; p99: number } {
  if (lagMonitor === null) {
    lagMonitor = monitorEventLoopDelay({ resolution: 10 });
    lagMonitor.enable();
    return { mean: 0, p99: 0 };
  }
  const h = lagMonitor;
  // An empty histogram reports NaN for its mean.
  const lag = h.count === 0 ? { mean: 0, p99: 0 } : { mean: h.mean / 1e9, p99: h.percentile(99) / 1e9 };
  h.reset();
  return lag;
}
