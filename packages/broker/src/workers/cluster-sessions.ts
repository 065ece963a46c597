/**
 * Persistent sessions cluster-wide, kept by each node's gateway in the session store (Redis):
 *
 * - Every node knows every persistent session's subscriptions (an index loaded at start and
 *   kept in step through the bus). A QoS 1/2 publish that enters a node is queued here, in the
 *   store, for every persistent session it matches, wherever that session is and whether it
 *   is online or not; the publisher's acknowledgement waits for the store [guarantee 1].
 *   Online sessions are also served from their worker's memory; their worker journals what
 *   it sends and what is acknowledged, so the store always holds what is still owed.
 * - A client id has one holder in the cluster (the owner key). A CONNECT claims it: a live
 *   holder on another node is asked to let go first (its connection closes, its journal is
 *   flushed), then the session is read from the store and adopted [MQTT-3.1.4-2].
 * - The store knows which node serves each session online with a finite expiry interval (the
 *   claim says so), so when a node dies without closing its connections (SIGKILL, a crash) the
 *   node that reaps it, or the node's own next start with a data directory, starts their expiry
 *   (orphaned()): they expire on time, cluster-wide, instead of never.
 */
import type { Forwarded, NodeBus } from '@tern/cluster';
import type { QoS, Will } from '@tern/protocol';
import { isSharedFilter, SubscriptionIndex } from '@tern/router';
import {
  type EncodedDelivery,
  type EncodedSession,
  EXPIRE_BATCH,
  hasFlag,
  NO_LOCAL,
  optionsQos,
  type SessionStore,
} from '@tern/session';
import type { Logger } from '../logger.js';
import { encodeStoredSession } from '../stored-session-transfer.js';
import { MEMBERS_PER_NODE, MESSAGE_SEQ_LIMIT } from './member-link.js';
import type { JournalKind, JournalOps } from './messages.js';
import { encodeWill } from './wills.js';

/** Deliveries a resume reads before its CONNACK, beyond the inflight window. */
const RESUME_FIRST = 1024;

/** How long a journaled change may wait for its message before it is written anyway. */
const EARLY_LIMIT_MS = 5000;
/** How often stored sessions are checked for an expiry interval that ran out. */
const EXPIRY_SWEEP_MS = 1000;

/** How a filter's interest changes: the gateway routes a filter here while anything wants it. */
export type InterestChange = (filter: string, delta: 1 | -1) => void;

export class ClusterSessions {
  private readonly bus: NodeBus;
  readonly store: SessionStore<number>;
  private readonly log: Logger;
  private readonly interest: InterestChange;
  /** filter -> client id -> granted QoS, for every persistent session in the cluster. */
  private readonly index = new SubscriptionIndex<number>();
  private readonly filtersOf = new Map<string, Set<string>>();
  /**
   * Per session handed to a worker from the store: the ids of the deliveries it was given.
   * What the store has beyond them once every node routes to the session is sent after.
   */
  readonly loadedIds = new Map<string, Set<number>>();
  /** The rest of a resumed session's queue being read, by client id (see claim()). */
  private readonly rests = new Map<string, Promise<EncodedSession<number> | null>>();
  /** Release requests from other nodes waiting for an answer, by client id. */
  private readonly waitingRelease = new Map<string, () => void>();
  private readonly releaseTimeoutMs: number;
  /** Scratch of one match: client id -> best QoS. */
  private readonly matched = new Map<string, QoS>();
  /** The publisher of the record being matched: an MQTT 5 no-local subscription skips it. */
  private matchOrigin = '';
  /** `options`: packed (subscription-options.ts); a 3.1.1 subscription's is its QoS. */
  private readonly collect = (clientId: string, options: number): void => {
    if (hasFlag(options, NO_LOCAL) && clientId === this.matchOrigin) return;
    const qos = optionsQos(options);
    const best = this.matched.get(clientId);
    if (best === undefined || qos > best) this.matched.set(clientId, qos);
  };
  /**
   * How many deliveries a resume reads before its CONNACK (more than the inflight window, so
   * every delivery sent before is among them and is resent first, under its packet id).
   */
  resumeFirst = RESUME_FIRST;
  /** Deliveries queued in the store (metrics). */
  queued = 0;
  /**
   * A worker may journal a delivery (sent, PUBREC, acknowledged) of a message that another
   * worker of this node has not yet handed here to be queued: the two arrive on different
   * ports. Such changes wait here for the message, by id; `lastSeen` is, per member of this
   * node, the last message id handed here (ids grow per member).
   */
  private readonly early = new Map<number, { ops: JournalOps; since: number }>();
  private readonly lastSeen = new Map<number, number>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly expiryTimer: NodeJS.Timeout;
  /** Set while an expiry sweep runs (a slow store does not pile sweeps up). */
  private expiring = false;
  private stopped = false;

