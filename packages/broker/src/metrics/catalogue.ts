/**
 * Every Tern metric: its name, help text and label, one per field of a StatsSnapshot. All
 * names live here (docs/metrics.md lists the same). Each series also carries `worker` (the
 * routing worker) and `node` (config.nodeName).
 *
 * Cluster metrics join here as snapshot fields when the cluster exists: the route table's size
 * already has its gauge; Redis round-trip latency will be a histogram whose bucket counts the
 * snapshot carries and the collector sums.
 */
import { CMD_BY_TYPE, type PacketCmd } from '@tern/protocol';
import type { SnapshotCounters, SnapshotGauges } from './snapshot.js';

export interface MetricDef {
  name: string;
  help: string;
  /**
   * The label that tells a field's values apart. For an array field, `values[i]` names index i
   * (an index without a name is not exported); for a record field the keys are the values.
   */
  label?: { name: string; values?: readonly (string | undefined)[] };
}

/**
 * Packet type names by type number, as the protocol package spells them, for the types that
 * may travel in one direction. A client sending a server's packet (or the reverse) is a
 * protocol error: counted under tern_protocol_errors_total, not as a type here.
 */
function packetTypes(...cmds: PacketCmd[]): MetricDef['label'] {
  return {
    name: 'type',
    values: CMD_BY_TYPE.map((cmd) => (cmd !== undefined && cmds.includes(cmd) ? cmd : undefined)),
  };
}
const BOTH_WAYS: PacketCmd[] = ['publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'disconnect', 'auth'];
const FROM_CLIENTS = packetTypes('connect', 'subscribe', 'unsubscribe', 'pingreq', ...BOTH_WAYS);
const TO_CLIENTS = packetTypes('connack', 'suback', 'unsuback', 'pingresp', ...BOTH_WAYS);
const QOS = { name: 'qos', values: ['0', '1', '2'] } as const;

export const COUNTERS: Readonly<Record<keyof SnapshotCounters, MetricDef>> = {
  connectionsAccepted: {
    name: 'tern_connections_accepted_total',
    help: 'Connections accepted, by listener: tcp, tls, ws, wss (TLS once its handshake completed, WebSocket once upgraded).',
    label: { name: 'listener' },
  },
  connectionsRejected: {
    name: 'tern_connections_rejected_total',
    help: 'Connections refused at accept or at CONNECT, by reason (bad-credentials: CONNACK 0x04, not-authorized: 0x05).',
    label: { name: 'reason' },
  },
  disconnects: {
    name: 'tern_disconnects_total',
    help: 'Connections ended, by the first reason to end them (client-disconnect is a clean DISCONNECT).',
    label: { name: 'reason' },
  },
  packetsReceived: {
    name: 'tern_packets_received_total',
    help: 'MQTT packets received from clients, by packet type.',
    label: FROM_CLIENTS,
  },
  packetsSent: {
    name: 'tern_packets_sent_total',
    help: 'MQTT packets sent to clients, by packet type.',
    label: TO_CLIENTS,
  },
  bytesReceived: {
    name: 'tern_bytes_received_total',
    help: 'Bytes received from clients (whole packets, fixed header included), by packet type.',
    label: FROM_CLIENTS,
  },
  bytesSent: {
    name: 'tern_bytes_sent_total',
    help: 'Bytes sent to clients, by packet type.',
    label: TO_CLIENTS,
  },
  messagesPublished: {
    name: 'tern_messages_published_total',
    help: 'PUBLISH packets received from clients, by QoS.',
    label: QOS,
  },
  messagesDelivered: {
    name: 'tern_messages_delivered_total',
    help: 'Messages sent to subscribers, by QoS of the delivery (resends not counted).',
    label: QOS,
  },
  messagesDropped: {
    name: 'tern_messages_dropped_total',
    help: "Deliveries dropped, by reason: queue-full, slow-subscriber (QoS 0), offline-qos0, memory-high-water-mark (QoS 0 shed), too-large-for-client (over an MQTT 5 client's maximum packet size), expired (MQTT 5 message expiry).",
    label: { name: 'reason' },
  },
  queueOverflows: {
    name: 'tern_queue_overflows_total',
    help: 'Times a session queue filled up and started dropping (one per episode).',
  },
  willsPublished: {
    name: 'tern_wills_published_total',
    help: 'Last-will messages published.',
  },
  aclDenied: {
    name: 'tern_acl_denied_total',
    help: 'Refused by the topic ACL, by action: publish (dropped), subscribe (SUBACK 0x80), will, delivery, retained (on SUBSCRIBE).',
    label: { name: 'action' },
  },
  keepaliveTimeouts: {
    name: 'tern_keepalive_timeouts_total',
    help: 'Connections closed after 1.5 x keepalive of silence.',
  },
  protocolErrors: {
    name: 'tern_protocol_errors_total',
    help: 'Connections closed for breaking the protocol (malformed or forbidden packets).',
  },
  takeovers: {
    name: 'tern_takeovers_total',
    help: 'Connections taken over by a new CONNECT with the same client id.',
  },
  messagesForwarded: {
    name: 'tern_messages_forwarded_total',
    help: 'Publishes forwarded to other routing workers (out: once per interested worker) and received from them (in).',
    label: { name: 'direction' },
  },
  workerRestarts: {
    name: 'tern_worker_restarts_total',
    help: "Restarts of a routing worker's broker after a crash (its clients were disconnected, its sessions kept).",
  },
  limitsHit: {
    name: 'tern_limits_hit_total',
    help: 'Times a configured limit refused, slowed or dropped something, by limit (docs/metrics.md says what one hit is).',
    label: { name: 'limit' },
  },
  authPluginDenied: {
    name: 'tern_auth_plugin_denied_total',
    help: 'Refused by the auth plug-in (a no, an error or a timeout), by action: connect, publish, subscribe.',
    label: { name: 'action' },
  },
  authPluginFailures: {
    name: 'tern_auth_plugin_failures_total',
    help: 'Calls into the auth plug-in that threw or took longer than authPluginTimeoutMs, by action.',
    label: { name: 'action' },
  },
};

export const GAUGES: Readonly<Record<keyof SnapshotGauges, MetricDef>> = {
  connectionsOpen: {
    name: 'tern_connections_open',
    help: 'Sockets open now, CONNECTed or not.',
  },
  clientsConnected: {
    name: 'tern_clients_connected',
    help: 'Clients with a completed CONNECT now.',
  },
  subscriptions: {
    name: 'tern_subscriptions',
    help: 'Subscriptions (filter, client pairs) in the subscription index.',
  },
  routeTableFilters: {
    name: 'tern_route_table_filters',
    help: 'Distinct topic filters in the route table.',
  },
  retainedMessages: {
    name: 'tern_retained_messages',
    help: 'Retained messages stored.',
  },
  persistentSessions: {
    name: 'tern_persistent_sessions',
    help: 'Sessions that outlive their connection (cleanSession=0), by state: online or offline.',
    label: { name: 'state' },
  },
  queuedMessages: {
    name: 'tern_queued_messages',
    help: 'Messages waiting in session queues.',
  },
  inflightMessages: {
    name: 'tern_inflight_messages',
    help: 'Outbound QoS 1/2 messages awaiting acknowledgement.',
  },
  eventLoopLagSeconds: {
    name: 'tern_eventloop_lag_seconds',
    help: "Mean event-loop delay of the worker's thread since the previous scrape.",
  },
  eventLoopLagP99Seconds: {
    name: 'tern_eventloop_lag_p99_seconds',
    help: "99th percentile event-loop delay of the worker's thread since the previous scrape.",
  },
  startTimeSeconds: {
    name: 'tern_worker_start_time_seconds',
    help: "When the worker's counters started, seconds since the Unix epoch.",
  },
  memoryHighWater: {
    name: 'tern_memory_high_water',
    help: '1 while the node is above memoryHighWaterMark (CONNECTs refused, QoS 0 shed), else 0.',
  },
};

/**
 * Calls `fn` once per exported series of one snapshot field: with the label value (or '' for
 * an unlabelled field) and the number.
 */
export function forEachSeries(
  def: MetricDef,
  value: number | readonly number[] | Readonly<Record<string, number>>,
  fn: (label: string, n: number) => void,
): void {
  if (typeof value === 'number') {
    fn('', value);
  } else if (Array.isArray(value)) {
    const names = def.label?.values ?? [];
    for (let i = 0; i < value.length; i++) {
      const name = names[i];
      if (name !== undefined) fn(name, value[i] as number);
    }
  } else {
    for (const [key, n] of Object.entries(value)) fn(key, n);
  }
}
