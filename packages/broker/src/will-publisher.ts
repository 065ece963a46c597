/**
 * Last Will and Testament: published when a connection ends without DISCONNECT, at once or,
 * with an MQTT 5 will delay interval, when the delay runs out (or the session ends first),
 * unless the client comes back in time [MQTT-3.1.3-9].
 */
import type { Will } from '@tern/protocol';
import { Message, type Session } from '@tern/session';
import type { Broker } from './broker.js';
import type { Client } from './client.js';
import { applyPublishProperties } from './v5/message-properties.js';

interface DelayedWill {
  timer: NodeJS.Timeout;
  will: Will;
  origin: string;
}

export class WillPublisher {
  private readonly broker: Broker;
  /** Wills waiting out their delay, by client id. */
  private readonly delayed = new Map<string, DelayedWill>();
  /** Set at shutdown: a will fires at once rather than wait for a timer the process will not see. */
  private immediate = false;

  constructor(broker: Broker) {
    this.broker = broker;
  }

  /** How many wills wait out a delay (tests, metrics). */
  get waiting(): number {
    return this.delayed.size;
  }

  /**
   * `client`'s connection ended without DISCONNECT: its will, now or after its delay. Returns
   * true when it waits out a delay.
   */
  fire(client: Client, session: Session, will: Will): boolean {
    const broker = this.broker;
    // Checked at CONNECT; checked again in case an ACL reload has revoked it since.
    if (client.acl !== null && !client.acl.canPublish(will.topic)) {
      broker.stats.aclDenied.will++;
      client.log.info({ willTopic: will.topic }, 'will not published: the ACL no longer allows its topic');
      return false;
    }
    if (will.topic.startsWith('$SYS')) {
      // The broker's own tree is not writable by clients, by PUBLISH or by will.
      client.log.info({ willTopic: will.topic }, 'will not published: $SYS topics are the broker’s');
      return false;
    }
    const delay = will.properties?.willDelayInterval ?? 0;
    // A session that ends with its connection takes the will with it at once (whichever of
    // the delay and the session's end comes first).
    if (delay === 0 || session.isTransient || this.immediate) {
      this.publish(will, client.clientId);
      return false;
    }
    const seconds = Math.min(delay, session.expiryInterval);
    const clientId = client.clientId;
    this.settle(clientId, true);
    const timer = setTimeout(() => {
      this.delayed.delete(clientId);
      this.publish(will, clientId);
      this.broker.journal?.will(clientId, null);
    }, seconds * 1000);
    timer.unref();
    this.delayed.set(clientId, { timer, will, origin: clientId });
    return true;
  }

  /**
   * A new connection for `clientId`, or its session ends: a will waiting out its delay is
   * published now when `publish` (the session ended), else dropped (the client is back).
   */
  settle(clientId: string, publish: boolean): void {
    const waiting = this.delayed.get(clientId);
    if (waiting === undefined) return;
    this.delayed.delete(clientId);
    clearTimeout(waiting.timer);
    if (publish) this.publish(waiting.will, waiting.origin);
    // The cluster's copy (kept should this node die during the delay) goes too.
    this.broker.journal?.will(clientId, null);
  }

  /** Shutdown: every waiting will fires now, and later ones at once. */
  fireAllDelayed(): void {
    this.immediate = true;
    for (const clientId of [...this.delayed.keys()]) this.settle(clientId, true);
  }

  private publish(will: Will, origin: string): void {
    const broker = this.broker;
    broker.stats.willsPublished++;
    const message = new Message(will.topic, will.payload, will.qos, will.retain, origin);
    // MQTT 5 will properties become the message's (MQTT 5 section 3.1.3.2).
    if (will.properties !== undefined) applyPublishProperties(message, will.properties);
    broker.publish(message);
  }
}
