import { Connection, type Transport } from '@tern/listener';
import type { QoS } from '@tern/protocol';
import { parseSharedFilter, RetainedIndex, type ShareGroup, ShareGroups, SubscriptionIndex } from '@tern/router';
import {
  hasFlag,
  type Message,
  NO_LOCAL,
  optionsQos,
  type QueuedDelivery,
  RETAIN_AS_PUBLISHED,
  Session,
  type SessionLimits,
  type SnapshotContents,
} from '@tern/session';
import { Access, type AccessReloadResult, logAccessPolicy, logAccessReload } from './access/access.js';
import { ClientAcl } from './access/acl.js';
import { Client } from './client.js';
import type { ClusterLink, SessionJournal } from './cluster-link.js';
import type { BrokerConfig, LogLevel } from './config.js';
import { deliver, drain } from './delivery.js';
import type { HeapTrim } from './heap-trim.js';
import { type ListenerKind, ListenerSet, logListening } from './listeners.js';
import type { Logger } from './logger.js';
import { NodeLimitState } from './node-limits.js';
import { BrokerStats } from './stats.js';
import { SysPublisher } from './sys-topics.js';
import { logTlsReload, readTlsMaterial, reloadTlsMaterial, type TlsReloadResult, tlsWanted } from './tls-files.js';
import { WillPublisher } from './will-publisher.js';

/**
 * What the subscription index holds per (filter, client): the session and the subscription's
 * options, packed (granted QoS, no local, retain as published: subscription-options.ts).
 */
interface Subscriber {
  session: Session;
  options: number;
}

/** A clock read once per sweep instead of once per packet. */
export interface CoarseClock {
  now: number;
}

/**
 * Settings a SIGHUP reload can change while clients are connected. The listener address, the
 * HTTP endpoint, persistence and the node name are fixed for the life of the process.
 */
const RELOADABLE: ReadonlySet<keyof BrokerConfig> = new Set<keyof BrokerConfig>([
  'logLevel',
  'maxInflight',
  'maxQueued',
  'queueOverflow',
  'maxPacketSize',
  'maxConnections',
  'connectTimeoutMs',
  'maxSocketBuffer',
  'sysInterval',
  'passwordFile',
  'allowAnonymous',
  'aclFile',
  // The certificate files are read again on every reload; new paths are taken too.
  'tlsCert',
  'tlsKey',
  'tlsCa',
  'maxSubscriptions',
  'maxTopicLength',
  'maxTopicLevels',
  'maxPublishRate',
  'memoryHighWaterMark',
  'authPluginTimeoutMs',
  // MQTT 5 limits announced in CONNACK: new connections get the new values.
  'receiveMaximum',
  'topicAliasMaximum',
  'maxKeepalive',
  'maxSessionExpiry',
  'serverReference',
  'serverMoved',
  'responseInformation',
]);

export interface ConfigDiff {
  /** Keys whose new value takes effect now. */
  applied: (keyof BrokerConfig)[];
  /** Keys whose new value waits for a restart. */
  restartNeeded: (keyof BrokerConfig)[];
}

/** What a reload from `current` to `next` changes, live or at the next restart. */
export function diffConfig(current: BrokerConfig, next: BrokerConfig): ConfigDiff {
  const applied: (keyof BrokerConfig)[] = [];
  const restartNeeded: (keyof BrokerConfig)[] = [];
  for (const key of Object.keys(next) as (keyof BrokerConfig)[]) {
    if (next[key] === current[key]) continue;
    (RELOADABLE.has(key) ? applied : restartNeeded).push(key);
  }
  return { applied, restartNeeded };
}

/** How often keepalive and connect timeouts are checked, in ms. */
const SWEEP_INTERVAL_MS = 500;
/** How long a deleted retained topic is remembered, so an older copy arriving late is ignored. */
const TOMBSTONE_MS = 60_000;

export interface BrokerOptions {
  /** The other members of the node; null for a broker that is alone (tests, embedding). */
  link?: ClusterLink | null;
  /** Whether this broker publishes $SYS itself (a routing worker leaves it to the supervisor). @default true */
  sys?: boolean;
  /**
   * The node's shared limit state (a routing worker gets the supervisor's, which also checks
   * the memory mark). @default a private one, whose memory mark this broker checks itself
   */
  nodeLimits?: NodeLimitState;
  /** Collects garbage once a storm of connections settles (heap-trim.ts). @default none */
  heapTrim?: HeapTrim | null;
}

