import { Message } from '@tern/session';
import type { Broker } from './broker.js';
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

  /** Topic -> value, as published. Exposed for tests and the future metrics endpoint. */
  snapshot(): Array<[string, string]> {
    const b = this.broker;
    const s = b.stats;
    let bytesReceived = s.bytesReceived;
    let bytesSent = s.bytesSent;
    for (const c of b.connections) {
      bytesReceived += c.conn.bytesReceived;
      bytesSent += c.conn.bytesSent;
    }
    const disconnected = Math.max(0, b.sessions.size - b.clients.size);
    return [
      ['$SYS/broker/version', `tern ${VERSION}`],
      ['$SYS/broker/uptime', `${Math.floor((Date.now() - s.startedAt) / 1000)} seconds`],
      ['$SYS/broker/clients/connected', String(s.clientsConnected)],
      ['$SYS/broker/clients/disconnected', String(disconnected)],
      ['$SYS/broker/clients/total', String(s.clientsConnected + disconnected)],
      ['$SYS/broker/clients/maximum', String(s.clientsMaximum)],
      ['$SYS/broker/messages/received', String(s.messagesReceived)],
      ['$SYS/broker/messages/sent', String(s.messagesSent)],
      ['$SYS/broker/publish/messages/received', String(s.publishReceived)],
      ['$SYS/broker/publish/messages/sent', String(s.publishSent)],
      ['$SYS/broker/publish/messages/dropped', String(s.droppedTotal)],
      ['$SYS/broker/bytes/received', String(bytesReceived)],
      ['$SYS/broker/bytes/sent', String(bytesSent)],
      ['$SYS/broker/subscriptions/count', String(b.subscriptions.size)],
      ['$SYS/broker/retained messages/count', String(b.retained.size)],
      ['$SYS/broker/store/messages/count', String(queuedTotal(b))],
    ];
  }

  private publishAll(): void {
    for (const [topic, value] of this.snapshot()) {
      this.broker.publish(new Message(topic, Buffer.from(value), 0, true, ''));
    }
  }
}

function queuedTotal(broker: Broker): number {
  let n = 0;
  for (const session of broker.sessions.values()) n += session.queue.length + session.inflight.size;
  return n;
}
