/**
 * Where persistent sessions live when they must outlive the process that holds them: their
 * subscriptions, the QoS 1/2 deliveries waiting for them (queued, or sent and not yet
 * acknowledged, with their packet ids), and the incoming QoS 2 ids awaiting PUBREL.
 *
 * Writes are issued without waiting (a store batches them: a Redis pipeline, one disk
 * transaction per turn) and `flushed()` resolves once every write issued before it is
 * durable: the broker acknowledges a QoS 1/2 PUBLISH only after the deliveries it caused are
 * stored (DESIGN.md guarantee 1). Reads (`open`, `load`) see every write issued before them.
 *
 * A message queued for many sessions is stored once and referenced by each queue; it goes
 * when the last reference does, so a store never grows beyond maxQueued deliveries per session.
 * Every store passes the same contract tests (packages/session/test/store-contract.ts).
 *
 * A subscription is kept as [filter, options]: `options` is one non-negative integer the store
 * keeps and returns exactly and never reads (the broker packs QoS, the MQTT 5 flags and the
 * subscription identifier into it: up to about 2^34). The type parameter `Opt` says what the
 * caller stores there: `QoS` (the default) for a caller that stores only the granted QoS,
 * `number` for one that stores packed options.
 */
import type { QoS } from '@tern/protocol';

/** A message as a store keeps it. `id` is unique in the cluster (the broker's message id). */
export interface StoredMessage {
  id: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  origin: string;
  time: number;
  /**
   * MQTT 5 PUBLISH property bytes, already encoded (the store never reads them); null or
   * absent: none. A message read back from a store always has the field (null for none).
   */
  properties?: Uint8Array | null;
}

/** One delivery waiting in a session, in the order it must be sent. */
export interface StoredDelivery {
  message: StoredMessage;
  /** The QoS it is delivered with: min(message QoS, granted QoS). */
  qos: 1 | 2;
  /** The packet id it went out under; 0 while it has not been sent. */
  packetId: number;
  /** PUBREC received (QoS 2): PUBREL is what is resent, never the PUBLISH [MQTT-4.3.3-1]. */
  released: boolean;
}

/** A subscription as stored: its filter and its options, exactly as the caller gave them. */
export type StoredSubscription<Opt extends number = QoS> = [filter: string, options: Opt];

export interface StoredSession<Opt extends number = QoS> {
  clientId: string;
  /** Seconds the session outlives its connection; Infinity = never expires (3.1.1 cleanSession=0). */
  expiryInterval: number;
  subscriptions: StoredSubscription<Opt>[];
  /** Sent-and-unacknowledged first (in the order they were sent), then the queued ones. */
  deliveries: StoredDelivery[];
  incomingQos2: number[];
}

/** A delivery as stored, its message still in bytes (message-codec.ts): nothing decoded yet. */
export interface EncodedDelivery {
  id: number;
  qos: 1 | 2;
  packetId: number;
  released: boolean;
  body: Uint8Array;
}

/** A stored session with its messages still in bytes, for a reader that passes them on. */
export interface EncodedSession<Opt extends number = QoS> extends Omit<StoredSession<Opt>, 'deliveries'> {
  deliveries: EncodedDelivery[];
}

export interface StoreLimits {
  /** Deliveries kept per session; beyond it the overflow policy drops one. */
  maxQueued: number;
  overflowPolicy: 'drop-oldest' | 'drop-new';
}

/** How many sessions one expire() call deletes at most. */
export const EXPIRE_BATCH = 1000;

