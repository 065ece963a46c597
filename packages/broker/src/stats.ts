import { randomUUID } from 'node:crypto';
import type { ConnectionCounters } from '@tern/listener';
import type { CloseReason } from './client.js';
import type { ListenerKind } from './listeners.js';

/** Why a connection was refused before it became a client: a label of tern_connections_rejected_total. */
export type RejectReason =
  | 'max-connections'
  | 'unsupported-protocol-version'
  | 'identifier-rejected'
  | 'bad-credentials'
  | 'not-authorized'
  | 'server-unavailable'
  | 'packet-too-large';

/** What the topic ACL refused: a label of tern_acl_denied_total. */
export type AclDenial = 'publish' | 'subscribe' | 'will' | 'delivery' | 'retained';

/**
 * A configured limit that bit: a label of tern_limits_hit_total. Each is counted where it
 * refuses, slows or drops something (docs/metrics.md says what one hit is for each).
 */
export type LimitName =
  | 'max-packet-size'
  | 'max-connections'
  | 'connect-timeout'
  | 'max-inflight'
  | 'max-queued'
  | 'max-socket-buffer'
  | 'max-subscriptions'
  | 'max-topic-length'
  | 'max-topic-levels'
  | 'max-publish-rate'
  | 'memory-high-water-mark';

/** What the auth plug-in was asked: a label of tern_auth_plugin_denied_total and _failures_total. */
export type PluginAction = 'connect' | 'publish' | 'subscribe';

/** Slots in a by-packet-type array: the type is the first byte's high nibble (1 CONNECT ... 15 AUTH). */
export const PACKET_TYPE_SLOTS = 16;

/**
 * Counters the broker keeps for $SYS and Prometheus. Plain numbers and typed arrays bumped on
 * the hot path; read only by the periodic $SYS publisher and by metrics snapshots, never
 * pushed anywhere per packet.
 */
export class BrokerStats {
  readonly startedAt = Date.now();
  /**
   * Changes whenever counting starts again from zero (a new broker or worker), so whoever sums
   * these across restarts knows to carry the old totals instead of seeing counters fall.
   */
  readonly incarnation = randomUUID();
  /** Connections accepted (sockets), ever, by listener. */
  readonly connectionsAccepted: Record<ListenerKind, number> = { tcp: 0, tls: 0, ws: 0, wss: 0 };
  /** Connections refused before or at CONNECT, by reason. */
  readonly connectionsRejected: Record<RejectReason, number> = {
    'max-connections': 0,
    'unsupported-protocol-version': 0,
    'identifier-rejected': 0,
    'bad-credentials': 0,
    'not-authorized': 0,
    'server-unavailable': 0,
    'packet-too-large': 0,
  };
  /** Connections ended, by the first reason to close them (see CloseReason). */
  readonly disconnects: Record<CloseReason, number> = {
    'client-disconnect': 0,
    'disconnect-with-will': 0,
    'socket-closed': 0,
    'socket-error': 0,
    'protocol-error': 0,
    'keepalive-timeout': 0,
    'connect-timeout': 0,
    takeover: 0,
    'server-shutdown': 0,
    'not-authorized': 0,
    'internal-error': 0,
  };
  /** Clients with a completed CONNECT, now. */
  clientsConnected = 0;
  /** Highest clientsConnected seen. */
  clientsMaximum = 0;
  /** Packets decoded from clients, by packet type. */
  readonly packetsReceived = new Float64Array(PACKET_TYPE_SLOTS);
  /** Bytes of those packets (fixed header included), by packet type. */
  readonly bytesReceivedByType = new Float64Array(PACKET_TYPE_SLOTS);
  /** Packets and bytes written to clients, by packet type: every Connection counts into these. */
  readonly sent: ConnectionCounters = {
    packetsSent: new Float64Array(PACKET_TYPE_SLOTS),
    bytesSent: new Float64Array(PACKET_TYPE_SLOTS),
  };
  /** PUBLISH packets received from clients, by QoS (QoS 2 repeats before PUBREL included). */
  readonly publishedByQos = new Float64Array(3);
  /** PUBLISH packets sent to subscribers, by QoS; resends of unacknowledged ones are not counted. */
  readonly deliveredByQos = new Float64Array(3);
  /** QoS 0 deliveries dropped because the subscriber's socket was too far behind. */
  droppedSlowSubscriber = 0;
  /** QoS 1/2 deliveries dropped because a session queue was full. */
  droppedQueueFull = 0;
  /** QoS 0 messages for offline sessions (never queued). */
  droppedOffline = 0;
  /** QoS 0 deliveries shed while the process is above memoryHighWaterMark. */
  droppedMemory = 0;
  /** Deliveries larger than the MQTT 5 client's maximum packet size: not sent [MQTT-3.1.2-25]. */
  droppedTooLarge = 0;
  /** Deliveries whose MQTT 5 message expiry interval passed while they waited [MQTT-3.3.2-5]. */
  droppedExpired = 0;
  /** Messages for a shared subscription group with no member left to take them. */
  droppedNoShareMember = 0;
  /** Times each configured limit bit. */
  readonly limitsHit: Record<LimitName, number> = {
    'max-packet-size': 0,
    'max-connections': 0,
    'connect-timeout': 0,
    'max-inflight': 0,
    'max-queued': 0,
    'max-socket-buffer': 0,
    'max-subscriptions': 0,
    'max-topic-length': 0,
    'max-topic-levels': 0,
    'max-publish-rate': 0,
    'memory-high-water-mark': 0,
  };
  /** Refused by the auth plug-in (an answer of no, an error or a timeout), by what it was asked. */
  readonly pluginDenied: Record<PluginAction, number> = { connect: 0, publish: 0, subscribe: 0 };
  /** Calls into the auth plug-in that threw or took longer than authPluginTimeoutMs (refusals too). */
  readonly pluginFailures: Record<PluginAction, number> = { connect: 0, publish: 0, subscribe: 0 };
  /** Times a session queue started dropping (one per episode, as logged). */
  queueOverflows = 0;
  willsPublished = 0;
  /**
   * Refused by the topic ACL: PUBLISH packets dropped, SUBSCRIBE filters answered 0x80, wills
   * refused (at CONNECT, or dropped when an ACL reload revoked them), deliveries not made
   * (a topic a deny rule covers under a granted filter), retained messages held back from a
   * new subscriber.
   */
  readonly aclDenied: Record<AclDenial, number> = { publish: 0, subscribe: 0, will: 0, delivery: 0, retained: 0 };
  protocolErrors = 0;
  keepaliveTimeouts = 0;
  takeovers = 0;
  /** Publishes sent to other members (one per interested member) and received from them. */
  forwardedOut = 0;
  forwardedIn = 0;
  /** Times this member's broker was restarted after a crash (in its worker thread). */
  restarts = 0;
}
