/**
 * Persistent sessions in Redis: what lets a client that was on one node resume on another,
 * and lets a session outlive the node that held it (SIGKILL included).
 *
 *   {p}:s:<client id>     hash: expiry (seconds, or "inf"); holder (the node serving it, while it
 *                         is online with a finite expiry)
 *   {p}:held:<node>       sorted set: client id, scored by its expiry interval (seconds), of every
 *                         session that node serves online with a finite expiry (what orphaned()
 *                         moves to {p}:expiring when the node is gone)
 *   {p}:sub:<client id>   hash: filter -> subscription options (an integer, kept as given)
 *   {p}:psubs             hash: "<client id>\0<filter>" -> options, every session's subscriptions
 *                         (read once by a node at start: which sessions a message is queued for)
 *   {p}:expiring          sorted set: client id, scored by its deadline (ms since the epoch), of
 *                         every offline session that expires; online sessions are not in it
 *   {p}:q:<client id>     list: message ids of the session's deliveries, in order
 *   {p}:d:<client id>     hash: message id -> "qos,packetId,released"
 *   {p}:in2:<client id>   set: incoming QoS 2 packet ids awaiting PUBREL
 *   {p}:m:<message id>    string: the message (message-codec.ts), stored once for every queue
 *                         holding it
 *   {p}:rc                hash: message id -> how many deliveries refer to it
 *
 * Every key carries the {p} hash tag, so the scripts stay on one slot of a Redis Cluster. A script
 * that reaches keys it cannot name up front (APPLY, EXPIRE: the sessions it meets) builds them
 * from the prefix; with the tag in it they hash to the slot of the keys the call names, so the
 * node that runs the script holds them (Redis lets a script without flags touch undeclared keys).
 * Writes go out pipelined, without waiting; `flushed()` waits for the last one (a connection
 * answers in order). The check-and-set steps (queue bound, reference counts) are Lua scripts,
 * atomic in Redis [DESIGN.md: Lua where a check-and-set must be atomic].
 */
import type { QoS } from '@tern/protocol';
import type { Cluster, Redis } from 'ioredis';
import { decodeStoredMessage, encodeStoredMessage } from './message-codec.js';
import {
  decodeSession,
  type EncodedDelivery,
  type EncodedSession,
  EXPIRE_BATCH,
  type SessionStore,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  StoreError,
  type StoreLimits,
} from './session-store.js';

/** How long completions may wait to be written together (see RedisSessionStore.mark). */
const COMPLETIONS_WAIT_MS = 5;

/** Drops a message's reference; the message goes with its last one. */
const RELEASE_FN = `
local function release(rc, prefix, id)
  local left = redis.call('HINCRBY', rc, id, -1)
  if left <= 0 then
    redis.call('HDEL', rc, id)
    redis.call('DEL', prefix .. ':m:' .. id)
  end
end`;

/** Forgets the node serving a session (s: its session key), if one is recorded. */
const UNHOLD_FN = `
local function unhold(s, prefix, client)
  local holder = redis.call('HGET', s, 'holder')
  if holder then
    redis.call('ZREM', prefix .. ':held:' .. holder, client)
    redis.call('HDEL', s, 'holder')
  end
end`;

/**
 * Removes a whole session, its references, its deadline and its holder. k: s sub q d in2 rc
 * psubs expiring; ARGV: prefix client.
 */
const DELETE_FN = `${UNHOLD_FN}
local function delete_session(k, prefix, client)
  unhold(k[1], prefix, client)
  for _, id in ipairs(redis.call('LRANGE', k[3], 0, -1)) do release(k[6], prefix, id) end
  for _, filter in ipairs(redis.call('HKEYS', k[2])) do redis.call('HDEL', k[7], client .. '\\0' .. filter) end
  redis.call('DEL', k[1], k[2], k[3], k[4], k[5])
  redis.call('ZREM', k[8], client)
end`;

/**
 * KEYS: s sub q d in2 rc psubs expiring; ARGV: prefix client expiry clean(0/1) holder ('' for
 * none). Returns 1 if a session was resumed. The session is online again: its deadline goes,
 * and with a finite expiry its holder is recorded (replacing any earlier one). A deadline
 * already passed (by the Redis server's clock, the same for every node) makes it a session
 * that is gone, deleted here even if no expire() has reached it; so does expiry 0 with another
 * holder that did not let go (its connection ended by now). TIME before a write is allowed
 * since Redis 5 replicates a script's effects, not the script.
 */
