/**
 * The node's member in the cluster: a peer of every routing worker (it speaks the workers'
 * peer protocol over one MessagePort each) that stands for all the other nodes, and the
 * node's one line to Redis (RedisBus; a node on its own with a data directory has a LocalBus).
 *
 * To the workers it looks like one more worker whose filters are the union of every other
 * node's: a worker forwards a publish here only when some other node wants it. Here the
 * publish is matched against each node's routes and leaves once per interested node per turn.
 * Publishes from other nodes are matched against the workers' routes and go once per
 * interested worker. The node's own routes (the union of its workers') are written to Redis
 * and announced when a filter is first wanted on the node and when it is last dropped.
 *
 * A barrier (ping) from a worker is answered once Redis has acknowledged everything that
 * worker's earlier messages caused here: a SUBACK waits until the route is in Redis and
 * announced, a retained QoS 1 PUBACK until the message is in the retained store.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  type Forwarded,
  GROUP_TARGET,
  NODE_NUMBERS,
  type NodeBus,
  PublishBatchWriter,
  readPublishBatch,
} from '@tern/cluster';
import { RedisBus, retryTransient } from '@tern/cluster/redis';
import { RouteTable } from '@tern/router';
import { carriedProperties, decodeStoredMessage, Message, RedisSessionStore } from '@tern/session';
import type { BrokerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { applyPublishProperties } from '../v5/message-properties.js';
import { ClusterSessions } from './cluster-sessions.js';
import { LocalBus } from './local-bus.js';
import { MEMBERS_PER_NODE, MESSAGE_SEQ_LIMIT } from './member-link.js';
import type { ToPeer } from './messages.js';
import { decodeWill } from './wills.js';

interface WorkerPort {
  readonly index: number;
  readonly port: MessagePort;
  readonly batch: PublishBatchWriter;
}

interface RemoteNode {
  readonly id: string;
  /** Its member number in `remoteRoutes`. */
  readonly member: number;
  readonly batch: PublishBatchWriter;
}

/** Figures for metrics and $SYS. */
export interface GatewayStats {
  nodes: number;
  redisUp: boolean;
  /** Publish records sent to other nodes / received from them. */
  forwardedOut: number;
  forwardedIn: number;
  /** Filters this node routes to itself / other nodes' filters known here. */
  localFilters: number;
  remoteFilters: number;
  /** Persistent sessions known in the cluster, and deliveries this node queued in the store. */
  persistentSessions: number;
  storeQueued: number;
  /** Wills of dead nodes' clients this node published (it reaped those nodes). */
  orphanWills: number;
}

/** The member number of a gateway inside its node's id space (workers are below it). */
const GATEWAY_MEMBER = MEMBERS_PER_NODE - 1;

