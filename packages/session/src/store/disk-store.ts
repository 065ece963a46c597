/**
 * Persistent sessions and retained messages on this machine's disk (`--data-dir`), for a node
 * without Redis: a SQLite database (better-sqlite3) in WAL mode. A transaction that has
 * committed survives the process being killed (SIGKILL included); `synchronous = NORMAL` leaves
 * only a power cut able to take back the last commits.
 *
 * Writes are gathered and committed in one transaction per event-loop turn (setImmediate);
 * `flushed()` resolves after the commit that holds every write issued before it. Reads first
 * commit what is pending, so they see every write issued before them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { QoS } from '@tern/protocol';
import Database from 'better-sqlite3';
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

// sessions.expires_at: the deadline (ms since the epoch) of an offline session that expires;
// NULL while it is online or when it never expires. sessions.holder: the node serving it while
// it is online with a finite expiry (see open()), else NULL. subscriptions.qos holds the subscription's
// options (a 64-bit INTEGER: the packed value passes 32 bits); the name predates them.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  client_id TEXT PRIMARY KEY, expiry REAL NOT NULL, expires_at REAL, holder TEXT);
CREATE TABLE IF NOT EXISTS subscriptions (
  client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, PRIMARY KEY (client_id, filter));
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, message_id INTEGER NOT NULL,
  qos INTEGER NOT NULL, packet_id INTEGER NOT NULL DEFAULT 0, released INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS deliveries_by_client ON deliveries (client_id, message_id);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL, refs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS incoming_qos2 (
  client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY (client_id, packet_id));
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** Brings a database made by an earlier version up to SCHEMA (run after it). */
function migrate(db: Database.Database): void {
  const columns = db.pragma('table_info(sessions)') as { name: string }[];
  if (!columns.some((c) => c.name === 'expires_at')) db.exec('ALTER TABLE sessions ADD COLUMN expires_at REAL');
  if (!columns.some((c) => c.name === 'holder')) db.exec('ALTER TABLE sessions ADD COLUMN holder TEXT');
  // Made here, not in SCHEMA: on an old database the columns exist only after the lines above.
  db.exec('CREATE INDEX IF NOT EXISTS sessions_by_deadline ON sessions (expires_at) WHERE expires_at IS NOT NULL');
  db.exec('CREATE INDEX IF NOT EXISTS sessions_by_holder ON sessions (holder) WHERE holder IS NOT NULL');
}

type Op = () => void;

export class DiskSessionStore<Opt extends number = QoS> implements SessionStore<Opt> {
  private readonly db: Database.Database;
  private readonly limits: StoreLimits;
  private pending: Op[] = [];
  private scheduled = false;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private readonly s: ReturnType<DiskSessionStore['prepare']>;
  private readonly commit: (ops: Op[]) => void;

