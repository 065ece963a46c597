/**
 * Getting messages out to one session: QoS 0 straight to the socket (shared bytes), QoS 1/2
 * through the session's inflight window and queue. Also the resend of unacknowledged
 * messages when a persistent session reconnects [MQTT-4.4.0-1].
 */
import type { QoS } from '@tern/protocol';
import {
  Enqueued,
  type HeldDelivery,
  type InflightEntry,
  type Message,
  type PublishTemplate,
  type Session,
} from '@tern/session';
import { writePubrel } from './acks.js';
import type { Broker } from './broker.js';
import type { Client } from './client.js';
import { limitHit } from './limits/client-limits.js';
import { v5Publish } from './v5/outbound.js';
import type { V5State } from './v5/v5-state.js';

/** The DUP bit of a PUBLISH's first byte [MQTT-3.3.1-1]. */
const DUP_FLAG = 0x08;

/**
 * Delivers `message` to `session` at `qos` (already min(publish QoS, granted QoS)); `share`
 * names the shared subscription group it came through, if any.
 */
export function deliver(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  share: string | null = null,
): void {
  if (session.stubbed !== null) {
    // The session is moving to another member; its stub keeps this for it (session-moves.ts).
    hold(session.stubbed, message, qos, retain, share);
    return;
  }
  if (session.handover !== null) {
    // Arriving from another member: hold what came directly until the old member's stub is
    // gone (session-moves.ts), so nothing is delivered twice or out of order.
    hold(session.handover.held, message, qos, retain, share);
    return;
  }
  deliverNow(broker, session, message, qos, retain, share);
}

function hold(list: HeldDelivery[], message: Message, qos: QoS, retain: boolean, share: string | null): void {
  if (qos === 0) message.ownPayload();
  else message.keepQueued(qos);
  list.push(share === null ? { message, qos, retain } : { message, qos, retain, share });
}

/**
 * Delivers to a session that is here and settled. With a topic ACL, every delivery (live,
 * queued for an offline session, retained on SUBSCRIBE) is checked for read access; without
 * one this is a null check.
 */
export function deliverNow(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  share: string | null = null,
): void {
  const filter = session.readFilter;
  if (filter !== null && !filter.canRead(message.topic)) {
    broker.stats.aclDenied[retain ? 'retained' : 'delivery']++;
    return;
  }
  const client = session.owner as Client | null;
  // MQTT 5: a message that expired on its way here (held while a session moved, read back
  // from the store) is not delivered [MQTT-3.3.2-5].
  if (message.expiryInterval !== 0 && message.expired(Date.now())) {
    broker.stats.droppedExpired++;
    if (qos !== 0 && !session.isTransient) broker.journal?.completed(session.clientId, message.id);
    return;
  }
  if (qos === 0) {
    if (client === null) {
      broker.stats.droppedOffline++;
      return;
    }
    if (broker.memoryHigh) {
      // Above memoryHighWaterMark QoS 0 is shed: it is the one kind a client cannot expect.
      broker.stats.droppedMemory++;
      broker.stats.limitsHit['memory-high-water-mark']++;
      return;
    }
    sendQos0(broker, client, message, retain);
    return;
  }
  const result = session.enqueue(message, qos, retain, share);
  if (result === Enqueued.Send) {
    sendInflight(broker, client as Client, session.addInflight(message, qos, retain, share), false);
    return;
  }
  if (result === Enqueued.DroppedNew) {
    broker.stats.droppedQueueFull++;
    broker.stats.limitsHit['max-queued']++;
    logOverflow(broker, session);
    return;
  }
  // Queued messages may wait a long time: stop them pinning the socket chunk they came in.
  message.keepQueued(qos);
  if (result === Enqueued.Queued) {
    session.overflowLogged = false;
    // Online and queued: the inflight window is full.
    if (client !== null && limitHit(client, 'max-inflight')) {
      client.log.info(
        { limit: 'max-inflight', limitValue: session.limits.maxInflight },
        'inflight window full: QoS 1/2 messages wait in the session queue',
      );
    }
    return;
  }
  broker.stats.droppedQueueFull++;
  broker.stats.limitsHit['max-queued']++;
  logOverflow(broker, session);
}

/** One log line per overflow episode: the first drop after the queue last had room. */
function logOverflow(broker: Broker, session: Session): void {
  if (!session.overflowLogged) {
    session.overflowLogged = true;
    broker.stats.queueOverflows++;
    broker.log.warn(
      {
        clientId: session.clientId,
        queued: session.queue.length,
        limit: session.limits.maxQueued,
        policy: session.limits.overflowPolicy,
      },
      'session queue full: dropping messages until it drains',
    );
  }
}

function sendQos0(broker: Broker, client: Client, message: Message, retain: boolean): void {
  if (client.conn.writableLength > broker.config.maxSocketBuffer) {
    broker.stats.droppedSlowSubscriber++;
    broker.stats.limitsHit['max-socket-buffer']++;
    if (!client.dropping) {
      client.dropping = true;
      client.log.warn(
        { buffered: client.conn.writableLength, limit: broker.config.maxSocketBuffer },
        'subscriber too slow: dropping QoS 0 messages until it catches up',
      );
    }
    return;
  }
  client.dropping = false;
  let t: PublishTemplate;
  if (client.v5 === null) {
    t = message.template(0, retain);
  } else {
    const own = v5Publish(client.v5, client.session as Session, message, 0, retain);
    if (own === null) {
      broker.stats.droppedTooLarge++;
      return;
    }
    t = own;
  }
  broker.stats.deliveredByQos[0]++;
  if (t.payload === null) client.conn.write(t.bytes);
  else client.conn.writeWithPayload(t.bytes, -1, 0, 0, t.payload);
}