  constructor(
    bus: NodeBus,
    store: SessionStore<number>,
    log: Logger,
    releaseTimeoutMs: number,
    interest: InterestChange,
  ) {
    this.bus = bus;
    this.store = store;
    this.log = log;
    this.releaseTimeoutMs = releaseTimeoutMs;
    this.interest = interest;
    // A change whose message never comes (its topic was not wanted here when it was sent)
    // is written after a while all the same: it then changes nothing.
    this.sweepTimer = setInterval(() => this.sweepEarly(EARLY_LIMIT_MS), EARLY_LIMIT_MS);
    this.sweepTimer.unref();
    this.expiryTimer = setInterval(() => void this.sweepExpired(), EXPIRY_SWEEP_MS);
    this.expiryTimer.unref();
  }

  /** Stops the sweep and writes every change still waiting. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.expiryTimer);
    this.sweepEarly(0);
  }

  /** Reads every persistent session's subscriptions (at start, before any message is replayed). */
  async load(): Promise<void> {
    const all = await this.store.loadSubscriptions();
    for (const [clientId, subs] of all) for (const [filter, qos] of subs) this.subscribed(clientId, filter, qos);
  }

  get sessionCount(): number {
    return this.filtersOf.size;
  }

  /** A QoS 1/2 publish that entered this node: queued in the store for every persistent match. */
  enqueue(record: Forwarded): void {
    this.queueFor(record);
    const member = Math.floor(record.id / MESSAGE_SEQ_LIMIT);
    if (record.id > (this.lastSeen.get(member) ?? 0)) this.lastSeen.set(member, record.id);
    if (this.early.size > 0) {
      const waiting = this.early.get(record.id);
      if (waiting !== undefined) {
        this.early.delete(record.id);
        this.apply(waiting.ops);
      }
    }
  }

  private queueFor(record: Forwarded): void {
    if (record.qos === 0 || this.filtersOf.size === 0) return;
    this.matched.clear();
    this.matchOrigin = record.origin;
    this.index.match(record.topic, this.collect);
    if (this.matched.size === 0) return;
    const targets: [string, 1 | 2][] = [];
    for (const [clientId, granted] of this.matched) {
      const qos = Math.min(record.qos, granted);
      if (qos > 0) targets.push([clientId, qos as 1 | 2]);
    }
    if (targets.length === 0) return;
    this.queued += targets.length;
    this.store.enqueue(
      {
        id: record.id,
        topic: record.topic,
        payload: new Uint8Array(record.payload),
        qos: record.qos,
        retain: record.retain,
        origin: record.origin,
        time: record.time,
        properties: record.properties === null ? null : new Uint8Array(record.properties),
      },
      targets,
    );
  }

  /** What a worker says about its persistent sessions (and its clients' wills). */
  journal(ops: JournalOps): void {
    for (let i = 0; i < ops.length; i += 4) {
      const kind = ops[i] as JournalKind;
      if ((kind === 'sent' || kind === 'rel' || kind === 'done') && this.notYetQueued(ops[i + 2] as number)) {
        const id = ops[i + 2] as number;
        let waiting = this.early.get(id);
        if (waiting === undefined) {
          waiting = { ops: [], since: Date.now() };
          this.early.set(id, waiting);
        }
        waiting.ops.push(kind, ops[i + 1] as string, ops[i + 2] as number, ops[i + 3] as number | null);
        continue;
      }
      this.applyOne(ops, i);
    }
  }

  /** Whether message `id` came in on this node and has not been handed here yet. */
  private notYetQueued(id: number): boolean {
    const member = Math.floor(id / MESSAGE_SEQ_LIMIT);
    if (Math.floor(member / MEMBERS_PER_NODE) !== this.bus.nodeNumber) return false;
    return id > (this.lastSeen.get(member) ?? 0);
  }

  private sweepEarly(olderThanMs: number): void {
    const cut = Date.now() - olderThanMs;
    for (const [id, waiting] of this.early) {
      if (waiting.since > cut) continue;
      this.early.delete(id);
      this.apply(waiting.ops);
    }
  }

  private apply(ops: JournalOps): void {
    for (let i = 0; i < ops.length; i += 4) this.applyOne(ops, i);
  }

