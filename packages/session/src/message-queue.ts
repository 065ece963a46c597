import type { Message } from './message.js';

/** One queued delivery: the shared message and the QoS this subscriber gets it at. */
export interface QueuedDelivery {
  message: Message;
  qos: 1 | 2;
  retain: boolean;
  /** The shared subscription group (`$share/...`) it came through, or null/absent for none. */
  share?: string | null;
}

/**
 * Deliveries made only when taken, in order: a queue that arrived as bytes (a session that
 * moved from another routing worker) is decoded as its client's window takes it, not all at
 * once before the CONNACK.
 */
export interface DeferredDeliveries {
  /** How many are left. */
  readonly remaining: number;
  /** The next one (only called while remaining > 0). */
  next(): QueuedDelivery;
}

/** What to do when a session's queue is full: drop the oldest queued message or the new one. */
export type OverflowPolicy = 'drop-oldest' | 'drop-new';

/** Shared by every empty queue; never written to (a push grows a queue onto slots of its own). */
const EMPTY_SLOTS: (QueuedDelivery | undefined)[] = [];

/**
 * A bounded FIFO of deliveries waiting for a session's inflight window (or for the client
 * to come back). A ring buffer: push and shift are O(1) and never reallocate once grown.
 */
export class MessageQueue {
  private slots: (QueuedDelivery | undefined)[];
  private head = 0;
  private count = 0;
  /** Deliveries not decoded yet; they come before every slot. */
  private deferred: DeferredDeliveries | null = null;
  limit: number;

  constructor(limit: number) {
    this.limit = limit;
    // Most sessions never queue anything: no slots until the first push.
    this.slots = EMPTY_SLOTS;
  }

  get length(): number {
    return this.deferred === null ? this.count : this.count + this.deferred.remaining;
  }

  /**
   * Puts deliveries not decoded yet at the front of an empty queue, as if each were restored
   * (the limit does not apply to them). Anything pushed later goes behind them.
   */
  defer(source: DeferredDeliveries): void {
    if (this.length !== 0) throw new Error('defer() needs an empty queue');
    if (source.remaining > 0) this.deferred = source;
  }

  /**
   * Appends a delivery. When full, applies the policy and returns the delivery that was
   * dropped (the oldest, or the new one itself); returns null when nothing was dropped.
   */
  push(item: QueuedDelivery, policy: OverflowPolicy): QueuedDelivery | null {
    let dropped: QueuedDelivery | null = null;
    if (this.length >= this.limit) {
      if (policy === 'drop-new' || this.limit === 0) return item;
      dropped = this.shift();
    }
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = item;
    this.count++;
    return dropped;
  }

  /**
   * Appends a delivery the broker had already accepted (loading a snapshot): the limit is
   * for new messages and never drops one that was queued before a restart.
   */
  restore(item: QueuedDelivery): void {
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = item;
    this.count++;
  }

  shift(): QueuedDelivery | null {
    const deferred = this.deferred;
    if (deferred !== null) {
      const item = deferred.next();
      if (deferred.remaining === 0) this.deferred = null;
      return item;
    }
    if (this.count === 0) return null;
    const item = this.slots[this.head] as QueuedDelivery;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    return item;
  }

  peek(): QueuedDelivery | null {
    this.undefer();
    return this.count === 0 ? null : (this.slots[this.head] as QueuedDelivery);
  }

  clear(): void {
    this.deferred = null;
    this.slots = EMPTY_SLOTS;
    this.head = 0;
    this.count = 0;
  }

  *[Symbol.iterator](): IterableIterator<QueuedDelivery> {
    this.undefer();
    for (let i = 0; i < this.count; i++) yield this.slots[(this.head + i) % this.slots.length] as QueuedDelivery;
  }

  /** Decodes what was deferred into slots, in front of the rest. */
  private undefer(): void {
    const deferred = this.deferred;
    if (deferred === null) return;
    this.deferred = null;
    const next: (QueuedDelivery | undefined)[] = new Array(deferred.remaining + this.count);
    let i = 0;
    while (deferred.remaining > 0) next[i++] = deferred.next();
    for (let k = 0; k < this.count; k++) next[i++] = this.slots[(this.head + k) % this.slots.length];
    this.slots = next;
    this.head = 0;
    this.count = i;
  }

  private grow(): void {
    // Doubling, capped at the limit, but always room for one more (restore may exceed it).
    const size = Math.max(Math.min(Math.max(this.slots.length * 2, 16), Math.max(this.limit, 16)), this.count + 1);
    const next: (QueuedDelivery | undefined)[] = new Array(size);
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}