const OPEN = `${RELEASE_FN}${DELETE_FN}
local existed = redis.call('EXISTS', KEYS[1]) == 1
local clean = ARGV[4] == '1'
local deadline = redis.call('ZSCORE', KEYS[8], ARGV[2])
if deadline then
  local now = redis.call('TIME')
  if tonumber(deadline) <= tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) then clean = true end
  redis.call('ZREM', KEYS[8], ARGV[2])
end
if existed then
  local holder = redis.call('HGET', KEYS[1], 'holder')
  if holder and holder ~= ARGV[5] and redis.call('HGET', KEYS[1], 'expiry') == '0' then clean = true end
end
if existed and clean then delete_session(KEYS, ARGV[1], ARGV[2]); existed = false end
if existed then unhold(KEYS[1], ARGV[1], ARGV[2]) end
redis.call('HSET', KEYS[1], 'expiry', ARGV[3])
if ARGV[5] ~= '' and ARGV[3] ~= 'inf' then
  redis.call('HSET', KEYS[1], 'holder', ARGV[5])
  redis.call('ZADD', ARGV[1] .. ':held:' .. ARGV[5], ARGV[3], ARGV[2])
end
if existed then return 1 end
return 0`;

/** KEYS: s sub q d in2 rc psubs expiring; ARGV: prefix client. */
const DELETE = `${RELEASE_FN}${DELETE_FN}
delete_session(KEYS, ARGV[1], ARGV[2])
return 1`;

/**
 * KEYS: s expiring; ARGV: client, deadline (ms since the epoch, or 'inf': never), prefix. Sets
 * the deadline of a session that exists (no entry is left for one that does not); it has no
 * holder any more.
 */
const OFFLINE = `${UNHOLD_FN}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
unhold(KEYS[1], ARGV[3], ARGV[1])
if ARGV[2] == 'inf' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) end
return 1`;

/**
 * KEYS: expiring rc psubs; ARGV: prefix, now (ms since the epoch), max. Deletes up to `max`
 * sessions whose deadline is at or before now, earliest first, each as DELETE does (so their
 * messages' references drop), and returns their client ids. One script runs alone in Redis: two
 * nodes expiring at once each get a different part, never the same client id.
 */
const EXPIRE = `${RELEASE_FN}${DELETE_FN}
local prefix = ARGV[1]
local gone = {}
for _, client in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local s = prefix .. ':s:' .. client
  if redis.call('EXISTS', s) == 1 then gone[#gone + 1] = client end
  delete_session({s, prefix .. ':sub:' .. client, prefix .. ':q:' .. client, prefix .. ':d:' .. client,
    prefix .. ':in2:' .. client, KEYS[2], KEYS[3], KEYS[1]}, prefix, client)
end
return gone`;

/**
 * KEYS: held (of the node that is gone), expiring; ARGV: prefix, node, since (ms since the
 * epoch; '' for the Redis server's time now), max. Takes up to `max` sessions out of the node's
 * held set; each one the node still holds goes offline as of `since`: its deadline is since +
 * its expiry interval. Returns {taken, moved}: the caller goes on while taken = max.
 */
const ORPHANED = `
local prefix, node = ARGV[1], ARGV[2]
local since = tonumber(ARGV[3])
if not since then
  local t = redis.call('TIME')
  since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local taken = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
local moved = 0
for _, client in ipairs(taken) do
  redis.call('ZREM', KEYS[1], client)
  local s = prefix .. ':s:' .. client
  if redis.call('HGET', s, 'holder') == node then
    redis.call('HDEL', s, 'holder')
    local expiry = redis.call('HGET', s, 'expiry')
    if expiry and expiry ~= 'inf' then
      redis.call('ZADD', KEYS[2], string.format('%.0f', since + tonumber(expiry) * 1000), client)
      moved = moved + 1
    end
  end
end
return {#taken, moved}`;

/**
 * KEYS: rc, message key, then (s, q, d) per target. ARGV: prefix, id, body, max, policy,
 * scan (how far from the head an unsent delivery may be), then one QoS per target.
 * Queues the message for each target that has a session; at the bound, drop-oldest drops the
 * oldest delivery not yet sent, drop-new skips this one. Returns the deliveries queued.
 */