  private applyOne(ops: JournalOps, i: number): void {
    const store = this.store;
    const clientId = ops[i + 1] as string;
    switch (ops[i] as JournalKind) {
      case 'sub': {
        const filter = ops[i + 2] as string;
        // Packed options (subscription-options.ts), kept as they are everywhere.
        const options = ops[i + 3] as number;
        store.subscribe(clientId, filter, options);
        this.subscribed(clientId, filter, options);
        this.bus.sessionChanged('sub', clientId, filter, options);
        return;
      }
      case 'unsub': {
        const filter = ops[i + 2] as string;
        store.unsubscribe(clientId, filter);
        this.unsubscribed(clientId, filter);
        this.bus.sessionChanged('unsub', clientId, filter);
        return;
      }
      case 'sent':
        store.sent(clientId, ops[i + 2] as number, ops[i + 3] as number);
        return;
      case 'rel':
        store.released(clientId, ops[i + 2] as number);
        return;
      case 'done':
        store.completed(clientId, ops[i + 2] as number);
        return;
      case 'in2':
        store.incomingQos2(clientId, ops[i + 2] as number, ops[i + 3] as boolean);
        return;
      case 'will': {
        const will = ops[i + 2] as Will | null;
        this.bus.setWill(clientId, will === null ? null : encodeWill(clientId, will));
        return;
      }
      case 'off': {
        const at = ops[i + 2] as number;
        store.offline(clientId, at < 0 ? Number.POSITIVE_INFINITY : at);
        return;
      }
      case 'end':
        this.endStored(clientId);
        return;
    }
  }

  /** Another node changed a persistent session's subscriptions. */
  remoteChange(change: 'sub' | 'unsub' | 'delete', clientId: string, filter: string, qos: number): void {
    if (change === 'sub') this.subscribed(clientId, filter, qos);
    else if (change === 'unsub') this.unsubscribed(clientId, filter);
    else this.forget(clientId);
  }

  /**
   * Takes `clientId` for this node. A live holder elsewhere lets go first (or is given up on
   * after the node timeout: it is dead or cut off). With `local` the session is already in a
   * worker here and is not read back. `expiry`: the session expiry interval the connection is
   * granted (seconds; Infinity: never), kept by the store with this node as the session's
   * holder while it is online. Resolves with the stored session to adopt, or null.
   */
  async claim(clientId: string, clean: boolean, local: boolean, expiry: number): Promise<Uint8Array | null> {
    // Without Redis the id cannot be taken cluster-wide: refused at once, not left waiting.
    if (!this.bus.connected) throw new Error('Redis is unreachable');
    const previous = await this.bus.claimOwner(clientId);
    if (previous !== null) await this.askRelease(previous, clientId);
    if (clean) {
      // A clean start discards the stored session [MQTT-3.1.2-6]: it is gone for good before
      // the CONNACK, so no crash after it can bring the old one back. A new one is stored
      // only when it outlives its connection (MQTT 5 clean start with an expiry interval).
      if (this.filtersOf.has(clientId)) {
        this.forget(clientId);
        this.bus.sessionChanged('delete', clientId);
      }
      if (expiry > 0) await this.store.open(clientId, expiry, true, this.bus.nodeId);
      else this.store.delete(clientId);
      await this.store.flushed();
      return null;
    }
    // With expiry 0 too: should this node die with the connection open, the node that reaps
    // it ends the session (orphaned()), as its connection's end would have.
    const present = await this.store.open(clientId, expiry, false, this.bus.nodeId);
    if (!present || local) return null;
    // The head of the queue now (the client's CONNACK waits for it); the rest reaches the
    // worker with the catch-up once every node routes to it (NodeGateway.catchUp).
    const stored = await this.store.loadEncoded(clientId, undefined, this.resumeFirst);
    if (stored === null) return null;
    const head = new Set(stored.deliveries.map((d) => d.id));
    this.loadedIds.set(clientId, head);
    // The rest of the queue is read at once, while the head is delivered; it is sent with the
    // catch-up (in order, behind the head, on the gateway's channel to the worker).
    if (stored.deliveries.length >= this.resumeFirst) {
      const rest = this.store.loadEncoded(clientId, head);
      rest.catch(() => {});
      this.rests.set(clientId, rest);
    }
    return encodeStoredSession(stored);
  }