  /** Opens (creating if needed) `dir`/tern.db. A directory that cannot be used throws StoreError. */
  constructor(dir: string, limits: StoreLimits) {
    this.limits = limits;
    try {
      mkdirSync(dir, { recursive: true });
      this.db = new Database(join(dir, 'tern.db'));
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(SCHEMA);
      migrate(this.db);
    } catch (err) {
      throw new StoreError(`cannot open the data directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    this.s = this.prepare();
    this.commit = this.db.transaction((ops: Op[]) => {
      for (const op of ops) op();
    });
  }

  private prepare() {
    const db = this.db;
    return {
      sessionExists: db.prepare('SELECT expiry FROM sessions WHERE client_id = ?'),
      openState: db.prepare('SELECT expires_at AS deadline, expiry, holder FROM sessions WHERE client_id = ?'),
      // Opening a session puts it online: no deadline, and the holder that opened it.
      upsertSession: db.prepare(
        'INSERT INTO sessions (client_id, expiry, holder) VALUES (?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET expiry = excluded.expiry, expires_at = NULL, holder = excluded.holder',
      ),
      setDeadline: db.prepare('UPDATE sessions SET expires_at = ?, holder = NULL WHERE client_id = ?'),
      orphan: db.prepare(
        'UPDATE sessions SET expires_at = ? + expiry * 1000, holder = NULL WHERE holder = ? AND expiry >= 0',
      ),
      holders: db.prepare('SELECT DISTINCT holder FROM sessions WHERE holder IS NOT NULL'),
      dueSessions: db.prepare(
        'SELECT client_id AS clientId FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
      ),
      deleteSession: db.prepare('DELETE FROM sessions WHERE client_id = ?'),
      subscriptionsOf: db.prepare(
        'SELECT filter, qos AS options FROM subscriptions WHERE client_id = ? ORDER BY rowid',
      ),
      allSubscriptions: db.prepare('SELECT client_id, filter, qos AS options FROM subscriptions ORDER BY rowid'),
      upsertSubscription: db.prepare(
        'INSERT INTO subscriptions (client_id, filter, qos) VALUES (?, ?, ?) ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos',
      ),
      deleteSubscription: db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
      deleteSubscriptions: db.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
      deliveriesOf: db.prepare(
        `SELECT d.message_id AS id, d.qos, d.packet_id AS packetId, d.released, m.body
         FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.client_id = ? ORDER BY d.seq`,
      ),
      countDeliveries: db.prepare('SELECT count(*) AS n FROM deliveries WHERE client_id = ?'),
      oldestUnsent: db.prepare(
        'SELECT seq, message_id AS id FROM deliveries WHERE client_id = ? AND packet_id = 0 ORDER BY seq LIMIT 1',
      ),
      insertDelivery: db.prepare('INSERT INTO deliveries (client_id, message_id, qos) VALUES (?, ?, ?)'),
      deleteDeliveryBySeq: db.prepare('DELETE FROM deliveries WHERE seq = ?'),
      findDelivery: db.prepare(
        'SELECT seq FROM deliveries WHERE client_id = ? AND message_id = ? ORDER BY seq LIMIT 1',
      ),
      markSent: db.prepare('UPDATE deliveries SET packet_id = ? WHERE client_id = ? AND message_id = ?'),
      markReleased: db.prepare('UPDATE deliveries SET released = 1 WHERE client_id = ? AND message_id = ?'),
      deliveryIdsOf: db.prepare('SELECT message_id AS id FROM deliveries WHERE client_id = ?'),
      deleteDeliveries: db.prepare('DELETE FROM deliveries WHERE client_id = ?'),
      insertMessage: db.prepare(
        'INSERT INTO messages (id, body, refs) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET refs = refs + excluded.refs',
      ),
      unref: db.prepare('UPDATE messages SET refs = refs - 1 WHERE id = ?'),
      dropUnreferenced: db.prepare('DELETE FROM messages WHERE id = ? AND refs <= 0'),
      countMessages: db.prepare('SELECT count(*) AS n FROM messages'),
      incomingOf: db.prepare('SELECT packet_id AS id FROM incoming_qos2 WHERE client_id = ? ORDER BY packet_id'),
      addIncoming: db.prepare('INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)'),
      deleteIncoming: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?'),
      deleteIncomingOf: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ?'),
      upsertRetained: db.prepare(
        'INSERT INTO retained (topic, body) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET body = excluded.body',
      ),
      deleteRetained: db.prepare('DELETE FROM retained WHERE topic = ?'),
      allRetained: db.prepare('SELECT body FROM retained'),
      stampAlive: db.prepare(
        "INSERT INTO meta (key, value) VALUES ('alive', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      lastAlive: db.prepare("SELECT value FROM meta WHERE key = 'alive'"),
    };
  }

  async open(clientId: string, expiryInterval: number, cleanStart: boolean, holder = ''): Promise<boolean> {
    this.commitNow();
    const row = this.s.openState.get(clientId) as
      | { deadline: number | null; expiry: number; holder: string | null }
      | undefined;
    let existed = row !== undefined;
    // A session past its deadline that expire() has not reached yet is gone all the same, and so
    // is one with expiry 0 that another holder did not let go of (its connection ended by now).
    const lapsed =
      row !== undefined &&
      ((row.deadline !== null && row.deadline <= Date.now()) ||
        (row.expiry === 0 && row.holder !== null && row.holder !== holder));
    this.transact('open', () => {
      if (existed && (cleanStart || lapsed)) {
        this.deleteNow(clientId);
        existed = false;
      }
      const held = holder !== '' && Number.isFinite(expiryInterval) ? holder : null;
      this.s.upsertSession.run(clientId, expiryValue(expiryInterval), held);
    });
    return existed;
  }

  offline(clientId: string, expiresAt: number): void {
    const deadline = Number.isFinite(expiresAt) ? expiresAt : null;
    this.queue(() => this.s.setDeadline.run(deadline, clientId));
  }

  async orphaned(holder: string, since = Date.now()): Promise<number> {
    this.commitNow();
    let moved = 0;
    this.transact('orphaned', () => {
      moved = this.s.orphan.run(since, holder).changes;
    });
    return moved;
  }

  /**
   * The holders of sessions still online in the store: at start, those of an earlier run of
   * this process that ended without closing its connections (the directory has one user).
   */
  holders(): string[] {
    this.commitNow();
    return (this.s.holders.all() as { holder: string }[]).map((r) => r.holder);
  }

  /** Notes that this process is alive at `now` (ms since the epoch), in the next commit. */
  stampAlive(now = Date.now()): void {
    this.queue(() => this.s.stampAlive.run(now));
  }

  /** When the last stampAlive() was committed (ms since the epoch); null if never. */
  lastAlive(): number | null {
    this.commitNow();
    const row = this.s.lastAlive.get() as { value: number } | undefined;
    return row === undefined ? null : row.value;
  }

  async expire(now: number, max = EXPIRE_BATCH): Promise<string[]> {
    this.commitNow();
    const limit = Math.floor(max);
    // LIMIT with a negative count means no limit in SQLite.
    if (!(limit > 0)) return [];
    let due: string[] = [];
    this.transact('expire', () => {
      due = (this.s.dueSessions.all(now, limit) as { clientId: string }[]).map((r) => r.clientId);
      for (const clientId of due) this.deleteNow(clientId);
    });
    return due;
  }

  async load(clientId: string, skip?: ReadonlySet<number>): Promise<StoredSession<Opt> | null> {
    return decodeSession(await this.loadEncoded(clientId, skip), decodeStoredMessage);
  }

  async loadEncoded(clientId: string, skip?: ReadonlySet<number>, first?: number): Promise<EncodedSession<Opt> | null> {
    this.commitNow();
    const header = this.s.sessionExists.get(clientId) as { expiry: number } | undefined;
    if (header === undefined) return null;
    const all = this.s.deliveriesOf.all(clientId) as {
      id: number;
      qos: 1 | 2;
      packetId: number;
      released: number;
      body: Buffer;
    }[];
    const kept = skip === undefined ? all : all.filter((r) => !skip.has(r.id));
    const rows = first === undefined || first <= 0 ? kept : kept.slice(0, first);
    return {
      clientId,
      expiryInterval: header.expiry < 0 ? Number.POSITIVE_INFINITY : header.expiry,
      subscriptions: (this.s.subscriptionsOf.all(clientId) as { filter: string; options: Opt }[]).map(
        (r): StoredSubscription<Opt> => [r.filter, r.options],
      ),
      deliveries: rows.map(
        (r): EncodedDelivery => ({
          id: r.id,
          qos: r.qos,
          packetId: r.packetId,
          released: r.released === 1,
          body: r.body,
        }),
      ),
      incomingQos2: (this.s.incomingOf.all(clientId) as { id: number }[]).map((r) => r.id),
    };
  }

  async loadSubscriptions(): Promise<Map<string, StoredSubscription<Opt>[]>> {
    this.commitNow();
    const out = new Map<string, StoredSubscription<Opt>[]>();
    for (const r of this.s.allSubscriptions.all() as { client_id: string; filter: string; options: Opt }[]) {
      let list = out.get(r.client_id);
      if (list === undefined) {
        list = [];
        out.set(r.client_id, list);
      }
      list.push([r.filter, r.options]);
    }
    return out;
  }

  subscribe(clientId: string, filter: string, options: Opt): void {
    this.queue(() => {
      if (this.s.sessionExists.get(clientId) !== undefined) this.s.upsertSubscription.run(clientId, filter, options);
    });
  }

  unsubscribe(clientId: string, filter: string): void {
    this.queue(() => this.s.deleteSubscription.run(clientId, filter));
  }

  enqueue(message: StoredMessage, targets: readonly (readonly [string, 1 | 2])[]): void {
    if (targets.length === 0) return;
    const body = encodeStoredMessage(message);
    this.queue(() => {
      let refs = 0;
      for (const [clientId, qos] of targets) {
        if (this.s.sessionExists.get(clientId) === undefined) continue;
        const { n } = this.s.countDeliveries.get(clientId) as { n: number };
        if (n >= this.limits.maxQueued) {
          if (this.limits.overflowPolicy === 'drop-new') continue;
          const oldest = this.s.oldestUnsent.get(clientId) as { seq: number; id: number } | undefined;
          if (oldest === undefined) continue;
          this.s.deleteDeliveryBySeq.run(oldest.seq);
          this.release(oldest.id);
        }
        this.s.insertDelivery.run(clientId, message.id, qos);
        refs++;
      }
      if (refs > 0) this.s.insertMessage.run(message.id, body, refs);
    });
  }

  sent(clientId: string, id: number, packetId: number): void {
    this.queue(() => this.s.markSent.run(packetId, clientId, id));
  }

  released(clientId: string, id: number): void {
    this.queue(() => this.s.markReleased.run(clientId, id));
  }

  completed(clientId: string, id: number): void {
    this.queue(() => {
      const row = this.s.findDelivery.get(clientId, id) as { seq: number } | undefined;
      if (row === undefined) return;
      this.s.deleteDeliveryBySeq.run(row.seq);
      this.release(id);
    });
  }

  incomingQos2(clientId: string, packetId: number, pending: boolean): void {
    this.queue(() => {
      if (pending) this.s.addIncoming.run(clientId, packetId);
      else this.s.deleteIncoming.run(clientId, packetId);
    });
  }

  delete(clientId: string): void {
    this.queue(() => this.deleteNow(clientId));
  }

  /** Stores a retained message (a one-record publish batch) or, with null, deletes the topic's. */
  storeRetained(topic: string, record: Uint8Array | null): void {
    this.queue(() => {
      if (record === null) this.s.deleteRetained.run(topic);
      else this.s.upsertRetained.run(topic, record);
    });
  }

  loadRetained(): Uint8Array[] {
    this.commitNow();
    return (this.s.allRetained.all() as { body: Buffer }[]).map((r) => r.body);
  }

  /**
   * A number for this start of the process, one more than the last start's: message ids
   * carry it, so ids of this run never meet ids stored by an earlier one.
   */
  nextStartNumber(): number {
    this.commitNow();
    this.db
      .prepare("INSERT INTO meta (key, value) VALUES ('starts', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1")
      .run();
    return (this.db.prepare("SELECT value FROM meta WHERE key = 'starts'").get() as { value: number }).value;
  }

  /** Messages held (for the contract tests). */
  messageCount(): number {
    this.commitNow();
    return (this.s.countMessages.get() as { n: number }).n;
  }

  flushed(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.commitNow();
    if (this.db.open) this.db.close();
  }

  private queue(op: Op): void {
    this.pending.push(op);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.commitNow());
  }

  /** Commits every pending write in one transaction and answers who waited for it. */
  private commitNow(): void {
    this.scheduled = false;
    const ops = this.pending;
    const waiters = this.waiters;
    if (ops.length === 0 && waiters.length === 0) return;
    this.pending = [];
    this.waiters = [];
    try {
      if (ops.length > 0) this.commit(ops);
    } catch (err) {
      const failure = new StoreError(`writing the data directory failed: ${(err as Error).message}`, { cause: err });
      for (const w of waiters) w.reject(failure);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /** Runs `op` in a transaction of its own now (pending writes must be committed first). */
  private transact(what: string, op: Op): void {
    try {
      this.commit([op]);
    } catch (err) {
      throw new StoreError(`${what} failed in the data directory: ${(err as Error).message}`, { cause: err });
    }
  }

  private deleteNow(clientId: string): void {
    for (const { id } of this.s.deliveryIdsOf.all(clientId) as { id: number }[]) this.release(id);
    this.s.deleteDeliveries.run(clientId);
    this.s.deleteSubscriptions.run(clientId);
    this.s.deleteIncomingOf.run(clientId);
    this.s.deleteSession.run(clientId);
  }

  private release(id: number): void {
    this.s.unref.run(id);
    this.s.dropUnreferenced.run(id);
  }
}

/** Infinity (never expires) is stored as -1. */
function expiryValue(expiryInterval: number): number {
  return Number.isFinite(expiryInterval) ? expiryInterval : -1;
}