const ENQUEUE = `${RELEASE_FN}
local prefix, id, max, dropNew, scan = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5] == 'drop-new', tonumber(ARGV[6])
local refs = 0
local targets = (#KEYS - 2) / 3
for i = 0, targets - 1 do
  local s, q, d = KEYS[3 + i * 3], KEYS[4 + i * 3], KEYS[5 + i * 3]
  if redis.call('EXISTS', s) == 1 then
    local room = true
    if redis.call('LLEN', q) >= max then
      room = false
      if not dropNew then
        for _, old in ipairs(redis.call('LRANGE', q, 0, scan)) do
          local state = redis.call('HGET', d, old)
          if state and string.match(state, '^%d+,0,') then
            redis.call('LREM', q, 1, old)
            redis.call('HDEL', d, old)
            release(KEYS[1], prefix, old)
            room = true
            break
          end
        end
      end
    end
    if room then
      redis.call('RPUSH', q, id)
      redis.call('HSET', d, id, ARGV[7 + i] .. ',0,0')
      refs = refs + 1
    end
  end
end
if refs > 0 then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[1], id, refs)
end
return refs`;

/**
 * The delivery changes of one turn, in the order they happened, in one call: KEYS[1] = rc
 * (it routes the call to the slot of the hash tag), ARGV: prefix, then groups of four:
 * 's' client id packetId (sent) | 'r' client id '' (PUBREC) | 'c' client id '' (complete).
 * A change to a delivery that is not there changes nothing.
 */
const APPLY = `${RELEASE_FN}
local prefix = ARGV[1]
for i = 2, #ARGV, 4 do
  local op, client, id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local d = prefix .. ':d:' .. client
  if op == 'c' then
    if redis.call('HDEL', d, id) == 1 then
      redis.call('LREM', prefix .. ':q:' .. client, 1, id)
      release(KEYS[1], prefix, id)
    end
  else
    local state = redis.call('HGET', d, id)
    if state then
      local qos, pid, rel = string.match(state, '^(%d+),(%d+),(%d+)$')
      if op == 's' then pid = ARGV[i + 3] else rel = '1' end
      redis.call('HSET', d, id, qos .. ',' .. pid .. ',' .. rel)
    end
  end
end
return 1`;

/**
 * A whole session in one call (a resume: the claim waits for it): KEYS s sub q d in2; ARGV
 * prefix, the index of the last delivery wanted (-1: all), and the id of a delivery already
 * read ('' for none): only the deliveries after it are returned (all of them if it is no longer
 * queued). Returns {} when there is no session, else a flat array: expiry, the number of
 * subscription pairs then filter, qos..., the number of QoS 2 ids then the ids, then per
 * delivery in order: id, state, message.
 */
const LOAD = `
local expiry = redis.call('HGET', KEYS[1], 'expiry')
if not expiry then return {} end
local out = {expiry}
local subs = redis.call('HGETALL', KEYS[2])
out[#out + 1] = tostring(#subs)
for _, v in ipairs(subs) do out[#out + 1] = v end
local in2 = redis.call('SMEMBERS', KEYS[5])
out[#out + 1] = tostring(#in2)
for _, v in ipairs(in2) do out[#out + 1] = v end
local ids = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[2]))
local from = 1
if ARGV[3] ~= '' then
  for j = 1, #ids do
    if ids[j] == ARGV[3] then
      from = j + 1
      break
    end
  end
end
for j = from, #ids do
  local id = ids[j]
  local state = redis.call('HGET', KEYS[4], id)
  local body = redis.call('GET', ARGV[1] .. ':m:' .. id)
  if state and body then
    out[#out + 1] = id
    out[#out + 1] = state
    out[#out + 1] = body
  end
end
return out`;

interface Scripts {
  ternLoadBuffer(...args: string[]): Promise<Buffer[]>;
  ternOpen(...args: (string | number)[]): Promise<number>;
  ternDelete(...args: (string | number)[]): Promise<number>;
  ternOffline(...args: string[]): Promise<number>;
  ternOrphaned(...args: string[]): Promise<[number, number]>;
  ternExpire(...args: string[]): Promise<string[]>;
  ternEnqueue(...args: (string | number | Buffer)[]): Promise<number>;
  ternApply(...args: string[]): Promise<number>;
}