/**
 * One broker node with one routing worker: owns the listener, the client table, sessions,
 * the subscription and retained indexes, and the publish path.
 */
export class Broker {
  readonly config: BrokerConfig;
  readonly log: Logger;
  readonly stats = new BrokerStats();
  readonly clock: CoarseClock = { now: Date.now() };
  /** Live, CONNECTed clients by client id: at most one per id [MQTT-3.1.4-2]. */
  readonly clients = new Map<string, Client>();
  /** Every session, online or not, by client id. */
  readonly sessions = new Map<string, Session>();
  /** Every open socket, CONNECTed or not (for timeouts and shutdown). */
  readonly connections = new Set<Client>();
  /** Offline sessions with a finite MQTT 5 expiry interval: the sweep ends them on time. */
  readonly expiring = new Set<Session>();
  /** Wills fired now or, with an MQTT 5 will delay, when it runs out. */
  readonly wills: WillPublisher;
  readonly subscriptions = new SubscriptionIndex<Subscriber>();
  /** Shared subscription groups (`$share/...`) of this member's sessions: one gets each message. */
  readonly shared = new ShareGroups<Subscriber>();
  readonly retained = new RetainedIndex<Message>();
  readonly link: ClusterLink | null;
  /** Where persistent-session changes are recorded (a node of a cluster); null otherwise. */
  readonly journal: SessionJournal | null;
  /**
   * Password file, anonymous rule, ACL and login throttle. Loaded by start() (a routing worker
   * loads it before it listens); a broker restarted after a crash takes over its predecessor's.
   */
  access: Access;
  /** The reload of the access files started by the last applyConfig (tests await it). */
  accessReload: Promise<AccessReloadResult> | null = null;
  /** Set when a routing worker restarted this broker after a crash: late events go to the new one. */
  replacedBy: Broker | null = null;
  /** Memory state and flood-limited log lines, shared by the node's workers. */
  readonly nodeLimits: NodeLimitState;
  /** Whether this broker checks the memory mark (alone), or the supervisor does (workers). */
  private readonly checksMemory: boolean;
  /** The reload of the TLS certificate started by the last applyConfig (a broker alone). */
  tlsReload: Promise<TlsReloadResult> | null = null;
  /** A broker alone owns its listeners; a routing worker's belong to the worker thread. */
  private listeners: ListenerSet | null = null;
  /** Retained topics deleted recently, with the (time, id) of the deletion (last writer wins). */
  private readonly tombstones = new Map<string, { time: number; id: number }>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly heapTrim: HeapTrim | null;
  /** Connections opened plus connections closed, ever: what heapTrim watches. */
  private connectionEvents = 0;
  /** Set while a graceful stop waits for the last connection to close. */
  private onAllClosed: (() => void) | null = null;
  private readonly sys: SysPublisher;
  private readonly sysEnabled: boolean;
  private readonly limits: SessionLimits;
  /** Routing scratch, reused by every publish: no allocation per message. */
  private matchStamp = 0;
  private shareStamp = 0;
  /** The message routeShared is placing (its visitors are made once, not per publish). */
  private shareMessage: Message | null = null;
  private readonly matched: Session[] = [];
  /** The publisher of the message being matched: an MQTT 5 no-local subscription skips it. */
  private matchOrigin = '';
  private readonly collect = (_key: string, sub: Subscriber): void => {
    const s = sub.session;
    const options = sub.options;
    // Options below 64 carry no subscription identifier: the common case is a plain AND.
    const low = options < 64 ? options : options % 64;
    // No local: never sent back to the connection that published it [MQTT-3.8.3-3].
    if ((low & NO_LOCAL) !== 0 && s.clientId === this.matchOrigin) return;
    const qos = (low & 3) as QoS;
    if (s.matchStamp !== this.matchStamp) {
      s.matchStamp = this.matchStamp;
      s.matchQos = qos;
      s.matchRetain = (low & RETAIN_AS_PUBLISHED) !== 0;
      this.matched.push(s);
    } else {
      // Overlapping subscriptions of one client: one copy at the highest QoS [MQTT-3.3.5-1],
      // its RETAIN kept when any of them asks for that [MQTT-3.3.1-12].
      if (qos > s.matchQos) s.matchQos = qos;
      if ((low & RETAIN_AS_PUBLISHED) !== 0) s.matchRetain = true;
    }
  };

