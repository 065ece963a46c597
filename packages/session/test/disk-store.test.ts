/** The store contract against the SQLite store in a temporary data directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DiskSessionStore } from '../src/store/disk-store.js';
import { storeContract } from './store-contract.js';

storeContract(t, async (limits) => {
  const dir = mkdtempSync(join(tmpdir(), 'tern-disk-store-'));
  const opened: DiskSessionStore[] = [];
  const make = (): DiskSessionStore => {
    const store = new DiskSessionStore(dir, limits);
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