export interface RedisStoreOptions extends StoreLimits {
  /** Namespace shared with the cluster's other keys (the hash tag). */
  prefix: string;
  /** How many deliveries at the head of a full queue may be in flight (drop-oldest skips them). */
  maxInflight: number;
}

export class RedisSessionStore<Opt extends number = QoS> implements SessionStore<Opt> {
  private readonly redis: Redis | Cluster;
  private readonly scripts: Scripts;
  private readonly options: RedisStoreOptions;
  private readonly tag: string;
  private lastWrite: Promise<unknown> = Promise.resolve();
  /** Delivery changes gathered this turn (see mark()). */
  private marks: string[] = [];
  /** How the gathered marks will be sent: not yet asked, at the end of this turn, or by timer. */
  private marksScheduled: 'no' | 'turn' | 'timer' = 'no';
  private marksTimer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;

  /** Uses `redis` (connected, owned by the caller) for every read and write. */
  constructor(redis: Redis | Cluster, options: RedisStoreOptions) {
    this.redis = redis;
    this.options = options;
    this.tag = `{${options.prefix}}`;
    redis.defineCommand('ternOpen', { numberOfKeys: 8, lua: OPEN });
    redis.defineCommand('ternDelete', { numberOfKeys: 8, lua: DELETE });
    redis.defineCommand('ternOffline', { numberOfKeys: 2, lua: OFFLINE });
    redis.defineCommand('ternOrphaned', { numberOfKeys: 2, lua: ORPHANED });
    redis.defineCommand('ternExpire', { numberOfKeys: 3, lua: EXPIRE });
    redis.defineCommand('ternEnqueue', { lua: ENQUEUE });
    redis.defineCommand('ternApply', { numberOfKeys: 1, lua: APPLY });
    redis.defineCommand('ternLoad', { numberOfKeys: 5, lua: LOAD });
    this.scripts = redis as unknown as Scripts;
  }

  async open(clientId: string, expiryInterval: number, cleanStart: boolean, holder = ''): Promise<boolean> {
    this.flushMarks();
    const expiry = Number.isFinite(expiryInterval) ? String(expiryInterval) : 'inf';
    const resumed = await this.track(
      this.scripts.ternOpen(...this.sessionKeys(clientId), this.tag, clientId, expiry, cleanStart ? '1' : '0', holder),
      'open',
    );
    return resumed === 1;
  }

  offline(clientId: string, expiresAt: number): void {
    this.flushMarks();
    const deadline = Number.isFinite(expiresAt) ? String(expiresAt) : 'inf';
    this.issue(
      this.scripts.ternOffline(this.keys(clientId).s, this.expiringKey, clientId, deadline, this.tag),
      'offline',
    );
  }

  async orphaned(holder: string, since?: number): Promise<number> {
    this.flushMarks();
    const from = since === undefined || !Number.isFinite(since) ? '' : String(Math.floor(since));
    let moved = 0;
    for (;;) {
      const [taken, count] = await this.track(
        this.scripts.ternOrphaned(
          `${this.tag}:held:${holder}`,
          this.expiringKey,
          this.tag,
          holder,
          from,
          String(EXPIRE_BATCH),
        ),
        'orphaned',
      );
      moved += count;
      if (taken < EXPIRE_BATCH) return moved;
    }
  }

  async expire(now: number, max = EXPIRE_BATCH): Promise<string[]> {
    this.flushMarks();
    const limit = Math.floor(max);
    // ZRANGEBYSCORE ... LIMIT 0 -1 would mean every one.
    if (!(limit > 0)) return [];
    return this.track(
      this.scripts.ternExpire(
        this.expiringKey,
        `${this.tag}:rc`,
        `${this.tag}:psubs`,
        this.tag,
        scoreBound(now),
        String(limit),
      ),
      'expire',
    );
  }

  async load(clientId: string, skip?: ReadonlySet<number>): Promise<StoredSession<Opt> | null> {
    return decodeSession(await this.loadEncoded(clientId, skip), decodeStoredMessage);
  }

