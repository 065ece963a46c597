/**
 * The session store in this process's memory: what a node on its own keeps between a
 * client's connections, and the reference the other stores are tested against (the same
 * contract suite runs on all of them).
 */
import type { QoS } from '@tern/protocol';
import { encodeStoredMessage } from './message-codec.js';
import {
  type EncodedSession,
  EXPIRE_BATCH,
  type SessionStore,
  type StoredDelivery,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  type StoreLimits,
} from './session-store.js';

interface Entry {
  id: number;
  qos: 1 | 2;
  packetId: number;
  released: boolean;
}

interface Record<Opt extends number> {
  expiryInterval: number;
  /** The node serving it while it is online with a finite expiry interval (see open()); else null. */
  holder: string | null;
  subscriptions: Map<string, Opt>;
  deliveries: Entry[];
  incomingQos2: Set<number>;
}

export class MemorySessionStore<Opt extends number = QoS> implements SessionStore<Opt> {
  private readonly sessions = new Map<string, Record<Opt>>();
  /** Each stored message and how many deliveries refer to it. */
  private readonly messages = new Map<number, { message: StoredMessage; refs: number }>();
  /**
   * Client id -> deadline (ms since the epoch) of each offline session that expires: kept
   * apart from the sessions so expire() looks at these only.
   */
  private readonly deadlines = new Map<string, number>();
  private readonly limits: StoreLimits;

  constructor(limits: StoreLimits) {
    this.limits = limits;
  }

  /** Messages held (for tests: a message goes with its last delivery). */
  get messageCount(): number {
    return this.messages.size;
  }

  async open(clientId: string, expiryInterval: number, cleanStart: boolean, holder = ''): Promise<boolean> {
    const deadline = this.deadlines.get(clientId);
    if (deadline !== undefined && deadline <= Date.now()) this.delete(clientId);
    this.deadlines.delete(clientId);
    const before = this.sessions.get(clientId);
    // Held by another holder that did not let go: its connection ended now at the latest.
    if (before?.expiryInterval === 0 && before.holder !== null && before.holder !== holder) this.delete(clientId);
    const held = holder !== '' && Number.isFinite(expiryInterval) ? holder : null;
    const existing = this.sessions.get(clientId);
    if (existing !== undefined && !cleanStart) {
      existing.expiryInterval = expiryInterval;
      existing.holder = held;
      return true;
    }
    if (existing !== undefined) this.delete(clientId);
    this.sessions.set(clientId, {
      expiryInterval,
      holder: held,
      subscriptions: new Map(),
      deliveries: [],
      incomingQos2: new Set(),
    });
    return false;
  }

  offline(clientId: string, expiresAt: number): void {
    const r = this.sessions.get(clientId);
    if (r === undefined) return;
    r.holder = null;
    if (Number.isFinite(expiresAt)) this.deadlines.set(clientId, expiresAt);
    else this.deadlines.delete(clientId);
  }

  async orphaned(holder: string, since = Date.now()): Promise<number> {
    let moved = 0;
    for (const [clientId, r] of this.sessions) {
      if (r.holder !== holder) continue;
      r.holder = null;
      this.deadlines.set(clientId, since + r.expiryInterval * 1000);
      moved++;
    }
    return moved;
  }

  async expire(now: number, max = EXPIRE_BATCH): Promise<string[]> {
    const limit = Math.floor(max);
    if (!(limit > 0)) return [];
    const due = [...this.deadlines].filter(([, deadline]) => deadline <= now);
    due.sort((a, b) => a[1] - b[1]);
    const expired = due.slice(0, limit).map(([clientId]) => clientId);
    for (const clientId of expired) this.delete(clientId);
    return expired;
  }