export class NodeGateway {
  /** The member index the workers know this gateway by. */
  readonly index: number;
  readonly bus: NodeBus;
  private readonly log: Logger;
  private readonly workers: WorkerPort[] = [];
  /** Which workers want which filters: where a publish from another node goes. */
  private readonly localRoutes = new RouteTable();
  /** Per filter: how many workers want it (the node announces the filter while this is > 0). */
  private readonly localCount = new Map<string, number>();
  /** Which other nodes want which filters. */
  private readonly remoteRoutes = new RouteTable();
  /**
   * Per filter: how many other nodes want it plus 1 when a persistent session anywhere has it
   * (the gateway queues for those): announced to the workers while > 0.
   */
  private readonly wanted = new Map<string, number>();
  private wantAdded: string[] = [];
  private wantRemoved: string[] = [];
  /** Persistent sessions of the cluster and the store they live in. */
  sessions: ClusterSessions | null = null;
  /** Asks the node to let go of a client id (set by the supervisor: its registry knows where it is). */
  onRelease: ((clientId: string) => Promise<void>) | null = null;
  private messageSeq = 0;
  private orphanWills = 0;
  private readonly nodes = new Map<string, RemoteNode>();
  private readonly nodesByMember: (RemoteNode | undefined)[] = [];
  private readonly freeMembers: number[] = [];
  private readonly retainedBatch = new PublishBatchWriter(16 * 1024);
  private retainedEntries: [string, Uint8Array | null][] = [];
  private readonly single = new PublishBatchWriter(1024);
  private readonly dirtyWorkers: WorkerPort[] = [];
  private readonly dirtyNodes: RemoteNode[] = [];
  private flushScheduled = false;
  private nextPing = 1;
  private readonly pings = new Map<number, () => void>();
  private forwardedOut = 0;
  private forwardedIn = 0;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.flushWanted();
    this.flushOutgoing();
    for (const worker of this.dirtyWorkers) this.sendBatch(worker);
    this.dirtyWorkers.length = 0;
  };

  private constructor(index: number, bus: NodeBus, log: Logger) {
    this.index = index;
    this.bus = bus;
    this.log = log;
  }

  /** Connects to Redis (a failure stops start-up with one line) and subscribes. */
  static async connect(config: BrokerConfig, log: Logger, index: number): Promise<NodeGateway> {
    let gateway: NodeGateway | null = null;
    const bus = await RedisBus.connect({
      url: config.redis,
      prefix: config.redisPrefix,
      nodeName: config.nodeName,
      heartbeatMs: config.clusterHeartbeatMs,
      nodeTimeoutMs: config.clusterNodeTimeoutMs,
      events: {
        batch: (bytes) => gateway?.fromNode(bytes),
        // Retained records carry their retain flag: every worker gets them.
        retained: (bytes) => gateway?.fromNode(bytes),
        routes: (node, change, filters) => gateway?.nodeRoutes(node, change, filters),
        nodeGone: (node, reapedHere) => gateway?.nodeGone(node, reapedHere),
        reannounce: () => gateway?.reannounce(),
        session: (change, clientId, filter, qos) => gateway?.sessions?.remoteChange(change, clientId, filter, qos),
        release: (clientId, from) => gateway?.release(clientId, from),
        released: (clientId) => gateway?.sessions?.released(clientId),
        barrier: (_from, done) => gateway?.applyBarrier(done),
        reaped: (node) => void gateway?.sessions?.orphaned(node),
        orphanWills: (node, wills) => gateway?.publishOrphanWills(node, wills),
        connection: (up) => {
          if (up) log.info('Redis is reachable again: cluster routing resumes');
          else log.error('Redis is unreachable: publishes for other nodes wait until it is back');
        },
        error: (err, context) => log.warn({ err, context }, 'cluster bus problem'),
      },
    });
    const g = new NodeGateway(index, bus, log.child({ nodeId: bus.nodeId }));
    gateway = g;
    // The store shares the bus's connection: Redis runs commands of one connection in order,
    // so a message is queued for its sessions before any batch that carries it reaches another
    // node (whose worker may then journal its delivery).
    const store = new RedisSessionStore<number>(bus.commandConnection, {
      prefix: config.redisPrefix,
      // The store bounds all of a session's deliveries: the queue and the inflight window.
      maxQueued: config.maxQueued + config.maxInflight,
      overflowPolicy: config.queueOverflow,
      maxInflight: config.maxInflight,
    });
    g.sessions = new ClusterSessions(bus, store, g.log, config.clusterNodeTimeoutMs, (filter, delta) =>
      g.want(filter, delta),
    );
    // Every delivery in flight before is among those read first (and resent first).
    g.sessions.resumeFirst = config.maxInflight + 1024;
    return g;
  }

  /**
   * The gateway of a node on its own that keeps persistent sessions and retained messages in
   * `config.dataDir` (SQLite), so they survive a restart, SIGKILL included. A directory that
   * cannot be used stops start-up with one line (TERN_STORE_FAILED).
   */
  static async local(config: BrokerConfig, log: Logger, index: number): Promise<NodeGateway> {
    // Loaded only here: a node without a data directory never loads the SQLite addon.
    const { DiskSessionStore } = await import('@tern/session/disk');
    const store = new DiskSessionStore<number>(config.dataDir, {
      maxQueued: config.maxQueued + config.maxInflight,
      overflowPolicy: config.queueOverflow,
    });
    // When this directory's previous run was last seen alive (read before this run stamps it).
    const lastAlive = store.lastAlive();
    const g = new NodeGateway(index, new LocalBus(config.nodeName, store, store.nextStartNumber() % NODE_NUMBERS), log);
    g.sessions = new ClusterSessions(g.bus, store, log, config.clusterNodeTimeoutMs, (filter, delta) =>
      g.want(filter, delta),
    );
    // Sessions still online in the store were served by a run that ended without closing its
    // connections (SIGKILL, a crash): their expiry runs from when it was last seen alive, at
    // the latest one stamp after it (never earlier than their connections can have ended). A
    // store that fails here stops start-up (TERN_STORE_FAILED), as opening it would have.
    const since = lastAlive === null ? Date.now() : Math.min(Date.now(), lastAlive + LocalBus.ALIVE_MS);
    for (const holder of store.holders()) await g.sessions.orphanedSince(holder, since);
    // Every delivery in flight before is among those read first (and resent first).
    g.sessions.resumeFirst = config.maxInflight + 1024;
    return g;
  }

  /** This node's number in the cluster: the high part of its message ids. */
  get nodeNumber(): number {
    return this.bus.nodeNumber;
  }

  /** Takes `clientId` for this node cluster-wide (see ClusterSessions.claim). */
  async claim(
    clientId: string,
    clean: boolean,
    local: boolean,
    expiry: number,
    workers: readonly number[],
  ): Promise<Uint8Array | null> {
    const sessions = this.sessions;
    if (sessions === null) return null;
    // A claim reaches this thread on the supervisor's channel, a worker's store writes (the
    // journal) on the worker's own: no order between the two. The end of the id's last
    // connection (its session gone offline, with the expiry it had) must not land after the
    // claim's own write, or a crash would leave the session with the old expiry and no holder.
    // A ping answered on the worker's channel comes after everything it sent there before.
    await Promise.all(workers.map((index) => this.workers[index]).map((w) => (w === undefined ? null : this.ping(w))));
    return sessions.claim(clientId, clean, local, expiry);
  }

  /** Wires the port to worker `index` (its end of the pair the worker knows as peer `this.index`). */
  addWorker(index: number, port: MessagePort): void {
    const worker: WorkerPort = { index, port, batch: new PublishBatchWriter(16 * 1024) };
    this.workers[index] = worker;
    port.on('message', (data: Uint8Array | ToPeer) => this.fromWorker(worker, data));
  }

  /**
   * Reads the other nodes' routes and the retained store, hands them to every worker, and
   * resolves once every worker has them (before the node accepts its first client).
   */
  async start(): Promise<void> {
    await this.bus.start(async (routes, retained) => {
      const sessions = this.sessions;
      // Nothing is applied until the read succeeds: retrying it is safe.
      if (sessions !== null) await retryTransient(() => sessions.load());
      for (const [node, filters] of routes) this.nodeRoutes(node, 'replace', filters);
      for (const bytes of retained) {
        try {
          readPublishBatch(bytes, (record) => {
            for (const worker of this.workers) this.append(worker, record);
          });
        } catch (err) {
          this.log.warn({ err }, 'unreadable retained message in Redis: skipped');
        }
      }
    });
    this.flush();
    await Promise.all(this.workers.map((worker) => this.ping(worker)));
    const persistentSessions = this.sessions?.sessionCount ?? 0;
    if (this.bus instanceof LocalBus) {
      this.log.info({ persistentSessions }, 'persistent sessions and retained messages are kept in the data directory');
    } else {
      this.log.info(
        { nodes: this.nodes.size, remoteFilters: this.wanted.size, persistentSessions },
        'joined the cluster through Redis',
      );
    }
  }

  get stats(): GatewayStats {
    return {
      nodes: this.nodes.size,
      redisUp: this.bus.connected,
      forwardedOut: this.forwardedOut,
      forwardedIn: this.forwardedIn,
      localFilters: this.localCount.size,
      remoteFilters: this.remoteRoutes.filterCount,
      persistentSessions: this.sessions?.sessionCount ?? 0,
      storeQueued: this.sessions?.queued ?? 0,
      orphanWills: this.orphanWills,
    };
  }

  /** Leaves the cluster: the other nodes stop routing here at once. */
  async close(): Promise<void> {
    this.flush();
    this.sessions?.stop();
    await this.settled();
    await this.bus.close();
    await this.sessions?.store.close();
  }

  // ---- from the workers ----

  private fromWorker(worker: WorkerPort, data: Uint8Array | ToPeer): void {
    if (data instanceof Uint8Array) {
      readPublishBatch(data, (record) => this.outgoing(record));
      return;
    }
    switch (data.t) {
      case 'route+':
        this.workerRoutes(worker, data.filters, []);
        return;
      case 'route-':
        this.workerRoutes(worker, [], data.filters);
        return;
      case 'routes': {
        const wanted = new Set(data.filters);
        const dropped = [...this.localRoutes.filtersOf(worker.index)].filter((f) => !wanted.has(f));
        this.workerRoutes(worker, data.filters, dropped);
        return;
      }
      case 'ping':
        // Everything the worker sent before the ping is handled; answer when Redis has it,
        // and for a wide barrier (a SUBACK, a retained PUBACK) once every node has applied it.
        this.flushOutgoing();
        void this.settled()
          .then(() => (data.wide === true ? this.bus.clusterBarrier() : undefined))
          .catch((err: unknown) => this.log.warn({ err }, 'cluster barrier failed'))
          .then(() => this.sendTo(worker, { t: 'pong', n: data.n }));
        return;
      case 'journal':
        this.sessions?.journal(data.ops);
        return;
      case 'pong':
        this.pings.get(data.n)?.();
        this.pings.delete(data.n);
        return;
      case 'drop-stub':
        // A worker adopted a session from the store and every node now routes to it.
        void this.catchUp(worker, data.clientId);
        return;
      default:
        return;
    }
  }

  /** A publish that entered this node: to every other node that wants it, once each. */
  private outgoing(record: Forwarded): void {
    // $SYS describes this node alone: every node has its own.
    if (record.topic.startsWith('$SYS')) return;
    if (record.target.startsWith(GROUP_TARGET)) {
      // A worker chose "another node" for a shared subscription group: this gateway picks which.
      this.toNodeInGroup(record);
      return;
    }
    this.sessions?.enqueue(record);
    if (record.retain) {
      // Every node keeps every retained message; the store in Redis serves nodes that start later.
      this.retainedBatch.append(record);
      this.single.append(record);
      const one = this.single.take();
      this.retainedEntries.push([record.topic, record.payload.length === 0 ? null : one]);
      this.schedule();
      return;
    }
    const members = this.remoteRoutes.match(record.topic);
    for (let i = 0; i < members.length; i++) {
      const node = this.nodesByMember[members[i] as number];
      if (node === undefined) continue;
      node.batch.append(record);
      this.forwardedOut++;
      if (node.batch.count === 1) this.dirtyNodes.push(node);
    }
    if (members.length > 0) this.schedule();
  }

  private workerRoutes(worker: WorkerPort, added: readonly string[], removed: readonly string[]): void {
    const announce: string[] = [];
    const withdraw: string[] = [];
    for (const filter of added) {
      if (!this.localRoutes.add(filter, worker.index)) continue;
      const count = (this.localCount.get(filter) ?? 0) + 1;
      this.localCount.set(filter, count);
      if (count === 1) announce.push(filter);
    }
    for (const filter of removed) {
      if (!this.localRoutes.remove(filter, worker.index)) continue;
      const count = (this.localCount.get(filter) ?? 1) - 1;
      if (count > 0) {
        this.localCount.set(filter, count);
      } else {
        this.localCount.delete(filter);
        withdraw.push(filter);
      }
    }
    this.flushOutgoing();
    this.bus.addRoutes(announce);
    this.bus.removeRoutes(withdraw);
  }

  private flushOutgoing(): void {
    for (const node of this.dirtyNodes) {
      if (node.batch.count > 0) this.bus.sendBatch(node.id, node.batch.take());
    }
    this.dirtyNodes.length = 0;
    if (this.retainedEntries.length > 0) {
      this.bus.storeRetained(this.retainedEntries, this.retainedBatch.take());
      this.retainedEntries = [];
    }
  }

  // ---- from the other nodes ----

  private fromNode(bytes: Uint8Array): void {
    try {
      readPublishBatch(bytes, (record) => {
        this.forwardedIn++;
        if (record.target.startsWith(GROUP_TARGET)) this.toWorkerInGroup(record);
        else this.toLocalWorkers(record);
      });
    } catch (err) {
      this.log.warn({ err }, 'unreadable publish batch from another node: dropped');
    }
  }

  private nodeRoutes(id: string, change: 'add' | 'remove' | 'replace', filters: readonly string[]): void {
    const node = this.nodeFor(id);
    const added: string[] = [];
    const removed: string[] = [];
    if (change === 'replace') {
      const wanted = new Set(filters);
      for (const filter of [...this.remoteRoutes.filtersOf(node.member)]) {
        if (!wanted.has(filter)) this.dropRemote(filter, node, removed);
      }
    }
    if (change === 'remove') {
      for (const filter of filters) this.dropRemote(filter, node, removed);
    } else {
      for (const filter of filters) {
        if (!this.remoteRoutes.add(filter, node.member)) continue;
        added.push(filter);
        this.want(filter, 1);
      }
    }
    if (added.length > 0 || removed.length > 0) {
      this.log.debug({ peer: id, change, added, removed }, 'routes of another node changed');
    }
    this.flushWanted();
  }

  private dropRemote(filter: string, node: RemoteNode, removed: string[]): void {
    if (!this.remoteRoutes.remove(filter, node.member)) return;
    removed.push(filter);
    this.want(filter, -1);
  }

  /** One more (or one less) reason for the workers to forward `filter` here. */
  private want(filter: string, delta: 1 | -1): void {
    const count = (this.wanted.get(filter) ?? 0) + delta;
    if (count > 0) {
      this.wanted.set(filter, count);
      if (count === 1 && delta === 1) this.wantAdded.push(filter);
    } else {
      this.wanted.delete(filter);
      this.wantRemoved.push(filter);
    }
    this.schedule();
  }

  /** Tells the workers which filters were first wanted here, or no longer are. */
  private flushWanted(): void {
    if (this.wantAdded.length > 0) {
      const added = this.wantAdded;
      this.wantAdded = [];
      this.toWorkers({ t: 'route+', filters: added });
    }
    if (this.wantRemoved.length > 0) {
      const removed = this.wantRemoved;
      this.wantRemoved = [];
      this.toWorkers({ t: 'route-', filters: removed });
    }
  }

  /** Resolves once Redis has every write issued so far: bus and session store. */
  private settled(): Promise<void> {
    const store = this.sessions?.store;
    return Promise.all([
      this.bus.flushed(),
      store?.flushed().catch((err: unknown) => {
        this.log.error({ err }, 'session store write failed');
      }),
    ]).then(() => {});
  }

  /**
   * A session read from the store reached its worker; every node routes to it now. What was
   * queued for it in the store after it was read (and could not reach it directly, since the
   * routes were not there yet) goes to it now, then the worker delivers what it held meanwhile
   * that this did not bring: nothing is missed, nothing is delivered twice.
   */
  private async catchUp(worker: WorkerPort, clientId: string): Promise<void> {
    const sessions = this.sessions;
    if (sessions !== null) {
      try {
        await this.settled();
        for (const d of await sessions.notYetGiven(clientId)) {
          const m = decodeStoredMessage(d.id, d.body);
          this.append(worker, {
            id: m.id,
            time: m.time,
            topic: m.topic,
            payload: m.payload,
            qos: m.qos,
            retain: false,
            origin: m.origin,
            properties: m.properties ?? null,
            target: clientId,
            targetQos: d.qos,
          });
        }
      } catch (err) {
        this.log.warn({ err, clientId }, 'could not read the rest of a resumed session');
      }
    }
    this.sendTo(worker, { t: 'stub-dropped', clientId });
  }

  /** Another node's barrier: answered once this node's workers have what came before it. */
  private applyBarrier(done: () => void): void {
    this.flushWanted();
    void Promise.all(this.workers.map((worker) => this.ping(worker))).then(done);
  }

  /** Another node takes `clientId` over: let it go here, store what it had, then say so. */
  private release(clientId: string, from: string): void {
    const letGo = this.onRelease?.(clientId) ?? Promise.resolve();
    void letGo
      .catch((err: unknown) => this.log.warn({ err, clientId }, 'could not let go of a client id cleanly'))
      .then(() => Promise.all(this.workers.map((worker) => this.ping(worker))))
      .then(() => this.settled())
      .then(() => this.bus.sendReleased(from, clientId));
  }

  /** A dead node's clients' wills (this node reaped it): published here, once. */
  private publishOrphanWills(node: string, wills: Buffer[]): void {
    for (const bytes of wills) {
      const orphan = decodeWill(bytes);
      if (orphan === null) {
        this.log.warn({ gone: node }, 'unreadable will of a dead node: skipped');
        continue;
      }
      this.orphanWills++;
      const { will, clientId } = orphan;
      // MQTT 5 will properties become the message's, as when the will fires on its own node.
      const carried = new Message(will.topic, will.payload, will.qos, will.retain, clientId);
      if (will.properties !== undefined) applyPublishProperties(carried, will.properties);
      this.messageSeq = (this.messageSeq + 1) % MESSAGE_SEQ_LIMIT;
      const record: Forwarded = {
        id: (this.bus.nodeNumber * MEMBERS_PER_NODE + GATEWAY_MEMBER) * MESSAGE_SEQ_LIMIT + this.messageSeq,
        time: Date.now(),
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        origin: clientId,
        properties: carriedProperties(carried),
        target: '',
        targetQos: 0,
      };
      this.outgoing(record);
      this.toLocalWorkers(record);
    }
    this.log.info({ gone: node, wills: wills.length }, 'published the wills of a dead node');
  }

  private nodeGone(id: string, reapedHere: boolean): void {
    const node = this.nodes.get(id);
    if (node !== undefined) {
      this.nodeRoutes(id, 'replace', []);
      this.nodes.delete(id);
      this.nodesByMember[node.member] = undefined;
      this.freeMembers.push(node.member);
      node.batch.take();
    }
    this.log.info(
      { gone: id, reapedHere },
      reapedHere ? 'reaped a node that stopped answering' : 'a node left the cluster',
    );
  }

  /** This node was taken for dead, or Redis came back: write its routes again. */
  private reannounce(): void {
    this.log.warn({ filters: this.localCount.size }, 'announcing this node and its routes again');
    this.bus.replaceRoutes([...this.localCount.keys()]);
  }

  private nodeFor(id: string): RemoteNode {
    let node = this.nodes.get(id);
    if (node === undefined) {
      const member = this.freeMembers.pop() ?? this.nodesByMember.length;
      node = { id, member, batch: new PublishBatchWriter(16 * 1024) };
      this.nodes.set(id, node);
      this.nodesByMember[member] = node;
      this.log.info({ peer: id }, 'a node joined the cluster');
    }
    return node;
  }

  // ---- to the workers ----

  /** A publish from outside the node's workers: to each worker that wants it (all for retained). */
  private toLocalWorkers(record: Forwarded): void {
    if (record.retain) {
      for (const worker of this.workers) this.append(worker, record);
      return;
    }
    const members = this.localRoutes.match(record.topic);
    for (let i = 0; i < members.length; i++) {
      const worker = this.workers[members[i] as number];
      if (worker !== undefined) this.append(worker, record);
    }
  }

  /**
   * A shared subscription group's message another node chose this node for: to the next
   * worker here that has the group (which picks one of its sessions).
   */
  private toWorkerInGroup(record: Forwarded): void {
    const key = record.target.slice(1);
    const worker = this.localRoutes.sharedGroup(key)?.next();
    if (worker === undefined) {
      this.log.debug({ group: key }, 'shared subscription message for a group no worker has here: dropped');
      return;
    }
    const port = this.workers[worker];
    if (port !== undefined) this.append(port, record);
  }

  /** A worker's message for a shared subscription group on another node: to the next such node. */
  private toNodeInGroup(record: Forwarded): void {
    const key = record.target.slice(1);
    const member = this.remoteRoutes.sharedGroup(key)?.next();
    const node = member === undefined ? undefined : this.nodesByMember[member];
    if (node === undefined) {
      this.log.debug({ group: key }, 'shared subscription message for a group no other node has: dropped');
      return;
    }
    node.batch.append(record);
    this.forwardedOut++;
    if (node.batch.count === 1) this.dirtyNodes.push(node);
    this.schedule();
  }

  private append(worker: WorkerPort, record: Forwarded): void {
    worker.batch.append(record);
    if (worker.batch.count === 1) this.dirtyWorkers.push(worker);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(this.flush);
  }

  private sendBatch(worker: WorkerPort): void {
    if (worker.batch.count === 0) return;
    const bytes = worker.batch.take();
    worker.port.postMessage(bytes, [bytes.buffer]);
  }

  private sendTo(worker: WorkerPort, message: ToPeer): void {
    this.sendBatch(worker);
    worker.port.postMessage(message);
  }

  private toWorkers(message: ToPeer): void {
    for (const worker of this.workers) this.sendTo(worker, message);
  }

  private ping(worker: WorkerPort): Promise<void> {
    const n = this.nextPing++;
    return new Promise((resolve) => {
      this.pings.set(n, resolve);
      this.sendTo(worker, { t: 'ping', n });
    });
  }
}