  constructor(config: BrokerConfig, log: Logger, options: BrokerOptions = {}) {
    this.config = config;
    this.log = log;
    this.link = options.link ?? null;
    this.journal = this.link?.journal ?? null;
    this.sysEnabled = options.sys !== false;
    this.limits = {
      maxInflight: config.maxInflight,
      maxQueued: config.maxQueued,
      overflowPolicy: config.queueOverflow,
    };
    this.sys = new SysPublisher(this);
    this.wills = new WillPublisher(this);
    this.access = new Access(config);
    this.checksMemory = options.nodeLimits === undefined;
    this.nodeLimits = options.nodeLimits ?? new NodeLimitState();
    this.heapTrim = options.heapTrim ?? null;
  }

  /** True while the node is above memoryHighWaterMark: CONNECTs refused, QoS 0 shed. */
  get memoryHigh(): boolean {
    return this.nodeLimits.memoryHigh;
  }

  /**
   * A socket refused at accept because maxConnections is reached: counted, and logged once
   * for the node, then at most once a minute with the count in between (a flood stays quiet).
   */
  connectionRefused(remote: string | undefined, fields: Record<string, unknown> = {}): void {
    this.stats.connectionsRejected['max-connections']++;
    this.stats.limitsHit['max-connections']++;
    const refused = this.nodeLimits.lineDue('max-connections', Date.now());
    if (refused > 0) {
      this.log.warn(
        { remote, ...fields, limit: this.config.maxConnections, refusedSinceLastLine: refused },
        'connection refused: maxConnections reached',
      );
    }
  }

  /** Limits shared by every session (changed in place by a reload). */
  get sessionLimits(): SessionLimits {
    return this.limits;
  }

  /** The bound TCP port (after start). */
  get port(): number {
    return this.listeners?.port('tcp') ?? this.config.port;
  }

  /** The bound port of every enabled listener (after start). */
  get ports(): Partial<Record<ListenerKind, number>> {
    const out: Partial<Record<ListenerKind, number>> = {};
    for (const { kind, port } of this.listeners?.bound ?? []) out[kind] = port;
    return out;
  }

  /** Opens every enabled listener on config.host and starts serving (a broker that is alone). */
  async start(): Promise<void> {
    logAccessPolicy(this.log, this.config, await this.access.load(this.config));
    const tls = tlsWanted(this.config) ? await readTlsMaterial(this.config) : null;
    this.listeners = await ListenerSet.open({ config: this.config, tls, fds: null, broker: () => this });
    this.startServing();
    logListening(this.log, this.config, this.listeners.bound);
    this.log.info({ host: this.config.host, port: this.port, ports: this.ports }, 'listening for MQTT');
  }