  async loadEncoded(clientId: string, skip?: ReadonlySet<number>, first?: number): Promise<EncodedSession<Opt> | null> {
    this.flushMarks();
    if (skip === undefined) return this.loadWhole(clientId, first ?? 0, '');
    // Queues only grow at the tail (RPUSH): what follows the last delivery read is what was
    // not read. Read in one script call rather than the whole queue's ids, states and bodies
    // as separate replies (a 10,000-message resume spent ~50 ms of the gateway's time there);
    // the filter keeps the answer exact when that delivery has gone meanwhile.
    let after = '';
    for (const id of skip) after = String(id);
    const whole = await this.loadWhole(clientId, 0, after);
    if (whole !== null) whole.deliveries = whole.deliveries.filter((d) => !skip.has(d.id));
    return whole;
  }

  /** The whole session in one round trip (one script): what a resume waits for. */
  private async loadWhole(clientId: string, first: number, after: string): Promise<EncodedSession<Opt> | null> {
    const k = this.keys(clientId);
    const last = String(first > 0 ? first - 1 : -1);
    const r = await this.track(this.scripts.ternLoadBuffer(k.s, k.sub, k.q, k.d, k.in2, this.tag, last, after), 'load');
    if (r.length === 0) return null;
    const text = (i: number): string => (r[i] as Buffer).toString();
    const expiry = text(0);
    let i = 1;
    const subscriptions: StoredSubscription<Opt>[] = [];
    const subValues = Number(text(i++));
    for (let end = i + subValues; i < end; i += 2) subscriptions.push([text(i), Number(text(i + 1)) as Opt]);
    const in2Count = Number(text(i++));
    const incomingQos2: number[] = [];
    for (let end = i + in2Count; i < end; i++) incomingQos2.push(Number(text(i)));
    const deliveries: EncodedDelivery[] = [];
    for (; i + 2 < r.length; i += 3) {
      const [qos, packetId, released] = text(i + 1)
        .split(',')
        .map(Number) as [number, number, number];
      deliveries.push({
        id: Number(text(i)),
        qos: qos as 1 | 2,
        packetId,
        released: released === 1,
        body: r[i + 2] as Buffer,
      });
    }
    return {
      clientId,
      expiryInterval: expiry === 'inf' ? Number.POSITIVE_INFINITY : Number(expiry),
      subscriptions,
      deliveries,
      incomingQos2: incomingQos2.sort((a, b) => a - b),
    };
  }

  async loadSubscriptions(): Promise<Map<string, StoredSubscription<Opt>[]>> {
    this.flushMarks();
    const out = new Map<string, StoredSubscription<Opt>[]>();
    const all = await this.redis.hgetall(`${this.tag}:psubs`);
    for (const [key, options] of Object.entries(all)) {
      const cut = key.indexOf('\0');
      const clientId = key.slice(0, cut);
      let list = out.get(clientId);
      if (list === undefined) {
        list = [];
        out.set(clientId, list);
      }
      list.push([key.slice(cut + 1), Number(options) as Opt]);
    }
    return out;
  }

  subscribe(clientId: string, filter: string, options: Opt): void {
    this.flushMarks();
    const k = this.keys(clientId);
    // Written as a decimal string: an integer up to 2^53 comes back exact.
    const value = String(options);
    this.issue(
      this.redis.multi().hset(k.sub, filter, value).hset(`${this.tag}:psubs`, `${clientId}\0${filter}`, value).exec(),
      'subscribe',
    );
  }

  unsubscribe(clientId: string, filter: string): void {
    this.flushMarks();
    const k = this.keys(clientId);
    this.issue(
      this.redis.multi().hdel(k.sub, filter).hdel(`${this.tag}:psubs`, `${clientId}\0${filter}`).exec(),
      'unsubscribe',
    );
  }

  enqueue(message: StoredMessage, targets: readonly (readonly [string, 1 | 2])[]): void {
    this.flushMarks();
    if (targets.length === 0) return;
    const keys: string[] = [`${this.tag}:rc`, `${this.tag}:m:${message.id}`];
    const qos: string[] = [];
    for (const [clientId, q] of targets) {
      const k = this.keys(clientId);
      keys.push(k.s, k.q, k.d);
      qos.push(String(q));
    }
    const o = this.options;
    this.issue(
      this.scripts.ternEnqueue(
        keys.length,
        ...keys,
        this.tag,
        String(message.id),
        encodeStoredMessage(message),
        o.maxQueued,
        o.overflowPolicy,
        o.maxInflight,
        ...qos,
      ),
      'enqueue',
    );
  }

