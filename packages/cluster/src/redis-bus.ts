/**
 * One node's line to the rest of its cluster through Redis: pub/sub for publish batches,
 * route changes, retained messages and node departures; keys for what a node joining later
 * must read (every node's routes, the retained store, who is alive).
 *
 *   {prefix}:nodes            sorted set: node id -> last heartbeat (Redis server time, ms)
 *   {prefix}:routes:<node>    set: the filters that node routes to itself
 *   {prefix}:retained         hash: topic -> the retained message (a one-record publish batch)
 *   {prefix}:owner:<client>   string: the node that holds the client id now
 *   {prefix}:wills:<node>     hash: client id -> the will of its live connection on that node
 *   {prefix}:node-seq         counter: each node's number (message ids are unique per number)
 *   {prefix}:all              channel: every node listens (routes, retained, departures)
 *   {prefix}:node:<node>      channel: publish batches for that node only
 *
 * A publish crosses to another node only when that node routes a matching filter to itself,
 * once per node per event-loop turn (the gateway batches), never once per subscriber.
 * Heartbeats and the reaping of a silent node use Redis's clock (TIME inside a script), so
 * nodes' clocks never have to agree, and exactly one survivor reaps a dead node (the script
 * removes it from the set atomically).
 */
import { randomBytes } from 'node:crypto';
import { BusKind, type BusMessage, type BusMessageError, decodeBusMessage, encodeBusMessage } from './bus-message.js';
import { NODE_NUMBERS, type NodeBus } from './node-bus.js';
import { createRedisClient, type RedisClient } from './redis-connect.js';
import { parseRedisUrl } from './redis-url.js';

export interface RedisBusEvents {
  /** A publish batch for this node's subscribers. */
  batch(bytes: Uint8Array): void;
  /** Retained messages published on another node (a batch). */
  retained(bytes: Uint8Array): void;
  /** Another node's routes changed. */
  routes(node: string, change: 'add' | 'remove' | 'replace', filters: string[]): void;
  /** `node` left or was reaped; `reapedHere` is true on the one node that reaped it. */
  nodeGone(node: string, reapedHere: boolean): void;
  /**
   * This node was taken for dead by another (its heartbeat stopped for too long) or Redis
   * came back after an outage: its routes must be written again.
   */
  reannounce(): void;
  /** A persistent session's subscriptions changed on another node (or it was deleted). */
  session(change: 'sub' | 'unsub' | 'delete', clientId: string, filter: string, qos: number): void;
  /** Node `from` takes `clientId` over: let go of it, then answer with released(). */
  release(clientId: string, from: string): void;
  /** Node `from` has let go of `clientId` (its session changes are in the store). */
  released(clientId: string, from: string): void;
  /**
   * Node `from` asks whether everything it said before is applied here (route and session
   * changes): call `done` once this node's workers have it too.
   */
  barrier(from: string, done: () => void): void;
  /**
   * This node reaped `node` (exactly one survivor does, once per dead node): what the dead node
   * left behind is this node's to deal with (its sessions' expiry).
   */
  reaped(node: string): void;
  /** This node reaped `node`: the wills of its clients, to publish (once: only the reaper gets them). */
  orphanWills(node: string, wills: Buffer[]): void;
  /** Redis is reachable (true) or not (false); called on every change. */
  connection(up: boolean): void;
  /** Something went wrong that the bus got over (a bad message, a failed write). */
  error(err: Error, context: string): void;
}

export interface RedisBusOptions {
  url: string;
  /** Namespace of every key and channel: several clusters can share one Redis. */
  prefix: string;
  /** This node's name; the bus adds a random suffix so a restarted node is a new member. */
  nodeName: string;
  heartbeatMs: number;
  /** A node whose heartbeat is older than this is reaped by a survivor. */
  nodeTimeoutMs: number;
  events: RedisBusEvents;
}

