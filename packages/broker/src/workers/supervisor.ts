/**
 * The main thread of a node: starts the routing workers and wires them to each other (one
 * MessageChannel per pair), shares the listening socket (worker 0 binds, the others listen on
 * its descriptor, so accepted sockets never pass through this thread), keeps the client-id
 * registry, collects figures from every worker, and stops them all on shutdown. It never sees
 * a packet.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { TlsMaterial } from '@tern/listener';
import { decodeSnapshot, encodeSnapshot, type Message, type Session } from '@tern/session';
import { type AccessReloadResult, loadAccessTables, logAccessPolicy, logAccessReload } from '../access/access.js';
import { loadAuthPlugin } from '../access/plugin.js';
import type { BrokerConfig, LogLevel } from '../config.js';
import { type HeapTrim, heapTrimFor } from '../heap-trim.js';
import { type ListenerFds, type ListenerKind, logListening } from '../listeners.js';
import type { Logger } from '../logger.js';
import type { StatsSnapshot } from '../metrics/snapshot.js';
import { MEMORY_CHECK_INTERVAL_MS, NodeLimitState } from '../node-limits.js';
import { sysValuesFromSnapshots } from '../sys-topics.js';
import { logTlsReload, readTlsMaterial, reloadTlsMaterial, type TlsReloadResult, tlsWanted } from '../tls-files.js';
import { type FromWorker, type SessionInfo, type ToWorker, transferOf } from './messages.js';
import { type GatewayStats, NodeGateway } from './node-gateway.js';
import { ClientRegistry } from './registry.js';

/** What a worker is started with (workerData). */
export interface WorkerData {
  index: number;
  count: number;
  config: BrokerConfig;
  /** Open connections of the whole node (shared memory): maxConnections is node-wide. */
  openCount: Int32Array;
  /** The node's limit state (shared memory): the memory mark's state, flood-limited log lines. */
  nodeLimits: Int32Array;
  /** Send log lines to the supervisor (its onLog) instead of writing them to stdout. */
  logToParent: boolean;
  /** The node's number in its cluster (its gateway is then peer `count`); null on its own. */
  nodeNumber: number | null;
}

export interface SupervisorOptions {
  /** Receives every worker's log lines (a test's capture); without it workers write to stdout. */
  onLog?: (line: string) => void;
}

/** How long a request to a worker (figures, a snapshot) may take before it is left out. */
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Each worker's young generation, in MiB. V8 grows it to 48 MiB under the allocation burst of
 * thousands of connects and keeps it committed, per worker: with 10,000 idle connections that
 * was 7.0 KiB per connection on one worker and 10.3 KiB on two (RSS after minus before), 6.5 and
 * 5.4 with this cap, with fan-in, fan-out, QoS 1, latency and redelivery unchanged within noise
 * (benchmarks/RESULTS.md, 2026-11-26 session 5). Routing keeps little alive per message, so a
 * smaller young generation scavenges more often but not more work in all.
 */
const WORKER_YOUNG_GENERATION_MB = 8;

interface Slot {
  readonly index: number;
  readonly worker: Worker;
  restarts: number;
  exited: boolean;
}