  // Sent, PUBREC and completion come by the thousand while a queue drains: gathered per turn
  // into one script call (one command to write instead of thousands).
  sent(clientId: string, id: number, packetId: number): void {
    this.mark('s', clientId, id, String(packetId));
  }

  released(clientId: string, id: number): void {
    this.mark('r', clientId, id, '');
  }

  completed(clientId: string, id: number): void {
    this.mark('c', clientId, id, '');
  }

  private mark(op: string, clientId: string, id: number, packetId: string): void {
    this.marks.push(op, clientId, String(id), packetId);
    if (op === 'c') {
      // A completion only forgets a delivery: should this node die before it is written, the
      // message is sent again (QoS 1 allows it; a QoS 2 one is past PUBREL and gets PUBREL
      // again), never lost. So completions wait a few milliseconds to share one call: a
      // 10,000-message drain makes tens of calls instead of one per acknowledged window.
      // Every other command, flushed() and a release send them first, in order.
      if (this.marksScheduled === 'no') {
        this.marksScheduled = 'timer';
        this.marksTimer = setTimeout(this.flushMarks, COMPLETIONS_WAIT_MS);
      }
      return;
    }
    if (this.marksScheduled === 'turn') return;
    if (this.marksTimer !== null) clearTimeout(this.marksTimer);
    this.marksTimer = null;
    this.marksScheduled = 'turn';
    setImmediate(this.flushMarks);
  }

  /** Sends the gathered changes now: before any other command, so the order stays as issued. */
  private readonly flushMarks = (): void => {
    this.marksScheduled = 'no';
    if (this.marksTimer !== null) clearTimeout(this.marksTimer);
    this.marksTimer = null;
    if (this.marks.length === 0) return;
    const marks = this.marks;
    this.marks = [];
    this.issue(this.scripts.ternApply(`${this.tag}:rc`, this.tag, ...marks), 'delivery changes');
  };

  incomingQos2(clientId: string, packetId: number, pending: boolean): void {
    this.flushMarks();
    const key = this.keys(clientId).in2;
    this.issue(pending ? this.redis.sadd(key, packetId) : this.redis.srem(key, packetId), 'incoming QoS 2');
  }

  delete(clientId: string): void {
    this.flushMarks();
    this.issue(this.scripts.ternDelete(...this.sessionKeys(clientId), this.tag, clientId), 'delete');
  }

  async flushed(): Promise<void> {
    this.flushMarks();
    await this.lastWrite.catch(() => {});
    const failure = this.failure;
    this.failure = null;
    if (failure !== null) throw failure;
  }

  async close(): Promise<void> {
    this.flushMarks();
    await this.lastWrite.catch(() => {});
  }

  /** A write whose caller waits for it (and hears of its failure itself). */
  private track<T>(write: Promise<T>, what: string): Promise<T> {
    const tracked = write.catch((err: Error) => {
      throw new StoreError(`${what}: ${err.message}`, { cause: err });
    });
    this.lastWrite = tracked.catch(() => {});
    return tracked;
  }

  /** A write nobody waits for: its failure is reported by the next flushed(). */
  private issue(write: Promise<unknown>, what: string): void {
    this.lastWrite = write.catch((err: Error) => {
      this.failure ??= new StoreError(`${what}: ${err.message}`, { cause: err });
    });
  }

  private keys(clientId: string) {
    const t = this.tag;
    return {
      s: `${t}:s:${clientId}`,
      sub: `${t}:sub:${clientId}`,
      q: `${t}:q:${clientId}`,
      d: `${t}:d:${clientId}`,
      in2: `${t}:in2:${clientId}`,
    };
  }

  private get expiringKey(): string {
    return `${this.tag}:expiring`;
  }

  /** The keys of OPEN and DELETE, in their order (s sub q d in2 rc psubs expiring). */
  private sessionKeys(clientId: string): string[] {
    const k = this.keys(clientId);
    return [k.s, k.sub, k.q, k.d, k.in2, `${this.tag}:rc`, `${this.tag}:psubs`, this.expiringKey];
  }
}

/** A time as a sorted-set score bound: Redis spells the infinities '+inf' and '-inf'. */
function scoreBound(ms: number): string {
  if (ms === Number.POSITIVE_INFINITY) return '+inf';
  // NaN as well: a time that is no time reaches no deadline.
  if (!Number.isFinite(ms)) return '-inf';
  return String(ms);
}
