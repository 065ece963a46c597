import type { QoS, Will } from '@tern/protocol';
import type { Message } from './message.js';
import { MessageQueue, type OverflowPolicy, type QueuedDelivery } from './message-queue.js';

/** An outbound QoS 1/2 message awaiting acknowledgement. */
export interface InflightEntry {
  id: number;
  message: Message;
  qos: 1 | 2;
  /** Sent with RETAIN=1 (a retained message delivered on subscribe) [MQTT-3.3.1-8]. */
  retain: boolean;
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREC received, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  /**
   * The shared subscription group it came through (`$share/...`), or null: if the connection
   * ends before it is acknowledged, another member of the group gets it.
   */
  share: string | null;
}

export interface SessionLimits {
  /** Outbound QoS 1/2 messages in flight at once. @default 32 */
  maxInflight: number;
  /** Deliveries queued behind the window or while offline. @default 1000 */
  maxQueued: number;
  /** @default 'drop-oldest' */
  overflowPolicy: OverflowPolicy;
}

/**
 * A session in the middle of a move to this member. Messages come two ways until the old
 * member drops its stub: forwarded by the stub (delivered at once, their ids remembered) and
 * routed here directly (held). When the stub is gone, the held ones the stub did not already
 * bring are delivered, in order.
 */
export interface Handover {
  from: number;
  seen: Set<number>;
  held: HeldDelivery[];
}

/** A delivery kept aside while a session moves between members. */
export interface HeldDelivery {
  message: Message;
  qos: QoS;
  retain: boolean;
  share?: string | null;
}

/** What happened to a delivery offered to a session. */
export const Enqueued = {
  /** Put in the inflight window: send it now. */
  Send: 0,
  /** Waiting in the queue. */
  Queued: 1,
  /** Queued, and the oldest queued delivery was dropped to make room. */
  DroppedOldest: 2,
  /** Not queued: the queue is full and the policy is drop-new. */
  DroppedNew: 3,
} as const;
export type Enqueued = (typeof Enqueued)[keyof typeof Enqueued];

/*
 * Shared empty collections: a session holds these until its first subscription, QoS 1/2
 * delivery or incoming QoS 2 packet. Typed read-only outside, and written only through the
 * session's methods, which swap in a collection of its own first: an idle connection's
 * session then costs no hash tables (about 0.6 KiB less per connection).
 */
const NO_SUBSCRIPTIONS: Map<string, number> = new Map();
const NO_INFLIGHT: Map<number, InflightEntry> = new Map();
const NO_IDS: Set<number> = new Set();

/**
 * One client id's session, modelled the MQTT 5 way: clean start + expiry interval, with
 * 3.1.1 mapped onto it (cleanSession=1: clean start, expiry 0; cleanSession=0: no clean
 * start, expiry never). It holds state only and does no I/O: the broker asks it what to
 * send and tells it what was acknowledged.
 */