  /** Stops the keepalive and $SYS timers (a broker being replaced after a crash). */
  stopTimers(): void {
    this.sys.stop();
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Every filter some local session subscribes to (what this member announces to the others). */
  localFilters(): Set<string> {
    const filters = new Set<string>();
    for (const session of this.sessions.values())
      for (const filter of session.subscriptions.keys()) filters.add(filter);
    return filters;
  }

  /** Starts the timers; sockets come through accept() (from start()'s listener or a worker's). */
  startServing(): void {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
    if (this.sysEnabled) this.sys.start();
  }

  /**
   * Stops accepting and closes every connection. Each gets `graceMs` to take what was already
   * written to it (its last PUBACKs and deliveries); connections still open then are cut.
   * Persistent sessions stay, offline, with their queues and inflight windows; wills fire as
   * for any server-side close.
   */
  async stop(graceMs = 0): Promise<void> {
    this.sys.stop();
    // Wills waiting out a delay fire now rather than be lost with the process.
    this.wills.fireAllDelayed();
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const closing = this.listeners?.close();
    this.listeners = null;
    if (graceMs > 0 && this.connections.size > 0) {
      const drained = new Promise<void>((resolve) => {
        this.onAllClosed = resolve;
      });
      for (const client of [...this.connections]) client.end('server-shutdown');
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([drained, expired]);
      clearTimeout(timer);
      this.onAllClosed = null;
      if (this.connections.size > 0) {
        this.log.warn(
          { connections: this.connections.size, graceMs },
          'shutdown: cutting connections that did not take their last bytes in time',
        );
      }
    }
    for (const client of [...this.connections]) client.close('server-shutdown');
    await closing;
  }

  /** Takes a new connection from a listener (`kind` counts it under its listener). */
  accept(socket: Transport, kind: ListenerKind = 'tcp'): void {
    this.stats.connectionsAccepted[kind]++;
    const client = new Client(
      this,
      new Connection(socket, { maxPacketSize: this.config.maxPacketSize, counters: this.stats.sent }),
      // The exact time, once per connection: the coarse clock can be most of a sweep old, and
      // a connect timeout counted from it would cut a client whose CONNECT is still in time.
      Date.now(),
    );
    this.connections.add(client);
    this.connectionEvents++;
    if (client.debugEnabled) client.log.debug('connection accepted');
  }

  /**
   * Binds a CONNECTed client to its session. A live connection with the same id is taken
   * over: closed, its will published [MQTT-3.1.4-2]. Returns the session-present flag.
   */
  attach(
    client: Client,
    clientId: string,
    clean: boolean,
    expiryInterval = clean ? 0 : Number.POSITIVE_INFINITY,
  ): boolean {
    const previous = this.clients.get(clientId);
    if (previous !== undefined && previous !== client) {
      this.stats.takeovers++;
      previous.log.info('connection taken over by a new CONNECT with the same client id');
      // Closing runs clientClosed at once: the will fires and a transient session ends.
      previous.close('takeover');
    }
    // A will waiting out its delay: the client is back in time, so it never fires
    // [MQTT-3.1.3-9]; unless this is a clean start, which ends the session and fires it now.
    this.wills.settle(clientId, clean);
    let session = this.sessions.get(clientId);
    let present = false;
    if (session !== undefined && clean) {
      // cleanSession=1 discards any previous session [MQTT-3.1.2-6].
      this.endSession(session);
      session = undefined;
    }
    if (session === undefined) {
      session = new Session(clientId, expiryInterval, this.limits);
      this.sessions.set(clientId, session);
    } else {
      present = true;
      // The new connection's expiry interval replaces the old one [MQTT-3.1.2-11..].
      session.expiryInterval = expiryInterval;
    }
    session.expiresAt = Number.POSITIVE_INFINITY;
    // A claim without a clean start opened it in the cluster's store (cluster-sessions.ts).
    // (A clean start with an expiry interval stores a fresh one.)
    if (this.journal !== null && (!clean || expiryInterval > 0)) session.stored = true;
    session.owner = client;
    session.epoch++;
    client.session = session;
    this.clients.set(clientId, client);
    return present;
  }

  /** A connection ended, for whatever reason: will, session detach, bookkeeping. */
  clientClosed(client: Client, error: Error | undefined): void {
    if (!this.connections.delete(client)) return;
    this.connectionEvents++;
    if (this.connections.size === 0) this.onAllClosed?.();
    const wasConnected = client.state === 'connected';
    if (wasConnected) this.stats.clientsConnected--;
    client.state = 'closed';
    const reason = client.closeReason ?? 'socket-closed';
    if (reason !== 'client-disconnect' && wasConnected) {
      client.log.info({ reason, err: error?.message }, `connection closed: ${reason}`);
    }
    const session = client.session;
    if (session === null || session.owner !== client) return;
    if (this.clients.get(client.clientId) === client) this.clients.delete(client.clientId);
    session.owner = null;
    // The next connection resends everything unacknowledged, within its own receive maximum.
    session.resendPending = null;
    // Shared subscription deliveries it had not acknowledged go to another member now.
    const shared = this.shared.size > 0 ? session.takeShared() : null;
    if (shared !== null) this.passOnShared(session, shared);
    const will = session.will;
    session.will = null;
    const journal = this.journal;
    if (journal !== null && !session.isTransient) {
      // QoS 1 deliveries in flight are stored with their packet ids now rather than as each
      // went out (half the store's work while a queue drains): the session resumes, here or on
      // another node, with them resent under those ids and DUP=1 [MQTT-4.4.0-1]. If the node
      // dies first they come again under new ids: still at least once. QoS 2 ids are stored
      // before the PUBLISH leaves (delivery.ts), since exactly once depends on them.
      for (const entry of session.inflight.values()) {
        if (entry.qos === 1) journal.sent(client.clientId, entry.message.id, entry.id);
      }
      // Expiry is cluster-wide: the store ends the session on time should this node be gone.
      // Not for a takeover: the new connection's claim has already opened the session again.
      if (Number.isFinite(session.expiryInterval) && reason !== 'takeover') {
        journal.offline(client.clientId, Date.now() + session.expiryInterval * 1000);
      }
    }
    // The will fires on every end but DISCONNECT [MQTT-3.1.2-8] [MQTT-3.1.2-10] (an MQTT 5
    // DISCONNECT 0x04 asks for it all the same).
    const delayed = will !== null && reason !== 'client-disconnect' && this.wills.fire(client, session, will);
    // The cluster no longer needs this connection's will should its node die, unless it waits
    // out a delay here (WillPublisher lets go of it when it fires or is dropped).
    if (will !== null && !delayed) this.journal?.will(client.clientId, null);
    if (session.isTransient) {
      // MQTT 5 expiry 0 without a clean start: a stored session was resumed, and ends now.
      if (session.stored) this.journal?.ended(session.clientId);
      this.endSession(session);
      this.link?.sessionGone(session.clientId);
    } else if (Number.isFinite(session.expiryInterval)) {
      // MQTT 5: the session ends this long after its connection unless a client resumes it.
      session.expiresAt = Date.now() + session.expiryInterval * 1000;
      this.expiring.add(session);
    }
  }

  /** An offline session whose expiry interval ran out: it ends, with its delayed will. */
  private expireSession(session: Session): void {
    this.expiring.delete(session);
    this.wills.settle(session.clientId, true);
    this.log.debug({ clientId: session.clientId }, 'session expired');
    if (session.stored) this.journal?.ended(session.clientId);
    this.endSession(session);
    this.link?.sessionGone(session.clientId);
  }

  /** Removes a session and everything it holds. */
  endSession(session: Session): void {
    this.expiring.delete(session);
    for (const filter of session.subscriptions.keys()) this.removeSubscription(filter, session.clientId);
    session.reset();
    session.handover = null;
    session.movedTo = -1;
    session.stubbed = null;
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /**
   * The publish path: store or delete the retained copy, then deliver once to every session
   * with a matching subscription at min(publish QoS, best granted QoS).
   */
  publish(message: Message): void {
    const link = this.link;
    if (link !== null) {
      message.id = link.nextMessageId();
      // Only retained copies need a time: the latest one wins on every member.
      if (message.retain) message.time = Date.now();
    }
    if (message.retain) this.storeRetained(message);
    this.deliverLocal(message);
    link?.forward(message);
    if (this.shared.size > 0 || link?.hasSharedRoutes === true) this.routeShared(message);
  }

  /**
   * Shared subscriptions: each matching group gets the message once, at one member of the
   * group, in turn: this member's sessions or another member's (which then picks one of its
   * own), never both (MQTT 5 section 4.8.2).
   */
  private routeShared(message: Message): void {
    const link = this.link;
    this.shareStamp = (this.shareStamp + 1) | 0;
    this.shareMessage = message;
    if (link?.hasSharedRoutes === true) link.matchShared(message.topic, this.routedGroup);
    this.shared.match(message.topic, this.localGroup);
    this.shareMessage = null;
  }

  /** routeShared for a group other members have: this member takes its turn after them. */
  private readonly routedGroup = (routed: ShareGroup<number>): void => {
    const message = this.shareMessage as Message;
    const local = this.shared.get(routed.key);
    if (local !== undefined) local.stamp = this.shareStamp;
    const n = routed.members.length + (local === undefined ? 0 : 1);
    const at = routed.cursor % n;
    routed.cursor = (at + 1) % n;
    if (at < routed.members.length)
      (this.link as ClusterLink).forwardToGroup(routed.members[at] as number, routed.key, message);
    else this.deliverToGroup(local as ShareGroup<Subscriber>, message);
  };

  /** routeShared for a group only this member has (one the other members have was handled above). */
  private readonly localGroup = (group: ShareGroup<Subscriber>): void => {
    if (group.stamp !== this.shareStamp) this.deliverToGroup(group, this.shareMessage as Message);
  };

  /**
   * Delivers to one member of a local shared subscription group: the next online session in
   * turn, or an offline persistent one (queued for it) when none is online. Returns false
   * when nobody here could take it.
   */
  deliverToGroup(group: ShareGroup<Subscriber>, message: Message, except: Session | null = null): boolean {
    const pick =
      group.next((s) => s.session !== except && s.session.owner !== null && s.session.movedTo < 0) ??
      group.next((s) => s.session !== except && !s.session.isTransient && s.session.movedTo < 0);
    if (pick === undefined) return false;
    const options = pick.options;
    const qos = Math.min(optionsQos(options), message.qos) as QoS;
    const retain = message.retain && hasFlag(options, RETAIN_AS_PUBLISHED);
    deliver(this, pick.session, message, qos, retain, group.key);
    return true;
  }

  /** A message another member sent for one of this member's shared subscription groups. */
  acceptForGroup(key: string, message: Message): void {
    const group = this.shared.get(key);
    if (group === undefined || !this.deliverToGroup(group, message)) this.stats.droppedNoShareMember++;
  }

  /**
   * What a closed connection's session had from shared subscriptions and was not acknowledged
   * goes to another member of each group (MQTT 5 section 4.8.2).
   */
  private passOnShared(session: Session, taken: QueuedDelivery[]): void {
    for (const item of taken) {
      const key = item.share as string;
      const local = this.shared.get(key);
      // Another session here, or else another member that has the group; with nobody else,
      // it stays with this session (queued for its return, if it has one).
      const passed =
        (local !== undefined && this.deliverToGroup(local, item.message, session)) ||
        this.forwardToGroupElsewhere(key, item.message);
      if (!passed) {
        session.queue.restore(item);
        continue;
      }
      // It is another member's to deliver now: the store stops owing it to this session.
      if (!session.isTransient) this.journal?.completed(session.clientId, item.message.id);
    }
  }

  /** Sends `message` to the next other member that has group `key`; false when none has. */
  private forwardToGroupElsewhere(key: string, message: Message): boolean {
    const link = this.link;
    const member = link?.sharedGroup(key)?.next();
    if (link === null || member === undefined) return false;
    link.forwardToGroup(member, key, message);
    return true;
  }

  /**
   * A publish another member received: kept if retained and newer than the copy here, then
   * delivered to this member's subscribers only.
   */
  acceptForwarded(message: Message): void {
    // An older retained copy that arrives after a newer one is not stored, but it is still an
    // application message for the subscribers.
    if (message.retain && this.isLatestRetained(message)) this.storeRetained(message);
    this.deliverLocal(message);
  }

  private storeRetained(message: Message): void {
    if (message.payload.length === 0) {
      // An empty retained message deletes the topic's retained message [MQTT-3.3.1-10] and
      // is not itself stored [MQTT-3.3.1-11]; it is still delivered normally.
      this.retained.delete(message.topic);
      if (this.link !== null) this.tombstones.set(message.topic, { time: message.time, id: message.id });
    } else {
      message.ownPayload();
      this.retained.set(message.topic, message);
      if (this.tombstones.size > 0) this.tombstones.delete(message.topic);
    }
  }

  /** Last writer wins: (time, id) orders the retained writes of every member the same way. */
  private isLatestRetained(message: Message): boolean {
    const current = this.retained.get(message.topic) ?? this.tombstones.get(message.topic);
    if (current === undefined) return true;
    return message.time > current.time || (message.time === current.time && message.id > current.id);
  }

  /** Delivers once to every local session with a matching subscription. */
  private deliverLocal(message: Message): void {
    this.matchStamp = (this.matchStamp + 1) | 0;
    const matched = this.matched;
    this.matchOrigin = message.origin;
    this.subscriptions.match(message.topic, this.collect);
    const publishQos = message.qos;
    const retained = message.retain;
    for (let i = 0; i < matched.length; i++) {
      const session = matched[i] as Session;
      const qos = Math.min(session.matchQos, publishQos) as QoS;
      // Forwarded to an existing subscription, RETAIN is cleared [MQTT-3.3.1-9], unless an
      // MQTT 5 subscription asked for it as published [MQTT-3.3.1-12].
      deliver(this, session, message, qos, retained && session.matchRetain);
    }
    matched.length = 0;
  }

  /**
   * Takes in sessions and retained messages saved by an earlier run (before start): the
   * sessions are offline until their clients reconnect, with subscriptions live at once.
   */
  restore(contents: SnapshotContents): void {
    for (const session of contents.sessions) this.adoptSession(session);
    for (const message of contents.retained) this.retained.set(message.topic, message);
  }

  /** Takes in an offline session (restored or moved here) with its subscriptions live at once. */
  adoptSession(session: Session): void {
    session.limits = this.limits;
    session.queue.limit = this.limits.maxQueued;
    this.sessions.set(session.clientId, session);
    if (Number.isFinite(session.expiresAt)) this.expiring.add(session);
    for (const [filter, options] of session.subscriptions) this.subscribe(session, filter, options);
  }

  /** What a snapshot must hold now: sessions that outlive their connection, and retained messages. */
  snapshotContents(): SnapshotContents {
    const retained: Message[] = [];
    for (const [topic, message] of this.retained) {
      // $SYS figures describe this run; they are published afresh after a restart.
      if (!topic.startsWith('$SYS/')) retained.push(message);
    }
    // A stub's session lives on another member now.
    const sessions = [...this.sessions.values()].filter((s) => s.movedTo < 0);
    return { sessions, retained };
  }

  /**
   * Applies a reloaded configuration where that is safe while running, and returns the keys
   * that changed and took effect and those that need a restart.
   */
  applyConfig(next: BrokerConfig): ConfigDiff {
    const { applied, restartNeeded } = diffConfig(this.config, next);
    const config = this.config as unknown as Record<string, unknown>;
    for (const key of applied) config[key] = next[key];
    // The password and ACL files are read again on every reload, changed paths or not.
    this.accessReload = this.reloadAccess();
    // So are the certificate files, by a broker alone (a routing worker is handed them).
    if (this.listeners !== null && tlsWanted(this.config)) this.tlsReload = this.reloadTls(this.listeners);
    if (applied.length === 0) return { applied, restartNeeded };
    // Sessions share the broker's limits object, so the window and policy change for all.
    this.limits.maxInflight = this.config.maxInflight;
    this.limits.maxQueued = this.config.maxQueued;
    this.limits.overflowPolicy = this.config.queueOverflow;
    for (const session of this.sessions.values()) session.queue.limit = this.config.maxQueued;
    if (this.listeners !== null) {
      this.listeners.maxConnections = this.config.maxConnections;
      this.listeners.setMaxPacketSize(this.config.maxPacketSize);
    }
    if (this.checksMemory && applied.includes('memoryHighWaterMark')) {
      this.nodeLimits.checkMemory(this.config.memoryHighWaterMark, this.log);
    }
    if (applied.includes('logLevel')) this.setLogLevel(this.config.logLevel);
    if (applied.includes('sysInterval') && this.sysEnabled) {
      this.sys.stop();
      this.sys.start();
    }
    // A larger window lets online sessions send more of their queue now.
    for (const session of this.sessions.values()) if (session.owner !== null) drain(this, session);
    return { applied, restartNeeded };
  }

  /**
   * Reads the password and ACL files again. Connections stay; the new ACL applies from now on
   * to what every client publishes, subscribes and is delivered (its rules are compiled
   * again); subscriptions already granted stay, their deliveries checked against the new
   * rules. A bad file changes nothing. A broker alone
   * logs the outcome at info; a routing worker at debug (the supervisor logs it for the node).
   */
  async reloadAccess(): Promise<AccessReloadResult> {
    const result = await this.access.reload(this.config);
    const rules = this.access.acl;
    if (result.ok) {
      for (const client of this.connections) {
        if (client.state === 'connected' || client.state === 'connecting') {
          client.acl = rules === null ? null : rules.compile(client.username, client.clientId);
        }
      }
      // Deliveries follow the new rules too, offline sessions' included.
      for (const session of this.sessions.values()) {
        const owner = session.owner as Client | null;
        const old = session.readFilter;
        if (owner !== null) session.readFilter = owner.acl;
        else if (old instanceof ClientAcl)
          session.readFilter = rules === null ? null : rules.compile(old.user, old.clientId);
      }
    }
    logAccessReload(this.log, result, this.link === null ? 'info' : 'debug');
    return result;
  }

  /** Reads the certificate files again and gives new TLS connections the new certificate. */
  private async reloadTls(listeners: ListenerSet): Promise<TlsReloadResult> {
    const result = await reloadTlsMaterial(this.config);
    if (result.ok) listeners.setSecureContext(result.material);
    logTlsReload(this.log, result);
    return result;
  }

  /** Changes the log level of the broker and of every connection's logger, now. */
  setLogLevel(level: LogLevel): void {
    this.config.logLevel = level;
    this.log.level = level;
    for (const client of this.connections) client.setLogLevel(level);
  }

  /**
   * Adds or replaces a subscription. Returns true when the filter is new to this member: the
   * other members are told, and a SUBACK should wait until they know (link.barrier()).
   */
  subscribe(session: Session, filter: string, options: number): boolean {
    session.setSubscription(filter, options);
    const shared = parseSharedFilter(filter);
    if (shared !== null) {
      // Checked by the SUBSCRIBE handler; a malformed one from a store is ignored.
      if (shared === 'invalid') return false;
      const first = this.shared.add(filter, shared, session.clientId, { session, options });
      if (first) this.link?.filterAdded(filter);
      return first && this.link !== null;
    }
    const first = this.subscriptions.count(filter) === 0;
    this.subscriptions.add(filter, session.clientId, { session, options });
    if (first) this.link?.filterAdded(filter);
    return first && this.link !== null;
  }

  unsubscribe(session: Session, filter: string): void {
    if (session.deleteSubscription(filter)) this.removeSubscription(filter, session.clientId);
  }

  private removeSubscription(filter: string, clientId: string): void {
    if (filter.startsWith('$share/')) {
      if (this.shared.remove(filter, clientId)) this.link?.filterRemoved(filter);
      return;
    }
    if (this.subscriptions.remove(filter, clientId) && this.subscriptions.count(filter) === 0) {
      this.link?.filterRemoved(filter);
    }
  }

  /** Retained messages matching a new subscription, sent with RETAIN=1 [MQTT-3.3.1-8]. */
  sendRetained(session: Session, filter: string, granted: QoS): void {
    let expired: string[] | null = null;
    this.retained.match(filter, (topic, message) => {
      // MQTT 5: a retained message whose expiry interval has passed is gone [MQTT-3.3.2-5].
      if (message.expiryInterval !== 0 && message.expired(Date.now())) {
        expired ??= [];
        expired.push(topic);
        return;
      }
      deliver(this, session, message, message.qos < granted ? message.qos : granted, true);
    });
    if (expired !== null) for (const topic of expired as string[]) this.retained.delete(topic);
  }

  /** Runs the heap trim's check (heap-trim.ts); a collection it runs is logged at debug. */
  private trimHeap(now: number): void {
    const started = performance.now();
    const events = (this.heapTrim as HeapTrim).observe(this.connectionEvents, now);
    if (events > 0 && this.log.isLevelEnabled('debug')) {
      const ms = Math.round(performance.now() - started);
      this.log.debug({ connectionEvents: events, ms }, 'heap collected after a storm of connections');
    }
  }

  /** Keepalive (1.5 x the client's interval [MQTT-3.1.2-24]) and connect timeouts. */
  private sweep(): void {
    const now = Date.now();
    this.clock.now = now;
    for (const [topic, tombstone] of this.tombstones) {
      if (now - tombstone.time > TOMBSTONE_MS) this.tombstones.delete(topic);
    }
    for (const session of this.expiring) {
      if (session.owner !== null) this.expiring.delete(session);
      else if (now >= session.expiresAt) this.expireSession(session);
    }
    if (this.checksMemory) this.nodeLimits.checkMemory(this.config.memoryHighWaterMark, this.log);
    if (this.heapTrim !== null) this.trimHeap(now);
    const connectDeadline = now - this.config.connectTimeoutMs;
    for (const client of this.connections) {
      if (client.state === 'new' || client.state === 'connecting') {
        if (client.acceptedAt < connectDeadline) {
          this.stats.limitsHit['connect-timeout']++;
          // Slowloris floods close thousands of these: one line for the node, then one a minute.
          const closed = this.nodeLimits.lineDue('connect-timeout', now);
          if (closed > 0) {
            client.log.info(
              { timeoutMs: this.config.connectTimeoutMs, closedSinceLastLine: closed },
              'closing connection: no CONNECT in time',
            );
          }
          client.close('connect-timeout');
        }
      } else if (client.keepaliveMs > 0 && now - client.lastSeen > client.keepaliveMs * 1.5 + SWEEP_INTERVAL_MS) {
        // lastSeen comes from the coarse clock, up to one sweep older than the packet: allow
        // for it, or a client whose packets arrive within 1.5 x keepalive could be cut early.
        this.stats.keepaliveTimeouts++;
        client.close('keepalive-timeout');
      }
    }
  }
}