  /**
   * What a session read from the store has not been given yet, once every node routes to it:
   * the rest of its queue read at claim time, then what was queued since. The ids given are
   * left out; nothing is given twice.
   */
  async notYetGiven(clientId: string): Promise<EncodedDelivery[]> {
    const known = this.loadedIds.get(clientId);
    this.loadedIds.delete(clientId);
    const rest = this.rests.get(clientId);
    this.rests.delete(clientId);
    if (known === undefined) return [];
    const out: EncodedDelivery[] = [];
    for (const d of (await rest?.catch(() => null))?.deliveries ?? []) {
      known.add(d.id);
      out.push(d);
    }
    const since = await this.store.loadEncoded(clientId, known);
    for (const d of since?.deliveries ?? []) out.push(d);
    return out;
  }

  /** The other node's answer to our release request. */
  released(clientId: string): void {
    const done = this.waitingRelease.get(clientId);
    this.waitingRelease.delete(clientId);
    done?.();
  }

  private askRelease(node: string, clientId: string): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waitingRelease.delete(clientId);
        this.log.warn(
          { clientId, holder: node },
          'the node holding the client id did not let go in time: taking it over',
        );
        resolve();
      }, this.releaseTimeoutMs);
      timer.unref();
      this.waitingRelease.set(clientId, () => {
        clearTimeout(timer);
        resolve();
      });
      this.bus.requestRelease(node, clientId);
    });
  }

  private subscribed(clientId: string, filter: string, options: number): void {
    let filters = this.filtersOf.get(clientId);
    if (filters === undefined) {
      filters = new Set();
      this.filtersOf.set(clientId, filters);
    }
    if (this.index.has(filter, clientId)) this.index.remove(filter, clientId);
    const first = this.index.count(filter) === 0;
    this.index.add(filter, clientId, options);
    filters.add(filter);
    // A shared subscription is served to members online only: the store never queues for it,
    // so the node need not hear of its messages for the store's sake.
    if (first && !isSharedFilter(filter)) this.interest(filter, 1);
  }

  private unsubscribed(clientId: string, filter: string): void {
    const filters = this.filtersOf.get(clientId);
    if (filters === undefined || !filters.delete(filter)) return;
    if (filters.size === 0) this.filtersOf.delete(clientId);
    this.index.remove(filter, clientId);
    if (this.index.count(filter) === 0 && !isSharedFilter(filter)) this.interest(filter, -1);
  }

  /** A stored session ends: gone from the store and from every node's index. */
  private endStored(clientId: string): void {
    if (this.filtersOf.has(clientId)) {
      this.forget(clientId);
      this.bus.sessionChanged('delete', clientId);
    }
    this.store.delete(clientId);
  }

  /**
   * Node `node` is gone without closing its connections (this node reaped it): the sessions it
   * served online start their expiry now, by the store's clock, and the sweep ends them on
   * time. Retried until the store takes it: no other node will.
   */
  async orphaned(node: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.orphanedSince(node);
        return;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn(
          { err, gone: node, attempt },
          "could not start the expiry of a dead node's sessions (will retry)",
        );
        await new Promise((resolve) => setTimeout(resolve, Math.min(attempt, 10) * EXPIRY_SWEEP_MS).unref());
      }
    }
  }

  /**
   * The sessions `node` served online start their expiry as of `since` (ms since the epoch;
   * default now, by the store's clock). Rejects when the store fails.
   */
  async orphanedSince(node: string, since?: number): Promise<void> {
    const sessions = await this.store.orphaned(node, since);
    if (sessions > 0) this.log.info({ gone: node, sessions, since }, "started the expiry of a dead node's sessions");
  }

  /**
   * Ends the stored sessions whose expiry interval ran out while nobody held them (their node
   * may be gone). Every node sweeps; the store hands each expired session to one of them.
   */
  private async sweepExpired(): Promise<void> {
    if (this.expiring || !this.bus.connected) return;
    this.expiring = true;
    try {
      for (;;) {
        const ended = await this.store.expire(Date.now());
        for (const clientId of ended) {
          this.log.debug({ clientId }, 'stored session expired');
          if (this.filtersOf.has(clientId)) {
            this.forget(clientId);
            this.bus.sessionChanged('delete', clientId);
          }
        }
        if (ended.length < EXPIRE_BATCH) return;
      }
    } catch (err) {
      this.log.warn({ err }, 'could not end expired sessions (will retry)');
    } finally {
      this.expiring = false;
    }
  }

  private forget(clientId: string): void {
    for (const filter of [...(this.filtersOf.get(clientId) ?? [])]) this.unsubscribed(clientId, filter);
  }
}