export interface SessionStore<Opt extends number = QoS> {
  /**
   * Starts a connection's use of `clientId`'s session: with `cleanStart` any stored state is
   * discarded first. Resolves with whether a session was there to resume (session present
   * [MQTT-3.2.2-2]). Any expiry set by offline() is cancelled: the session is online again. A
   * session whose deadline has already passed (by the store's clock: this process's, or the
   * Redis server's) counts as absent: it is deleted and open resolves false.
   *
   * `holder` names the node that serves the connection (default: none). While the session is
   * online with a finite expiry interval the store remembers it, so that orphaned(holder)
   * starts the expiry should that node end without saying so (SIGKILL, a crash). Opening the
   * session again (here or from another holder) replaces the holder; offline() and delete()
   * forget it. A session still held by another holder when it is opened was not let go of (that
   * node is gone, or cut off): its connection counts as ended now, so one with expiry interval
   * 0 ended with it (it is deleted and open resolves false).
   */
  open(clientId: string, expiryInterval: number, cleanStart: boolean, holder?: string): Promise<boolean>;
  /**
   * The session's connection ended: it expires at `expiresAt` (ms since the epoch, wall
   * clock), unless open() takes it up again first. Infinity (any value that is not finite):
   * never. Nothing happens for a client id without a session.
   */
  offline(clientId: string, expiresAt: number): void;
  /**
   * Node `holder` ended without closing its connections (killed, or reaped as dead): every
   * session it holds online with a finite expiry interval goes offline as of `since` (ms since
   * the epoch; default now, by the store's clock), to expire at `since` + its interval, as if
   * offline() had been called for it then. Resolves with how many sessions it moved. A session
   * that open() takes up again meanwhile is left to its new holder.
   */
  orphaned(holder: string, since?: number): Promise<number>;
  /**
   * Deletes sessions whose deadline is at or before `now` (ms since the epoch), as delete()
   * does, and resolves with their client ids: at most `max` (default EXPIRE_BATCH) per call, the
   * earliest deadlines first, so a caller with more due calls again. Atomic per call: callers
   * sharing a store (two nodes on one Redis) never both report one client id.
   */
  expire(now: number, max?: number): Promise<string[]>;
  /**
   * The stored session, or null. Deliveries of the messages in `skip` are left out (a caller
   * that has them already: their messages are not read at all). `skip` holds what the caller
   * read from the front of the queue, in queue order (a resume: the head, then the rest), so
   * a store may read only what follows the last of them while that one is still queued (the
   * Redis store does; queues grow only at the tail). Ids of deliveries gone since are fine.
   */
  load(clientId: string, skip?: ReadonlySet<number>): Promise<StoredSession<Opt> | null>;
  /**
   * As load(), with every message left in its stored bytes (decodeStoredMessage reads one);
   * with `first`, only the first `first` deliveries (a resume starts on those while the rest
   * is read).
   */
  loadEncoded(clientId: string, skip?: ReadonlySet<number>, first?: number): Promise<EncodedSession<Opt> | null>;
  /** Every stored session's subscriptions: which sessions a message must be queued for. */
  loadSubscriptions(): Promise<Map<string, StoredSubscription<Opt>[]>>;
  /** Adds or replaces `clientId`'s subscription to `filter`; `options` is kept exactly. */
  subscribe(clientId: string, filter: string, options: Opt): void;
  unsubscribe(clientId: string, filter: string): void;
  /** Queues `message` for each (client id, delivery QoS); the message is stored once. */
  enqueue(message: StoredMessage, targets: readonly (readonly [clientId: string, qos: 1 | 2])[]): void;
  /** The delivery of message `id` went out to `clientId` under `packetId`. */
  sent(clientId: string, id: number, packetId: number): void;
  /** PUBREC for the delivery of message `id`. */
  released(clientId: string, id: number): void;
  /** PUBACK / PUBCOMP: the delivery of message `id` is complete and forgotten. */
  completed(clientId: string, id: number): void;
  /** An incoming QoS 2 packet id was PUBRECed (true) or released by PUBREL (false). */
  incomingQos2(clientId: string, packetId: number, pending: boolean): void;
  /** The session ends (expiry, or a clean start that keeps no state). */
  delete(clientId: string): void;
  /** Resolves once every write issued so far is durable; rejects if one failed. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

/** A store that failed to read or write; the message says which operation and why. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code = 'TERN_STORE_FAILED';
}

/** An encoded session read in full (every store's load() is its loadEncoded() read this way). */
export function decodeSession<Opt extends number>(
  encoded: EncodedSession<Opt> | null,
  decodeMessage: (id: number, body: Uint8Array) => StoredMessage,
): StoredSession<Opt> | null {
  if (encoded === null) return null;
  return {
    ...encoded,
    deliveries: encoded.deliveries.map((d) => ({
      message: decodeMessage(d.id, d.body),
      qos: d.qos,
      packetId: d.packetId,
      released: d.released,
    })),
  };
}