/**
 * Sends one inflight PUBLISH: for 3.1.1 the shared template, copied with this session's packet
 * id; for MQTT 5 bytes made at the moment they are written (a topic alias must be set in the
 * first packet written with it, and an ack gate can hold a PUBLISH behind later ones).
 */
export function sendInflight(broker: Broker, client: Client, entry: InflightEntry, dup: boolean): void {
  const bits = dup ? DUP_FLAG : 0;
  if (!dup) {
    broker.stats.deliveredByQos[entry.qos]++;
    const journal = broker.journal;
    if (journal !== null && entry.qos === 2 && client.session?.isTransient === false) {
      // Its packet id is kept with the stored delivery: a resume elsewhere resends it under it.
      // (A QoS 1 delivery's packet id is stored when its connection ends: see Broker.clientClosed.)
      journal.sent(client.clientId, entry.message.id, entry.id);
      // Exactly once across the loss of this node: the PUBLISH leaves only once its packet id
      // is stored, so a resume elsewhere can never send it under another id (which the client
      // would take for a second message) [DESIGN.md guarantee 1]. QoS 2 deliveries stay in
      // order among themselves [MQTT-4.6.0-6].
      const link = broker.link as NonNullable<Broker['link']>;
      client.queueAck(() => writeEntry(broker, client, entry, bits), link.confirmJournal());
      return;
    }
  }
  if (client.gatedAcks !== null && entry.qos === 2) {
    client.queueAck(() => writeEntry(broker, client, entry, bits), null);
    return;
  }
  writeEntry(broker, client, entry, bits);
}

function writeEntry(broker: Broker, client: Client, entry: InflightEntry, bits: number): void {
  if (client.v5 !== null) writeInflightV5(broker, client, entry, bits);
  else writeInflight(client, entry.message.template(entry.qos, entry.retain), entry.id, bits);
}

function writeInflightV5(broker: Broker, client: Client, entry: InflightEntry, bits: number): void {
  const session = client.session;
  // Acknowledged or dropped while it waited behind a gate: nothing to send.
  if (session === null || session.inflight.get(entry.id) !== entry) return;
  const t = v5Publish(client.v5 as V5State, session, entry.message, entry.qos, entry.retain);
  if (t === null) {
    dropTooLarge(broker, client, session, entry);
    return;
  }
  writeInflight(client, t, entry.id, bits);
}

/**
 * A delivery larger than the client's maximum packet size: not sent, and done with as if it
 * had been [MQTT-3.1.2-25]; the window moves on.
 */
function dropTooLarge(broker: Broker, client: Client, session: Session, entry: InflightEntry): void {
  broker.stats.droppedTooLarge++;
  session.deleteInflight(entry.id);
  if (!session.isTransient) broker.journal?.completed(client.clientId, entry.message.id);
  if (limitHit(client, 'max-packet-size')) {
    client.log.info(
      { limit: 'maximum-packet-size', limitValue: (client.v5 as V5State).maxPacketSize, topic: entry.message.topic },
      'delivery dropped: larger than the client accepts',
    );
  }
  // Called from inside a drain: the next queued message fills the slot there; from a gate, here.
  queueMicrotask(() => drain(broker, session));
}

function writeInflight(client: Client, t: PublishTemplate, id: number, bits: number): void {
  if (t.payload === null) client.conn.writeWithId(t.bytes, t.idOffset, id, bits);
  else client.conn.writeWithPayload(t.bytes, t.idOffset, id, bits, t.payload);
}

/** Fills the inflight window from the queue while the client is online. */
export function drain(broker: Broker, session: Session): void {
  const client = session.owner as Client | null;
  if (client === null) return;
  const pending = session.resendPending;
  if (pending !== null) {
    // Resends the window did not take at reconnect come first (they are older).
    while (pending.length > 0 && session.inflight.size - pending.length < session.window) {
      const entry = pending.shift() as InflightEntry;
      if (session.inflight.get(entry.id) === entry) sendInflight(broker, client, entry, true);
    }
    if (pending.length > 0) return;
    session.resendPending = null;
  }
  for (let next = session.nextQueued(); next !== null; next = session.nextQueued()) {
    const message = next.message;
    // MQTT 5: a message whose expiry interval passed while it waited is not delivered
    // [MQTT-3.3.2-5] (and is done with in the store too).
    if (message.expiryInterval !== 0 && message.expired(Date.now())) {
      broker.stats.droppedExpired++;
      if (!session.isTransient) broker.journal?.completed(session.clientId, message.id);
      continue;
    }
    sendInflight(broker, client, session.addInflight(message, next.qos, next.retain, next.share ?? null), false);
  }
}

/**
 * On reconnect of a persistent session: resend every unacknowledged PUBLISH with DUP=1 and
 * every PUBREL, in their original order [MQTT-4.4.0-1], then continue with the queue.
 */
export function resume(broker: Broker, session: Session, client: Client): void {
  // What this connection's receive maximum allows goes now, the rest as acks come
  // [MQTT-3.3.4-9]; a QoS 2 message awaiting PUBCOMP counts as unacknowledged too.
  let awaitingPubcomp = 0;
  for (const entry of session.inflight.values()) if (entry.state === 'pubrel') awaitingPubcomp++;
  let budget = session.window - awaitingPubcomp;
  session.resendPending = null;
  for (const entry of session.inflight.values()) {
    if (entry.state === 'pubrel') {
      writePubrel(client.conn, entry.id);
    } else if (budget > 0) {
      sendInflight(broker, client, entry, true);
      budget--;
    } else {
      session.resendPending ??= [];
      session.resendPending.push(entry);
    }
  }
  drain(broker, session);
}