export class Session {
  readonly clientId: string;
  /** Seconds the session outlives its connection; 0 ends it with the connection. */
  expiryInterval: number;
  private subscriptionMap = NO_SUBSCRIPTIONS;
  private inflightMap = NO_INFLIGHT;
  private incomingQos2Set = NO_IDS;
  readonly queue: MessageQueue;
  will: Will | null = null;
  limits: SessionLimits;
  /**
   * The client's MQTT 5 receive maximum: it takes at most this many QoS 1/2 PUBLISHes
   * unacknowledged [MQTT-3.3.4-9], so the inflight window is the smaller of this and the
   * broker's maxInflight. 65535 (no limit of its own) for 3.1.1.
   */
  receiveMaximum = 0xffff;
  /** When an offline session with a finite expiry interval ends (ms since the epoch); Infinity otherwise. */
  expiresAt = Number.POSITIVE_INFINITY;
  /**
   * Whether the cluster's session store holds this session (it was opened without a clean
   * start on a node of a cluster): when it ends, the store is told.
   */
  stored = false;
  /**
   * Unacknowledged PUBLISHes left from an earlier connection that wait to be resent, because
   * this connection's receive maximum is smaller than what was in flight [MQTT-3.3.4-9]; null
   * when none wait.
   */
  resendPending: InflightEntry[] | null = null;
  /** How many of its subscriptions carry an MQTT 5 subscription identifier (0: skip looking). */
  identifiedSubscriptions = 0;
  /** Owner of the session now: a live connection, or null while the client is away. */
  owner: unknown = null;
  /** Bumped on every takeover so a late event from an old connection can be told apart. */
  epoch = 0;
  /** Routing scratch: the publish this session was last matched for, and its best QoS. */
  matchStamp = 0;
  matchQos: QoS = 0;
  /** Whether a matching subscription asked for RETAIN as published (MQTT 5). */
  matchRetain = false;
  /** True while the queue is overflowing (one log line per episode). */
  overflowLogged = false;
  /**
   * Which topics may be delivered to this session (the broker sets its client's topic ACL);
   * a message on another topic is not delivered. Null: every match is delivered.
   */
  readFilter: { canRead(topic: string): boolean } | null = null;
  /**
   * Set while this session is arriving from another member: what reached it directly is
   * held until the old member's stub is gone, so nothing is delivered twice or out of order.
   */
  handover: Handover | null = null;
  /**
   * Member this session moved to, while this member keeps its stub; -1 otherwise. The stub
   * keeps what matches the session's subscriptions in `stubbed` and forwards it all when the
   * new member asks it to go.
   */
  movedTo = -1;
  stubbed: HeldDelivery[] | null = null;
  /** The next packet id to try (kept in snapshots so ids stay unique after a restart). */
  nextId = 1;

  constructor(clientId: string, expiryInterval: number, limits: SessionLimits) {
    this.clientId = clientId;
    this.expiryInterval = expiryInterval;
    this.limits = limits;
    this.queue = new MessageQueue(limits.maxQueued);
  }

  /** Options per filter, packed into one number (subscription-options.ts). */
  get subscriptions(): ReadonlyMap<string, number> {
    return this.subscriptionMap;
  }

  /** Insertion-ordered, so resending on reconnect keeps the original order [MQTT-4.6.0-1]. */
  get inflight(): ReadonlyMap<number, InflightEntry> {
    return this.inflightMap;
  }

  /** Incoming QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL. */
  get incomingQos2(): ReadonlySet<number> {
    return this.incomingQos2Set;
  }

  /** True when the session ends with its connection (3.1.1 cleanSession=1). */
  get isTransient(): boolean {
    return this.expiryInterval === 0;
  }

  /** Adds or replaces the subscription to `filter` (options packed: subscription-options.ts). */
  setSubscription(filter: string, options: number): void {
    const old = this.subscriptions.get(filter);
    if (old !== undefined && old >= 64) this.identifiedSubscriptions--;
    // Options of 64 and up carry a subscription identifier.
    if (options >= 64) this.identifiedSubscriptions++;
    if (this.subscriptionMap === NO_SUBSCRIPTIONS) this.subscriptionMap = new Map();
    this.subscriptionMap.set(filter, options);
  }

  /** Removes the subscription to `filter`; false when there was none. */
  deleteSubscription(filter: string): boolean {
    const old = this.subscriptions.get(filter);
    if (old === undefined) return false;
    if (old >= 64) this.identifiedSubscriptions--;
    this.subscriptionMap.delete(filter);
    return true;
  }

  /** How many QoS 1/2 deliveries may be in flight at once. */
  get window(): number {
    const max = this.limits.maxInflight;
    return Math.min(this.receiveMaximum, max);
  }

  /**
   * Offers a QoS 1/2 delivery. It goes straight into the inflight window when the window has
   * room, nothing is queued ahead of it (order [MQTT-4.6.0-*]) and the client is online;
   * otherwise it is queued.
   */
  enqueue(message: Message, qos: 1 | 2, retain: boolean, share: string | null = null): Enqueued {
    if (this.owner !== null && this.queue.length === 0 && this.inflight.size < this.window) {
      return Enqueued.Send;
    }
    const item: QueuedDelivery = share === null ? { message, qos, retain } : { message, qos, retain, share };
    const dropped = this.queue.push(item, this.limits.overflowPolicy);
    if (dropped === null) return Enqueued.Queued;
    return dropped.message === message ? Enqueued.DroppedNew : Enqueued.DroppedOldest;
  }

