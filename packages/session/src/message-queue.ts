import type { Message } from './message.js';

/** One queued delivery: the shared message and the QoS this subscriber gets it at. */
export interface QueuedDelivery {
  message: Message;
  qos: 1 | 2;
  retain: boolean;
  /** The shared subscription group (`$share/...`) it came through, or null/absent for none. */
  share?: string | null;
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
  limit: number;

  constructor(limit: number) {
    this.limit = limit;
    // Most sessions never queue anything: no slots until the first push.
    this.slots = EMPTY_SLOTS;
  }

  get length(): number {
    return this.count;
  }

  /**
   * Appends a delivery. When full, applies the policy and returns the delivery that was
   * dropped (the oldest, or the new one itself); returns null when nothing was dropped.
   */
  push(item: QueuedDelivery, policy: OverflowPolicy): QueuedDelivery | null {
    let dropped: QueuedDelivery | null = null;
    if (this.count >= this.limit) {
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
    if (this.count === 0) return null;
    const item = this.slots[this.head] as QueuedDelivery;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    return item;
  }

  peek(): QueuedDelivery | null {
    return this.count === 0 ? null : (this.slots[this.head] as QueuedDelivery);
  }

  clear(): void {
    this.slots = EMPTY_SLOTS;
    this.head = 0;
    this.count = 0;
  }

  *[Symbol.iterator](): IterableIterator<QueuedDelivery> {
    for (let i = 0; i < this.count; i++) yield this.slots[(this.head + i) % this.slots.length] as QueuedDelivery;
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