/** Redis could not be reached at start-up: one line naming the URL and the cause. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  readonly code = 'TERN_REDIS_UNAVAILABLE';
}

/** Heartbeat: stamps this node with Redis's time and returns the nodes that went silent. */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))`;

/**
 * Reap: removes a silent node and its routes and announces it, unless another survivor did
 * so first or the node spoke again meanwhile. Its wills move to a key of the reaper's (KEYS[4])
 * in the same step, so exactly one survivor publishes them. Returns 1 on that survivor.
 */
const REAP = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(score) > now - tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[4]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

/**
 * Claim: makes this node the holder of a client id. Returns the previous holder ('' for none
 * or this node) and whether it is alive (registered), i.e. must be asked to let go.
 */
const CLAIM = `
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if not previous or previous == ARGV[1] then return {'', 0} end
if redis.call('ZSCORE', KEYS[2], previous) then return {previous, 1} end
return {previous, 0}`;

export class RedisBus implements NodeBus {
  readonly nodeId: string;
  private readonly options: RedisBusOptions;
  private readonly events: RedisBusEvents;
  /** Commands and publishes. */
  private readonly command: RedisClient;
  /** Subscriptions only (a subscribed connection can do nothing else). */
  private readonly subscriber: RedisClient;
  private readonly keys: { nodes: string; retained: string; routes: (node: string) => string };
  private readonly channelAll: string;
  /** The hash tag every key and channel starts with: {prefix}. */
  readonly tag: string;
  private readonly channelSelf: string;
  private readonly channelPrefix: string;
  /** Messages that arrived while start() was reading the current state; replayed after it. */
  private held: BusMessage[] | null = [];
  /** The last write issued: writes on one connection complete in order. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** This node's number in the cluster (see NODE_NUMBERS). */
  nodeNumber = 0;
  private up = false;
  /** The last connection error ioredis reported (why a start-up connect failed). */
  private lastError: Error | null = null;
  private closing = false;
  /** Cluster barriers in progress: the nodes yet to answer each. */
  private nextBarrier = 1;
  private readonly barriers = new Map<number, { waiting: Set<string>; done: () => void }>();

  private constructor(options: RedisBusOptions) {
    this.options = options;
    this.events = options.events;
    this.nodeId = `${options.nodeName}#${randomBytes(4).toString('hex')}`;
    const target = parseRedisUrl(options.url);
    this.command = createRedisClient(target, `tern:${this.nodeId}`);
    this.subscriber = createRedisClient(target, `tern:${this.nodeId}:sub`);
    // ioredis reports every failed (re)connect as an 'error' event; the state changes are
    // what matter (watchConnection), the last error says why.
    for (const client of [this.command, this.subscriber]) {
      client.on('error', (err: Error) => {
        this.lastError = err;
      });
    }
    const tag = `{${options.prefix}}`;
    this.tag = tag;
    this.keys = {
      nodes: `${tag}:nodes`,
      retained: `${tag}:retained`,
      routes: (node) => `${tag}:routes:${node}`,
    };
    this.channelAll = `${tag}:all`;
    this.channelPrefix = `${tag}:node:`;
    this.channelSelf = this.channelPrefix + this.nodeId;
  }

  /**
   * Connects both connections and subscribes; messages are held until start() has read the
   * cluster's state, then replayed in order, so nothing said meanwhile is missed or undone.
   */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(options);
    try {
      await Promise.all([bus.command.connect(), bus.subscriber.connect()]);
    } catch (err) {
      bus.command.disconnect();
      bus.subscriber.disconnect();
      const why = bus.lastError ?? (err as Error);
      throw new RedisUnavailableError(`cannot reach Redis at ${options.url}: ${why.message}`, { cause: err });
    }
    bus.up = true;
    bus.command.defineCommand('ternHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
    bus.command.defineCommand('ternReap', { numberOfKeys: 4, lua: REAP });
    bus.command.defineCommand('ternClaim', { numberOfKeys: 2, lua: CLAIM });
    bus.nodeNumber = (await retryTransient(() => bus.command.incr(`{${options.prefix}}:node-seq`))) % NODE_NUMBERS;
    bus.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => bus.receive(channel, message));
    await retryTransient(() => bus.subscriber.subscribe(bus.channelAll, bus.channelSelf));
    bus.watchConnection();
    return bus;
  }

  /**
   * Reads every live node's routes and the retained store, registers this node, and starts
   * the heartbeat. `load` gets the state before any message held since connect() is replayed.
   */
  async start(load: (routes: Map<string, string[]>, retained: Uint8Array[]) => void | Promise<void>): Promise<void> {
    await retryTransient(() => this.heartbeat());
    const nodes = (await retryTransient(() => this.command.zrange(this.keys.nodes, 0, -1))).filter(
      (n) => n !== this.nodeId,
    );
    const replies =
      (await retryTransient(() => {
        const pipeline = this.command.pipeline();
        for (const node of nodes) pipeline.smembers(this.keys.routes(node));
        pipeline.hvalsBuffer(this.keys.retained);
        return pipeline.exec();
      })) ?? [];
    const routes = new Map<string, string[]>();
    nodes.forEach((node, i) => {
      const [err, filters] = replies[i] as [Error | null, string[]];
      if (err === null && filters.length > 0) routes.set(node, filters);
    });
    const [retainedErr, retained] = replies[nodes.length] as [Error | null, Buffer[]];
    if (retainedErr !== null) throw retainedErr;
    await load(routes, retained);
    const held = this.held ?? [];
    this.held = null;
    for (const message of held) this.apply(message);
    this.heartbeatTimer = setInterval(() => this.tick(), this.options.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /** Sends a publish batch to one node (fire and forget; order per node is kept). */
  sendBatch(node: string, batch: Uint8Array): void {
    const message: BusMessage = { kind: BusKind.Batch, node: this.nodeId, body: batch };
    this.track(this.command.publish(this.channelPrefix + node, this.frame(message)), 'publish batch');
  }

  /**
   * Stores retained messages (null deletes the topic's) and tells every node, in one
   * transaction, so the store and the announcements agree on the order of writes.
   */
  storeRetained(entries: readonly [topic: string, record: Uint8Array | null][], batch: Uint8Array): void {
    const multi = this.command.multi();
    for (const [topic, record] of entries) {
      if (record === null) multi.hdel(this.keys.retained, topic);
      else multi.hset(this.keys.retained, topic, Buffer.from(record.buffer, record.byteOffset, record.byteLength));
    }
    multi.publish(this.channelAll, this.frame({ kind: BusKind.Retained, node: this.nodeId, body: batch }));
    this.track(multi.exec(), 'store retained');
  }

  addRoutes(filters: readonly string[]): void {
    if (filters.length === 0) return;
    const multi = this.command.multi();
    multi.sadd(this.keys.routes(this.nodeId), ...filters);
    multi.publish(this.channelAll, this.frame({ kind: BusKind.RoutesAdded, node: this.nodeId, body: [...filters] }));
    this.track(multi.exec(), 'add routes');
  }

  removeRoutes(filters: readonly string[]): void {
    if (filters.length === 0) return;
    const multi = this.command.multi();
    multi.srem(this.keys.routes(this.nodeId), ...filters);
    multi.publish(this.channelAll, this.frame({ kind: BusKind.RoutesRemoved, node: this.nodeId, body: [...filters] }));
    this.track(multi.exec(), 'remove routes');
  }

  /** Writes this node's whole route set again and registers it (after it was reaped, or an outage). */
  replaceRoutes(filters: readonly string[]): void {
    const key = this.keys.routes(this.nodeId);
    const multi = this.command.multi();
    multi.del(key);
    if (filters.length > 0) multi.sadd(key, ...filters);
    multi.publish(this.channelAll, this.frame({ kind: BusKind.RoutesReplaced, node: this.nodeId, body: [...filters] }));
    this.track(multi.exec(), 'replace routes');
    void this.heartbeat().catch(() => {});
  }

  /** Tells every node that a persistent session's subscriptions changed here. */
  sessionChanged(change: 'sub' | 'unsub' | 'delete', clientId: string, filter = '', qos = 0): void {
    const message: BusMessage =
      change === 'sub'
        ? { kind: BusKind.SessionSubscribed, node: this.nodeId, body: [clientId, filter, qos] }
        : change === 'unsub'
          ? { kind: BusKind.SessionUnsubscribed, node: this.nodeId, body: [clientId, filter] }
          : { kind: BusKind.SessionDeleted, node: this.nodeId, body: clientId };
    this.track(this.command.publish(this.channelAll, this.frame(message)), 'announce session');
  }

  /**
   * Makes this node the holder of `clientId`; resolves with the previous holder when it is
   * another live node (which must be asked to let go), else null.
   */
  async claimOwner(clientId: string): Promise<string | null> {
    const command = this.command as unknown as {
      ternClaim(owner: string, nodes: string, node: string): Promise<[string, number]>;
    };
    const [previous, alive] = await command.ternClaim(`${this.tag}:owner:${clientId}`, this.keys.nodes, this.nodeId);
    return previous !== '' && alive === 1 ? previous : null;
  }

  /** Asks `node` to let go of `clientId` (it answers with released). */
  requestRelease(node: string, clientId: string): void {
    const message: BusMessage = { kind: BusKind.Release, node: this.nodeId, body: clientId };
    this.track(this.command.publish(this.channelPrefix + node, this.frame(message)), 'request release');
  }

  sendReleased(node: string, clientId: string): void {
    const message: BusMessage = { kind: BusKind.Released, node: this.nodeId, body: clientId };
    this.track(this.command.publish(this.channelPrefix + node, this.frame(message)), 'answer release');
  }

  /** Records (or, with null, forgets) the will of a client connected here. */
  setWill(clientId: string, will: Uint8Array | null): void {
    const key = `${this.tag}:wills:${this.nodeId}`;
    this.track(
      will === null
        ? this.command.hdel(key, clientId)
        : this.command.hset(key, clientId, Buffer.from(will.buffer, will.byteOffset, will.byteLength)),
      'store will',
    );
  }

  /**
   * Resolves once every other live node has applied what this node announced before the call
   * (a SUBACK then means a publish on any node reaches the subscriber). A node that does not
   * answer within the node timeout is dead or cut off: it is not waited for any longer.
   */
  async clusterBarrier(): Promise<void> {
    const nodes = (await this.command.zrange(this.keys.nodes, 0, -1)).filter((n) => n !== this.nodeId);
    if (nodes.length === 0) return;
    const n = this.nextBarrier++;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.barriers.delete(n);
        resolve();
      }, this.options.nodeTimeoutMs);
      timer.unref();
      this.barriers.set(n, {
        waiting: new Set(nodes),
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      const message: BusMessage = { kind: BusKind.Barrier, node: this.nodeId, body: String(n) };
      this.track(this.command.publish(this.channelAll, this.frame(message)), 'barrier');
    });
  }

  /** Resolves once Redis has acknowledged every write issued so far (failed ones included). */
  flushed(): Promise<void> {
    return this.lastWrite.then(
      () => {},
      () => {},
    );
  }

  /** The connection commands and publishes go out on (in order): a store may share it. */
  get commandConnection(): RedisClient {
    return this.command;
  }

  get connected(): boolean {
    return this.up;
  }

  /** Leaves the cluster cleanly: routes and registration removed, every node told. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.up) {
      try {
        const multi = this.command.multi();
        multi.del(this.keys.routes(this.nodeId));
        multi.del(`${this.tag}:wills:${this.nodeId}`);
        multi.zrem(this.keys.nodes, this.nodeId);
        multi.publish(this.channelAll, this.frame({ kind: BusKind.NodeGone, node: this.nodeId, body: this.nodeId }));
        await withTimeout(multi.exec(), 2000);
      } catch {
        // Redis is unreachable: the others reap this node when its heartbeat is old enough.
      }
    }
    this.subscriber.disconnect();
    this.command.disconnect();
  }

  private frame(message: BusMessage): Buffer {
    const bytes = encodeBusMessage(message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private track(write: Promise<unknown>, context: string): void {
    const tracked = write.catch((err: Error) => this.events.error(err, context));
    this.lastWrite = tracked;
  }

  private async heartbeat(): Promise<string[]> {
    const command = this.command as unknown as {
      ternHeartbeat(key: string, node: string, timeout: number): Promise<string[]>;
    };
    return command.ternHeartbeat(this.keys.nodes, this.nodeId, this.options.nodeTimeoutMs);
  }

  private tick(): void {
    if (this.closing) return;
    this.heartbeat().then(
      (silent) => {
        for (const node of silent) if (node !== this.nodeId) void this.reap(node);
      },
      (err: Error) => {
        if (this.up) this.events.error(err, 'heartbeat');
      },
    );
  }

  private async reap(node: string): Promise<void> {
    const command = this.command as unknown as {
      ternReap(...args: (string | number | Buffer)[]): Promise<number>;
    };
    try {
      const gone = this.frame({ kind: BusKind.NodeGone, node: this.nodeId, body: node });
      const reaping = `${this.tag}:reaping:${this.nodeId}:${node}`;
      const reaped = await command.ternReap(
        this.keys.nodes,
        this.keys.routes(node),
        `${this.tag}:wills:${node}`,
        reaping,
        node,
        this.options.nodeTimeoutMs,
        this.channelAll,
        gone,
      );
      if (reaped !== 1) return;
      this.events.reaped(node);
      const wills = await this.command.hvalsBuffer(reaping);
      if (wills.length > 0) this.events.orphanWills(node, wills);
      await this.command.del(reaping);
    } catch (err) {
      this.events.error(err as Error, `reap ${node}`);
    }
  }

  private watchConnection(): void {
    const down = (): void => {
      if (!this.up || this.closing) return;
      this.up = false;
      this.events.connection(false);
    };
    // Both connections must be back before the node counts as connected again.
    const ready = (): void => {
      if (this.up || this.closing) return;
      if (this.command.status !== 'ready' || this.subscriber.status !== 'ready') return;
      this.up = true;
      this.events.connection(true);
      // The node may have been reaped while it could not heartbeat; its routes may be gone.
      this.events.reannounce();
    };
    for (const client of [this.command, this.subscriber]) {
      client.on('close', down);
      client.on('end', down);
      client.on('ready', ready);
    }
  }

  private receive(channel: Buffer, bytes: Buffer): void {
    let message: BusMessage;
    try {
      message = decodeBusMessage(bytes);
    } catch (err) {
      this.events.error(err as BusMessageError, `message on ${channel.toString()}`);
      return;
    }
    if (this.held !== null) {
      this.held.push(message);
      return;
    }
    this.apply(message);
  }

  private apply(message: BusMessage): void {
    switch (message.kind) {
      case BusKind.Batch:
        this.events.batch(message.body);
        return;
      case BusKind.Retained:
        if (message.node !== this.nodeId) this.events.retained(message.body);
        return;
      case BusKind.RoutesAdded:
      case BusKind.RoutesRemoved:
      case BusKind.RoutesReplaced:
        if (message.node === this.nodeId) return;
        this.events.routes(
          message.node,
          message.kind === BusKind.RoutesAdded ? 'add' : message.kind === BusKind.RoutesRemoved ? 'remove' : 'replace',
          message.body,
        );
        return;
      case BusKind.SessionSubscribed:
        if (message.node !== this.nodeId) this.events.session('sub', message.body[0], message.body[1], message.body[2]);
        return;
      case BusKind.SessionUnsubscribed:
        if (message.node !== this.nodeId) this.events.session('unsub', message.body[0], message.body[1], 0);
        return;
      case BusKind.SessionDeleted:
        if (message.node !== this.nodeId) this.events.session('delete', message.body, '', 0);
        return;
      case BusKind.Release:
        this.events.release(message.body, message.node);
        return;
      case BusKind.Barrier: {
        if (message.node === this.nodeId) return;
        const from = message.node;
        const answer: BusMessage = { kind: BusKind.BarrierAck, node: this.nodeId, body: message.body };
        this.events.barrier(from, () =>
          this.track(this.command.publish(this.channelPrefix + from, this.frame(answer)), 'answer barrier'),
        );
        return;
      }
      case BusKind.BarrierAck: {
        const barrier = this.barriers.get(Number(message.body));
        if (barrier === undefined) return;
        barrier.waiting.delete(message.node);
        if (barrier.waiting.size === 0) {
          this.barriers.delete(Number(message.body));
          barrier.done();
        }
        return;
      }
      case BusKind.Released:
        this.events.released(message.body, message.node);
        return;
      case BusKind.NodeGone:
        if (message.body === this.nodeId) {
          // Another node took this one for dead (a long pause): come back with every route.
          if (message.node !== this.nodeId && !this.closing) this.events.reannounce();
          return;
        }
        this.events.nodeGone(message.body, message.node === this.nodeId);
        return;
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Runs a start-up command again when it fails for a reason that passes: a connection closed
 * while a Redis Cluster client settles its slots, a cluster that says TRYAGAIN or CLUSTERDOWN
 * for a moment, a Sentinel handing over. Anything else, or the same after a few tries, fails.
 */
export async function retryTransient<T>(command: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await command();
    } catch (err) {
      const message = (err as Error).message ?? '';
      const transient = /Connection is closed|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY/.test(message);
      if (!transient || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}
