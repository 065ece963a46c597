/** The store contract against the SQLite store in a temporary data directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { DiskSessionStore } from '../src/store/disk-store.js';
import { storeContract } from './store-contract.js';

storeContract(t, async (limits) => {
  const dir = mkdtempSync(join(tmpdir(), 'tern-disk-store-'));
  const opened: DiskSessionStore<number>[] = [];
  const make = (): DiskSessionStore<number> => {
    const store = new DiskSessionStore<number>(dir, limits);
    opened.push(store);
    return store;
  };
  const store = make();
  return {
    store,
    // A second handle on the same file sees what the first committed (as a restarted process would).
    reopen: async () => make(),
    storedMessages: async () => store.messageCount(),
    stop: async () => {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

t.test('a data directory that cannot be used is refused with a StoreError', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tern-disk-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A regular file where the directory should be.
  writeFileSync(join(dir, 'file'), 'not a directory');
  t.throws(() => new DiskSessionStore(join(dir, 'file', 'data'), { maxQueued: 10, overflowPolicy: 'drop-oldest' }), {
    code: 'TERN_STORE_FAILED',
  });
});

const LIMITS = { maxQueued: 10, overflowPolicy: 'drop-oldest' } as const;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-disk-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a deadline survives closing and reopening the database', async (t) => {
  const dir = tempDir(t);
  const first = new DiskSessionStore(dir, LIMITS);
  await first.open('a', 60, false);
  first.offline('a', 5_000);
  // Not flushed: close() commits what is pending.
  await first.close();
  const second = new DiskSessionStore(dir, LIMITS);
  t.teardown(() => second.close());
  t.same(await second.expire(4_999), []);
  t.same(await second.expire(5_000), ['a']);
  t.equal(await second.load('a'), null);
});

t.test('a database made before session expiry is migrated and keeps its sessions', async (t) => {
  const dir = tempDir(t);
  // The tables of a data directory written by the previous version (no sessions.expires_at).
  const old = new Database(join(dir, 'tern.db'));
  old.exec(`
    CREATE TABLE sessions (client_id TEXT PRIMARY KEY, expiry REAL NOT NULL);
    CREATE TABLE subscriptions (
      client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, PRIMARY KEY (client_id, filter));
    INSERT INTO sessions VALUES ('old', -1);
    INSERT INTO subscriptions VALUES ('old', 'a/#', 2);
  `);
  old.close();
  const store = new DiskSessionStore(dir, LIMITS);
  t.teardown(() => store.close());
  t.same((await store.load('old'))?.subscriptions, [['a/#', 2]], 'what was stored is read');
  t.equal(await store.open('old', Number.POSITIVE_INFINITY, false), true);
  store.offline('old', 1_000);
  t.same(await store.expire(1_000), ['old'], 'and expires once offline');
  await store.close();
  const again = new DiskSessionStore(dir, LIMITS);
  t.teardown(() => again.close());
  t.equal(await again.load('old'), null, 'opening a migrated database again changes nothing');
});

t.test('the holders of sessions online and the last sign of life outlive the process', async (t) => {
  const dir = tempDir(t);
  const first = new DiskSessionStore(dir, LIMITS);
  t.equal(first.lastAlive(), null, 'never stamped');
  await first.open('a', 60, false, 'tern');
  await first.open('b', 0, false, 'tern');
  await first.open('c', Number.POSITIVE_INFINITY, false, 'tern');
  await first.open('d', 60, false, 'renamed');
  first.stampAlive(10_000);
  // Killed: the handle is dropped without close(); what was committed is what remains.
  await first.flushed();
  const second = new DiskSessionStore(dir, LIMITS);
  t.teardown(() => second.close());
  t.same(second.holders().sort(), ['renamed', 'tern']);
  t.equal(second.lastAlive(), 10_000);
  for (const holder of second.holders()) await second.orphaned(holder, 10_000);
  t.same(second.holders(), [], 'nothing is held once they are orphaned');
  t.same(await second.expire(10_000), ['b']);
  t.same((await second.expire(70_000)).sort(), ['a', 'd']);
  t.not(await second.load('c'), null, 'the one that never expires stays');
  await first.close();
});

t.test('a database made before holders were kept is migrated', async (t) => {
  const dir = tempDir(t);
  const old = new Database(join(dir, 'tern.db'));
  old.exec(`
    CREATE TABLE sessions (client_id TEXT PRIMARY KEY, expiry REAL NOT NULL, expires_at REAL);
    INSERT INTO sessions VALUES ('old', 60, NULL);
  `);
  old.close();
  const store = new DiskSessionStore(dir, LIMITS);
  t.teardown(() => store.close());
  t.same(store.holders(), []);
  t.equal(await store.open('old', 60, false, 'tern'), true);
  t.same(store.holders(), ['tern']);
});