  async load(clientId: string, skip?: ReadonlySet<number>): Promise<StoredSession<Opt> | null> {
    const r = this.sessions.get(clientId);
    if (r === undefined) return null;
    return {
      clientId,
      expiryInterval: r.expiryInterval,
      subscriptions: [...r.subscriptions],
      deliveries: (skip === undefined ? r.deliveries : r.deliveries.filter((e) => !skip.has(e.id))).map(
        (e): StoredDelivery => ({
          message: (this.messages.get(e.id) as { message: StoredMessage }).message,
          qos: e.qos,
          packetId: e.packetId,
          released: e.released,
        }),
      ),
      incomingQos2: [...r.incomingQos2],
    };
  }

  async loadEncoded(clientId: string, skip?: ReadonlySet<number>, first?: number): Promise<EncodedSession<Opt> | null> {
    const loaded = await this.load(clientId, skip);
    if (loaded === null) return null;
    const deliveries = first === undefined || first <= 0 ? loaded.deliveries : loaded.deliveries.slice(0, first);
    return {
      ...loaded,
      deliveries: deliveries.map((d) => ({
        id: d.message.id,
        qos: d.qos,
        packetId: d.packetId,
        released: d.released,
        body: encodeStoredMessage(d.message),
      })),
    };
  }

  async loadSubscriptions(): Promise<Map<string, StoredSubscription<Opt>[]>> {
    const out = new Map<string, StoredSubscription<Opt>[]>();
    for (const [clientId, r] of this.sessions) if (r.subscriptions.size > 0) out.set(clientId, [...r.subscriptions]);
    return out;
  }

  subscribe(clientId: string, filter: string, options: Opt): void {
    this.sessions.get(clientId)?.subscriptions.set(filter, options);
  }

  unsubscribe(clientId: string, filter: string): void {
    this.sessions.get(clientId)?.subscriptions.delete(filter);
  }

  enqueue(message: StoredMessage, targets: readonly (readonly [string, 1 | 2])[]): void {
    for (const [clientId, qos] of targets) {
      const r = this.sessions.get(clientId);
      if (r === undefined) continue;
      if (r.deliveries.length >= this.limits.maxQueued) {
        const oldest = r.deliveries.findIndex((e) => e.packetId === 0);
        if (this.limits.overflowPolicy === 'drop-new' || oldest === -1) continue;
        const [dropped] = r.deliveries.splice(oldest, 1);
        this.release((dropped as Entry).id);
      }
      let held = this.messages.get(message.id);
      if (held === undefined) {
        // Read back as the other stores read it: properties null, never absent.
        held = { message: message.properties === undefined ? { ...message, properties: null } : message, refs: 0 };
        this.messages.set(message.id, held);
      }
      held.refs++;
      r.deliveries.push({ id: message.id, qos, packetId: 0, released: false });
    }
  }

  sent(clientId: string, id: number, packetId: number): void {
    const entry = this.find(clientId, id);
    if (entry !== undefined) entry.packetId = packetId;
  }

  released(clientId: string, id: number): void {
    const entry = this.find(clientId, id);
    if (entry !== undefined) entry.released = true;
  }

  completed(clientId: string, id: number): void {
    const r = this.sessions.get(clientId);
    if (r === undefined) return;
    const at = r.deliveries.findIndex((e) => e.id === id);
    if (at === -1) return;
    r.deliveries.splice(at, 1);
    this.release(id);
  }

  incomingQos2(clientId: string, packetId: number, pending: boolean): void {
    const r = this.sessions.get(clientId);
    if (r === undefined) return;
    if (pending) r.incomingQos2.add(packetId);
    else r.incomingQos2.delete(packetId);
  }

  delete(clientId: string): void {
    const r = this.sessions.get(clientId);
    if (r === undefined) return;
    for (const e of r.deliveries) this.release(e.id);
    this.sessions.delete(clientId);
    this.deadlines.delete(clientId);
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {}

  private find(clientId: string, id: number): Entry | undefined {
    return this.sessions.get(clientId)?.deliveries.find((e) => e.id === id);
  }

  private release(id: number): void {
    const held = this.messages.get(id);
    if (held === undefined) return;
    if (--held.refs === 0) this.messages.delete(id);
  }
}