/** A listen failure in worker 0, as one line with the listener's stable code. */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class Supervisor {
  readonly config: BrokerConfig;
  readonly log: Logger;
  /** The bound MQTT port (after start): the TCP listener's, or the first listener's when TCP is off. */
  port = 0;
  /** The bound port of every enabled listener (after start). */
  readonly ports: Partial<Record<ListenerKind, number>> = {};
  /** The TLS certificate, key and CA in use (read here, handed to every worker); null without TLS. */
  private tls: TlsMaterial | null = null;
  /** Called when a worker thread ends while the node is running (not a contained crash). */
  onFatal: ((error: Error) => void) | null = null;
  private readonly slots: Slot[] = [];
  private readonly registry: ClientRegistry;
  private nextRequest = 1;
  private readonly requests = new Map<number, (reply: FromWorker) => void>();
  /** One-shot waiters for a message type from a worker (start-up handshakes). */
  private readonly waiters = new Map<string, (reply: FromWorker) => void>();
  private stopping = false;
  private sysTimer: NodeJS.Timeout | null = null;
  /** The node's limit state; this thread checks the memory mark for every worker. */
  private readonly nodeLimits = new NodeLimitState();
  private memoryTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();
  private clientsMaximum = 0;
  /** Client id claims and releases, ever: what heapTrim watches. */
  private clientIdEvents = 0;
  /** Collects this thread's garbage once a storm of connections settles; null when not exposed. */
  private readonly heapTrim: HeapTrim | null;
  /** The node's member in its cluster (with `redis` configured), else null. */
  private gateway: NodeGateway | null = null;

  private readonly onLog: ((line: string) => void) | null;

  private constructor(config: BrokerConfig, log: Logger, options: SupervisorOptions) {
    this.config = config;
    this.log = log;
    this.onLog = options.onLog ?? null;
    this.registry = new ClientRegistry({
      release: async (worker, clientId, clean, to) => {
        const reply = await this.request(worker, (req) => ({ t: 'release', req, clientId, clean, to }));
        return reply.t === 'released' ? reply.session : null;
      },
      grant: (worker, req, session, from, refused) =>
        this.post(worker, { t: 'claimed', req, session, from, refused: refused ?? null }, transferOf(session)),
    });
    this.heapTrim = heapTrimFor(config.heapTrimConnections);
  }

  get workerCount(): number {
    return this.slots.length;
  }

  /** Starts `config.workers` routing workers, restores `snapshot` into them, then listens. */
  static async start(
    config: BrokerConfig,
    log: Logger,
    snapshot: Uint8Array | null,
    options: SupervisorOptions = {},
  ): Promise<Supervisor> {
    // The password and ACL files are checked here first, so a bad one stops start-up with one
    // line before any worker starts (each worker then reads them itself).
    logAccessPolicy(log, config, await loadAccessTables(config));
    // The auth plug-in too: a bad path or module stops start-up here (every worker imports it).
    if (config.authPlugin !== '') await loadAuthPlugin(config.authPlugin, config.authPluginTimeoutMs);
    // The certificate files too: read once here, handed to every worker.
    const tls = tlsWanted(config) ? await readTlsMaterial(config) : null;
    const supervisor = new Supervisor(config, log, options);
    supervisor.tls = tls;
    try {
      await supervisor.startWorkers(snapshot);
      supervisor.startMemoryCheck();
    } catch (err) {
      await supervisor.terminate();
      throw err;
    }
    return supervisor;
  }

  private async startWorkers(snapshot: Uint8Array | null): Promise<void> {
    const count = this.config.workers;
    // Redis first: a node that cannot join its cluster stops before any worker starts.
    if (this.config.redis !== '') {
      const gateway = await NodeGateway.connect(this.config, this.log, count);
      this.gateway = gateway;
      // Client ids are taken cluster-wide; another node taking one makes this node let go.
      this.registry.cluster = gateway;
      gateway.onRelease = (clientId) => this.registry.evict(clientId);
    } else if (this.config.dataDir !== '') {
      const gateway = await NodeGateway.local(this.config, this.log, count);
      this.gateway = gateway;
      this.registry.cluster = gateway;
    }
    const entry = new URL('./worker-entry.js', import.meta.url);
    const openCount = new Int32Array(new SharedArrayBuffer(4));
    for (let index = 0; index < count; index++) {
      const workerData: WorkerData = {
        index,
        count,
        config: this.config,
        openCount,
        nodeLimits: this.nodeLimits.shared,
        logToParent: this.onLog !== null,
        nodeNumber: this.gateway?.nodeNumber ?? null,
      };
      const worker = new Worker(entry, {
        workerData,
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      const slot: Slot = { index, worker, restarts: 0, exited: false };
      this.slots.push(slot);
      worker.on('message', (message: FromWorker) => this.receive(slot, message));
      worker.on('error', (err) => this.log.error({ worker: index, err }, 'routing worker failed'));
      worker.on('exit', (code) => this.exited(slot, code));
    }
    // Every pair of workers gets its own channel: forwarding never hops through this thread.
    const ports: Record<number, MessagePort>[] = this.slots.map(() => ({}));
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        const { port1, port2 } = new MessageChannel();
        (ports[a] as Record<number, MessagePort>)[b] = port1;
        (ports[b] as Record<number, MessagePort>)[a] = port2;
      }
    }
    // The gateway is one more peer of every worker, known to them by the index `count`.
    if (this.gateway !== null) {
      for (let w = 0; w < count; w++) {
        const { port1, port2 } = new MessageChannel();
        (ports[w] as Record<number, MessagePort>)[count] = port2;
        this.gateway.addWorker(w, port1);
      }
    }
    for (const slot of this.slots) {
      const own = ports[slot.index] as Record<number, MessagePort>;
      slot.worker.postMessage({ t: 'peers', ports: own } satisfies ToWorker, Object.values(own));
    }
    if (snapshot !== null) await this.restore(snapshot);
    // Other nodes' routes and the cluster's retained messages are in every worker before the
    // first client is accepted.
    if (this.gateway !== null) await this.gateway.start();
    const first = await this.handshake(0, { t: 'listen', fds: null, tls: this.tls }, 'listening');
    if (first.t === 'listen-failed') throw new WorkerStartError(first.code, first.message);
    if (first.t !== 'listening') throw new Error(`unexpected reply ${first.t}`);
    const fds: ListenerFds = {};
    for (const { kind, port, fd } of first.listeners) {
      this.ports[kind] = port;
      fds[kind] = fd;
    }
    this.port = this.ports.tcp ?? first.listeners[0]?.port ?? 0;
    logListening(this.log, this.config, first.listeners);
    await Promise.all(
      this.slots.slice(1).map(async (slot) => {
        const reply = await this.handshake(slot.index, { t: 'listen', fds, tls: this.tls }, 'listening');
        if (reply.t === 'listen-failed') throw new WorkerStartError(reply.code, reply.message);
      }),
    );
    this.startSys();
  }

  /**
   * Checks the memory mark for the whole node (RSS is the process's, one figure for every
   * worker); the workers read the state from shared memory.
   */
  private startMemoryCheck(): void {
    this.memoryTimer = setInterval(() => {
      this.nodeLimits.checkMemory(this.config.memoryHighWaterMark, this.log);
      // Every connection's client id passes through here (claims, then gone): this thread's
      // storm garbage is handed back as the workers' is (heap-trim.ts).
      if (this.heapTrim?.observe(this.clientIdEvents, Date.now())) {
        this.log.debug(
          { clientIdEvents: this.clientIdEvents },
          'supervisor heap collected after a storm of connections',
        );
      }
    }, MEMORY_CHECK_INTERVAL_MS);
    this.memoryTimer.unref();
  }

  /** $SYS figures of the whole node, published through worker 0 (retained: every worker keeps them). */
  private startSys(): void {
    if (this.sysTimer !== null) clearInterval(this.sysTimer);
    this.sysTimer = null;
    const seconds = this.config.sysInterval;
    if (seconds === 0 || this.stopping) return;
    const publish = (): void => {
      this.stats().then(
        (snapshots) => {
          if (this.stopping) return;
          let connected = 0;
          for (const s of snapshots) connected += s.gauges.clientsConnected;
          this.clientsMaximum = Math.max(this.clientsMaximum, connected);
          this.publishSys(sysValuesFromSnapshots(snapshots, this.startedAt, this.clientsMaximum));
        },
        (err: unknown) => this.log.warn({ err }, '$SYS figures could not be collected'),
      );
    };
    publish();
    this.sysTimer = setInterval(publish, seconds * 1000);
    this.sysTimer.unref();
  }

  /** Splits saved sessions over the workers (by client id) and gives every worker the retained messages. */
  private async restore(bytes: Uint8Array): Promise<void> {
    const limits = {
      maxInflight: this.config.maxInflight,
      maxQueued: this.config.maxQueued,
      overflowPolicy: this.config.queueOverflow,
    };
    const contents = decodeSnapshot(bytes, limits);
    let queued = 0;
    for (const session of contents.sessions) queued += session.queue.length + session.inflight.size;
    this.log.info(
      { sessions: contents.sessions.length, queued, retained: contents.retained.length },
      'loaded saved sessions and retained messages',
    );
    const count = this.slots.length;
    const parts: Session[][] = this.slots.map(() => []);
    for (const session of contents.sessions) {
      const worker = hashId(session.clientId) % count;
      (parts[worker] as Session[]).push(session);
      this.registry.assign(session.clientId, worker);
    }
    await Promise.all(
      this.slots.map((slot) =>
        this.handshake(
          slot.index,
          {
            t: 'restore',
            snapshot: encodeSnapshot({ sessions: parts[slot.index] as Session[], retained: contents.retained }),
          },
          'restored',
        ),
      ),
    );
  }

  /** The cluster figures of this node, or null when it runs on its own. */
  clusterStats(): GatewayStats | null {
    return this.gateway?.stats ?? null;
  }

  /** Figures from every worker that answers in time. */
  async stats(): Promise<StatsSnapshot[]> {
    const replies = await Promise.all(
      this.slots.map((slot) => this.request(slot.index, (req) => ({ t: 'stats', req })).catch(() => null)),
    );
    const out: StatsSnapshot[] = [];
    for (const reply of replies) if (reply?.t === 'stats') out.push(reply.snapshot);
    return out;
  }

  /** Persistent sessions of every worker and the retained messages, as one snapshot. */
  async snapshot(): Promise<Uint8Array> {
    const replies = await Promise.all(
      this.slots.map((slot) => this.request(slot.index, (req) => ({ t: 'snapshot', req, retained: slot.index === 0 }))),
    );
    return this.merge(replies.map((r) => (r.t === 'snapshot' ? r.bytes : null)));
  }

  setLogLevel(level: LogLevel): void {
    this.broadcast({ t: 'log-level', level });
  }

  /**
   * Applies a reloaded configuration in every worker; each also reads the password and ACL
   * files again. Resolves once every worker has (one log line for the node says what changed).
   */
  async reload(config: BrokerConfig): Promise<void> {
    const sysChanged = config.sysInterval !== this.config.sysInterval;
    const memoryChanged = config.memoryHighWaterMark !== this.config.memoryHighWaterMark;
    Object.assign(this.config, config);
    if (memoryChanged) this.nodeLimits.checkMemory(this.config.memoryHighWaterMark, this.log);
    // The certificate files are read here, once, and handed to every worker with the config.
    const tlsResult: TlsReloadResult | null = tlsWanted(this.config) ? await reloadTlsMaterial(this.config) : null;
    if (tlsResult?.ok === true) this.tls = tlsResult.material;
    const tls = tlsResult?.ok === true ? tlsResult.material : null;
    const replies = Promise.all(
      this.slots.map((slot) =>
        slot.exited ? null : this.request(slot.index, (req) => ({ t: 'config', req, config, tls })).catch(() => null),
      ),
    );
    if (sysChanged) this.startSys();
    const results: AccessReloadResult[] = [];
    for (const reply of await replies) if (reply?.t === 'reloaded') results.push(reply.access);
    // Every worker read the same files: a refusal anywhere is reported, else the first answer.
    const result = results.find((r) => !r.ok) ?? results[0];
    if (result !== undefined) logAccessReload(this.log, result);
    // After every worker answered: a connection accepted from now on gets the new certificate.
    if (tlsResult !== null) logTlsReload(this.log, tlsResult);
  }

  /** $SYS values to publish (worker 0 publishes; retained copies reach every worker). */
  publishSys(values: [string, string][]): void {
    this.post(0, { t: 'sys', values });
  }

  /** Where `clientId`'s session is and what it holds, or null when no worker has one. */
  async sessionInfo(clientId: string): Promise<SessionInfo | null> {
    const replies = await Promise.all(
      this.slots.map((slot) => this.request(slot.index, (req) => ({ t: 'session', req, clientId })).catch(() => null)),
    );
    for (const reply of replies) if (reply?.t === 'session' && reply.info !== null) return reply.info;
    return null;
  }

  /** Debug hook for tests: make worker `index` throw an uncaught error. */
  crash(index: number): void {
    this.post(index, { t: 'crash' });
  }

  /**
   * Stops every worker: each closes its clients (with `graceMs` for them to take their last
   * bytes) and hands back its persistent sessions. Returns them as one snapshot.
   */
  async stop(graceMs: number): Promise<Uint8Array> {
    this.stopping = true;
    if (this.sysTimer !== null) clearInterval(this.sysTimer);
    const replies = await Promise.all(
      this.slots.map((slot) =>
        slot.exited ? null : this.handshake(slot.index, { t: 'stop', graceMs }, 'stopped').catch(() => null),
      ),
    );
    const merged = this.merge(replies.map((r) => (r?.t === 'stopped' ? r.snapshot : null)));
    await this.terminate();
    return merged;
  }

  private async terminate(): Promise<void> {
    this.stopping = true;
    if (this.sysTimer !== null) clearInterval(this.sysTimer);
    if (this.memoryTimer !== null) clearInterval(this.memoryTimer);
    this.memoryTimer = null;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    const gateway = this.gateway;
    this.gateway = null;
    await gateway?.close();
  }

  /** One snapshot from the workers' parts: all their sessions, worker 0's retained messages. */
  private merge(parts: (Uint8Array | null)[]): Uint8Array {
    const limits = {
      maxInflight: this.config.maxInflight,
      maxQueued: this.config.maxQueued,
      overflowPolicy: this.config.queueOverflow,
    };
    const sessions: Session[] = [];
    let retained: Message[] = [];
    parts.forEach((bytes, index) => {
      if (bytes === null) return;
      const part = decodeSnapshot(bytes, limits);
      sessions.push(...part.sessions);
      if (index === 0 || retained.length === 0) retained = part.retained.length > 0 ? part.retained : retained;
    });
    return encodeSnapshot({ sessions, retained });
  }

  private receive(slot: Slot, message: FromWorker): void {
    switch (message.t) {
      case 'claim':
        this.clientIdEvents++;
        this.registry.claim(slot.index, message.req, message.clientId, message.clean, message.expiry);
        return;
      case 'gone':
        this.clientIdEvents++;
        this.registry.gone(slot.index, message.clientId);
        return;
      case 'settled':
        this.registry.settled(message.clientId);
        return;
      case 'crashed':
        slot.restarts = message.restarts;
        this.log.error(
          { worker: slot.index, restarts: message.restarts, error: message.error },
          'routing worker crashed: its clients were disconnected and its broker restarted with its sessions',
        );
        return;
      case 'log':
        this.onLog?.(message.line);
        return;
      case 'auth-failure':
        for (const other of this.slots) {
          if (other !== slot) this.post(other.index, { t: 'auth-failure', address: message.address });
        }
        return;
      case 'released':
      case 'reloaded':
      case 'stats':
      case 'session':
      case 'snapshot': {
        const resolve = this.requests.get(message.req);
        this.requests.delete(message.req);
        resolve?.(message);
        return;
      }
      default: {
        const key = `${slot.index}:${message.t === 'listen-failed' ? 'listening' : message.t}`;
        const resolve = this.waiters.get(key);
        this.waiters.delete(key);
        resolve?.(message);
      }
    }
  }

  private exited(slot: Slot, code: number): void {
    slot.exited = true;
    for (const [key, resolve] of this.waiters) {
      if (key.startsWith(`${slot.index}:`)) {
        this.waiters.delete(key);
        resolve({
          t: 'listen-failed',
          code: 'TERN_WORKER_EXITED',
          message: `routing worker ${slot.index} exited (${code})`,
        });
      }
    }
    if (this.stopping) return;
    const error = new Error(`routing worker ${slot.index} exited unexpectedly (code ${code})`);
    this.log.fatal({ worker: slot.index, code }, error.message);
    this.onFatal?.(error);
  }

  private post(index: number, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    const slot = this.slots[index];
    if (slot === undefined || slot.exited) return;
    slot.worker.postMessage(message, transfer);
  }

  private broadcast(message: ToWorker): void {
    for (const slot of this.slots) this.post(slot.index, message);
  }

  /** Sends a request with a fresh number and resolves with the reply that carries it. */
  private request(index: number, make: (req: number) => ToWorker): Promise<FromWorker> {
    const req = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(req);
        reject(new Error(`routing worker ${index} did not answer in time`));
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.requests.set(req, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.post(index, make(req));
    });
  }

  /** Sends `message` and resolves with the worker's next message of type `replyType`. */
  private handshake(index: number, message: ToWorker, replyType: string): Promise<FromWorker> {
    return new Promise((resolve) => {
      this.waiters.set(`${index}:${replyType}`, resolve);
      this.post(index, message);
    });
  }
}

/** A small, stable hash of a client id: which worker gets a restored session. */
function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}
