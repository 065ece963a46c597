import { Message } from '@tern/session';
import type { Broker } from './broker.js';
import { type StatsSnapshot, snapshotStats } from './metrics/snapshot.js';
import { VERSION } from './version.js';

/**
 * Publishes broker figures under $SYS/broker/... every `sysInterval` seconds, as retained
 * messages, with Mosquitto's topic names where it has them, so existing dashboards work.
 */
export class SysPublisher {
  private readonly broker: Broker;
  private timer: NodeJS.Timeout | null = null;

  constructor(broker: Broker) {
    this.broker = broker;
  }

  start(): void {
    const seconds = this.broker.config.sysInterval;
    if (seconds === 0) return;
    this.publishAll();
    this.timer = setInterval(() => this.publishAll(), seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Topic -> value, as published: the node-wide computation, over this broker's one snapshot. */
  snapshot(): Array<[string, string]> {
    const b = this.broker;
    const figures = snapshotStats(b, '0', { eventLoop: false });
    return sysValuesFromSnapshots([figures], b.stats.startedAt, b.stats.clientsMaximum);
  }

  private publishAll(): void {
    for (const [topic, value] of this.snapshot()) {
      this.broker.publish(new Message(topic, Buffer.from(value), 0, true, ''));
    }
  }
}
/**
 * The $SYS figures from routing workers' snapshots (one for a broker alone): counts are
 * summed, the retained count (every worker holds every retained message) is not.
 * `clientsMaximum` is the highest connected count the caller has seen.
 */
export function sysValuesFromSnapshots(
  snapshots: readonly StatsSnapshot[],
  startedAt: number,
  clientsMaximum: number,
): Array<[string, string]> {
  let connected = 0;
  let offline = 0;
  let received = 0;
  let sent = 0;
  let publishReceived = 0;
  let publishSent = 0;
  let dropped = 0;
  let bytesReceived = 0;
  let bytesSent = 0;
  let subscriptions = 0;
  let retained = 0;
  let stored = 0;
  for (const s of snapshots) {
    const c = s.counters;
    const g = s.gauges;
    connected += g.clientsConnected;
    offline += g.persistentSessions.offline;
    received += sum(c.packetsReceived);
    sent += sum(c.packetsSent);
    publishReceived += c.packetsReceived[PUBLISH] ?? 0;
    publishSent += c.packetsSent[PUBLISH] ?? 0;
    dropped += sum(Object.values(c.messagesDropped));
    bytesReceived += sum(c.bytesReceived);
    bytesSent += sum(c.bytesSent);
    subscriptions += g.subscriptions;
    retained = Math.max(retained, g.retainedMessages);
    stored += g.queuedMessages + g.inflightMessages;
  }
  return [
    ['$SYS/broker/version', `tern ${VERSION}`],
    ['$SYS/broker/uptime', `${Math.floor((Date.now() - startedAt) / 1000)} seconds`],
    ['$SYS/broker/clients/connected', String(connected)],
    ['$SYS/broker/clients/disconnected', String(offline)],
    ['$SYS/broker/clients/total', String(connected + offline)],
    ['$SYS/broker/clients/maximum', String(Math.max(clientsMaximum, connected))],
    ['$SYS/broker/messages/received', String(received)],
    ['$SYS/broker/messages/sent', String(sent)],
    ['$SYS/broker/publish/messages/received', String(publishReceived)],
    ['$SYS/broker/publish/messages/sent', String(publishSent)],
    ['$SYS/broker/publish/messages/dropped', String(dropped)],
    ['$SYS/broker/bytes/received', String(bytesReceived)],
    ['$SYS/broker/bytes/sent', String(bytesSent)],
    ['$SYS/broker/subscriptions/count', String(subscriptions)],
    ['$SYS/broker/retained messages/count', String(retained)],
    ['$SYS/broker/store/messages/count', String(stored)],
  ];
}

/** PUBLISH's packet type number: its index in the by-type counters. */
const PUBLISH = 3;

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