  /** Moves a delivery into the inflight window under a fresh packet id. */
  addInflight(message: Message, qos: 1 | 2, retain: boolean, share: string | null = null): InflightEntry {
    const entry: InflightEntry = { id: this.allocateId(), message, qos, retain, state: 'publish', share };
    this.putInflight(entry);
    return entry;
  }

  /** Puts an entry in flight under its own id (a restored or moved session's deliveries). */
  putInflight(entry: InflightEntry): void {
    if (this.inflightMap === NO_INFLIGHT) this.inflightMap = new Map();
    this.inflightMap.set(entry.id, entry);
  }

  /** Takes the entry for `id` out of flight; false when there was none. */
  deleteInflight(id: number): boolean {
    return this.inflightMap.delete(id);
  }

  /** Takes every entry out of flight. */
  clearInflight(): void {
    this.inflightMap = NO_INFLIGHT;
  }

  /** Incoming QoS 2 `id` was received and answered with PUBREC [MQTT-4.3.3-2]. */
  addIncomingQos2(id: number): void {
    if (this.incomingQos2Set === NO_IDS) this.incomingQos2Set = new Set();
    this.incomingQos2Set.add(id);
  }

  /** PUBREL for incoming `id`: false when it was not held. */
  releaseIncomingQos2(id: number): boolean {
    return this.incomingQos2Set.delete(id);
  }

  /** Forgets every incoming QoS 2 id. */
  clearIncomingQos2(): void {
    this.incomingQos2Set = NO_IDS;
  }

  /** Next queued delivery that fits the window, or null. */
  nextQueued(): QueuedDelivery | null {
    if (this.inflight.size >= this.window) return null;
    return this.queue.shift();
  }

  /**
   * A packet id not in flight. Ids cycle 1..65535 and skip those still unacknowledged
   * [MQTT-2.3.1-2]; the window (at most 65535) guarantees one is free.
   */
  allocateId(): number {
    let id = this.nextId;
    while (this.inflight.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.nextId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) for `id`: the delivery is complete. */
  complete(id: number, expected: 1 | 2): boolean {
    const entry = this.inflight.get(id);
    if (entry === undefined || entry.qos !== expected || (expected === 2 && entry.state !== 'pubrel')) return false;
    this.inflightMap.delete(id);
    return true;
  }

  /** PUBREC for `id`: the receiver has it; PUBREL is next, never the PUBLISH again. */
  received(id: number): boolean {
    const entry = this.inflight.get(id);
    if (entry === undefined || entry.qos !== 2) return false;
    entry.state = 'pubrel';
    return true;
  }

  /**
   * Takes out what came through a shared subscription group and can go to another member of
   * its group (MQTT 5 section 4.8.2): QoS 1 sent and not acknowledged, and whatever was not
   * sent yet. A QoS 2 message already sent stays: its flow must end with this client
   * [MQTT-4.8.2-4] [MQTT-4.8.2-5]. Null when there is none.
   */
  takeShared(): QueuedDelivery[] | null {
    let out: QueuedDelivery[] | null = null;
    for (const entry of this.inflight.values()) {
      if (entry.share === null || entry.qos !== 1) continue;
      this.inflightMap.delete(entry.id);
      out ??= [];
      out.push({ message: entry.message, qos: entry.qos, retain: entry.retain, share: entry.share });
    }
    if (this.queue.length > 0) {
      let kept: QueuedDelivery[] | null = null;
      for (const item of this.queue) {
        if (item.share === undefined || item.share === null) continue;
        kept ??= [];
        kept.push(item);
      }
      if (kept !== null) {
        const rest = [...this.queue].filter((item) => item.share === undefined || item.share === null);
        this.queue.clear();
        for (const item of rest) this.queue.restore(item);
        out = out === null ? kept : out.concat(kept);
      }
    }
    return out;
  }

  /** Forgets everything but the identity (a clean start over an old session). */
  reset(): void {
    this.subscriptionMap = NO_SUBSCRIPTIONS;
    this.identifiedSubscriptions = 0;
    this.inflightMap = NO_INFLIGHT;
    this.resendPending = null;
    this.queue.clear();
    this.incomingQos2Set = NO_IDS;
    this.will = null;
    this.nextId = 1;
  }
}
