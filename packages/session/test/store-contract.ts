/**
 * The contract every session store keeps (memory, Redis, and any other): one suite, run
 * against each store by its own test file, so they cannot drift apart.
 */
import type { Test } from 'tap';
import type { SessionStore, StoredMessage, StoreLimits } from '../src/index.js';

export interface StoreHarness {
  store: SessionStore;
  /** A fresh store over the same data (a new connection, a reopened file): what a restart sees. */
  reopen(): Promise<SessionStore>;
  /** Messages held at all (a message must go with its last delivery). */
  storedMessages(): Promise<number>;
  stop(): Promise<void>;
}

export type MakeStore = (limits: StoreLimits) => Promise<StoreHarness>;

let nextId = 1;
function message(topic: string, payload: string | Uint8Array, qos: 1 | 2 = 1): StoredMessage {
  return {
    id: 2 ** 40 + nextId++,
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos,
    retain: false,
    origin: 'publisher',
    time: 1_700_000_000_000 + nextId,
  };
}

const LIMITS: StoreLimits = { maxQueued: 100, overflowPolicy: 'drop-oldest' };

async function payloads(store: SessionStore, clientId: string): Promise<string[]> {
  const s = await store.load(clientId);
  return (s?.deliveries ?? []).map((d) => Buffer.from(d.message.payload).toString());
}

export function storeContract(t: Test, make: MakeStore): void {
  const withStore = (name: string, limits: StoreLimits, body: (t: Test, h: StoreHarness) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await make(limits);
      t.teardown(() => h.stop());
      await body(t, h);
    });

  withStore('open tells whether a session was there; a clean start discards it', LIMITS, async (t, { store }) => {
    t.equal(await store.open('c1', Number.POSITIVE_INFINITY, false), false, 'new session: not present');
    store.subscribe('c1', 'a/#', 1);
    t.equal(await store.open('c1', Number.POSITIVE_INFINITY, false), true, 'resumed: present');
    const kept = await store.load('c1');
    t.same(kept?.subscriptions, [['a/#', 1]]);
    t.equal(kept?.expiryInterval, Number.POSITIVE_INFINITY);
    t.equal(await store.open('c1', 3600, true), false, 'clean start: not present');
    const fresh = await store.load('c1');
    t.same(fresh?.subscriptions, [], 'and nothing of the old session is left');
    t.equal(fresh?.expiryInterval, 3600);
    t.equal(await store.load('nobody'), null, 'no session: null');
  });

  withStore('subscriptions are kept per session and listed for all sessions', LIMITS, async (t, { store }) => {
    await store.open('a', Number.POSITIVE_INFINITY, false);
    await store.open('b', Number.POSITIVE_INFINITY, false);
    store.subscribe('a', 'x/+', 1);
    store.subscribe('a', 'y/#', 2);
    store.subscribe('b', 'x/+', 0);
    store.subscribe('a', 'x/+', 2);
    store.unsubscribe('a', 'y/#');
    await store.flushed();
    const all = await store.loadSubscriptions();
    t.same(all.get('a'), [['x/+', 2]], 're-subscribing replaces the QoS; unsubscribing removes');
    t.same(all.get('b'), [['x/+', 0]]);
  });

  withStore('a message queued for many sessions is stored once and comes back in order', LIMITS, async (t, h) => {
    const { store } = h;
    for (const id of ['a', 'b']) await store.open(id, Number.POSITIVE_INFINITY, false);
    const big = Buffer.alloc(70_000, 7);
    store.enqueue(message('t/1', 'one'), [
      ['a', 1],
      ['b', 2],
      ['ghost', 1],
    ]);
    store.enqueue(message('t/ü', big, 2), [['a', 2]]);
    store.enqueue(message('t/3', 'three'), [['a', 1]]);
    await store.flushed();
    const a = await store.load('a');
    t.same(
      a?.deliveries.map((d) => [d.message.topic, d.qos, d.packetId, d.released]),
      [
        ['t/1', 1, 0, false],
        ['t/ü', 2, 0, false],
        ['t/3', 1, 0, false],
      ],
    );
    t.same(Buffer.from(a?.deliveries[1]?.message.payload ?? []), big, 'binary payloads round-trip');
    const first = a?.deliveries[0]?.message;
    t.equal(first?.origin, 'publisher');
    t.equal(first?.qos, 1);
    t.equal(first?.retain, false);
    t.same(await payloads(store, 'b'), ['one']);
    const skipped = await store.load('a', new Set([a?.deliveries[0]?.message.id as number]));
    t.same(
      skipped?.deliveries.map((d) => d.message.topic),
      ['t/ü', 't/3'],
      'load leaves out the deliveries it is told to skip',
    );
    const head = await store.loadEncoded('a', undefined, 2);
    t.same(
      head?.deliveries.map((d) => d.id),
      a?.deliveries.slice(0, 2).map((d) => d.message.id),
      'loadEncoded with `first` reads only the head of the queue',
    );
    t.equal(await store.load('ghost'), null, 'no session is made for a target without one');
    t.equal(await h.storedMessages(), 3);
  });

  withStore('sent, released and completed deliveries; a message goes with its last', LIMITS, async (t, h) => {
    const { store } = h;
    for (const id of ['a', 'b']) await store.open(id, Number.POSITIVE_INFINITY, false);
    const m1 = message('t', 'm1', 2);
    const m2 = message('t', 'm2', 1);
    store.enqueue(m1, [
      ['a', 2],
      ['b', 1],
    ]);
    store.enqueue(m2, [['a', 1]]);
    store.sent('a', m1.id, 17);
    store.released('a', m1.id);
    store.sent('a', m2.id, 18);
    store.sent('a', 12345, 19);
    await store.flushed();
    const a = await store.load('a');
    t.same(
      a?.deliveries.map((d) => [d.packetId, d.released]),
      [
        [17, true],
        [18, false],
      ],
    );
    store.completed('a', m1.id);
    store.completed('a', m1.id);
    await store.flushed();
    t.same(await payloads(store, 'a'), ['m2']);
    t.equal(await h.storedMessages(), 2, 'm1 is still queued for b');
    store.completed('b', m1.id);
    store.completed('a', m2.id);
    await store.flushed();
    t.equal(await h.storedMessages(), 0, 'nothing held once every delivery is complete');
  });

  withStore(
    'a full queue drops its oldest unsent delivery (drop-oldest)',
    { maxQueued: 3, overflowPolicy: 'drop-oldest' },
    async (t, h) => {
      const { store } = h;
      await store.open('a', Number.POSITIVE_INFINITY, false);
      const ms = ['1', '2', '3', '4', '5'].map((p) => message('t', p));
      store.enqueue(ms[0] as StoredMessage, [['a', 1]]);
      store.sent('a', (ms[0] as StoredMessage).id, 1);
      for (const m of ms.slice(1)) store.enqueue(m, [['a', 1]]);
      await store.flushed();
      t.same(await payloads(store, 'a'), ['1', '4', '5'], 'the in-flight one stays');
      t.equal(await h.storedMessages(), 3, 'dropped messages are not held');
    },
  );

  withStore(
    'a full queue refuses the new delivery (drop-new)',
    { maxQueued: 2, overflowPolicy: 'drop-new' },
    async (t, h) => {
      const { store } = h;
      await store.open('a', Number.POSITIVE_INFINITY, false);
      for (const p of ['1', '2', '3']) store.enqueue(message('t', p), [['a', 1]]);
      await store.flushed();
      t.same(await payloads(store, 'a'), ['1', '2']);
      t.equal(await h.storedMessages(), 2);
    },
  );

  withStore('incoming QoS 2 ids are kept until released', LIMITS, async (t, { store }) => {
    await store.open('a', Number.POSITIVE_INFINITY, false);
    store.incomingQos2('a', 7, true);
    store.incomingQos2('a', 3, true);
    store.incomingQos2('a', 7, false);
    store.incomingQos2('a', 9, true);
    await store.flushed();
    t.same((await store.load('a'))?.incomingQos2, [3, 9]);
  });

  withStore('delete removes a session and every message only it held', LIMITS, async (t, h) => {
    const { store } = h;
    for (const id of ['a', 'b']) await store.open(id, Number.POSITIVE_INFINITY, false);
    store.subscribe('a', 'x', 1);
    const shared = message('x', 'shared');
    store.enqueue(shared, [
      ['a', 1],
      ['b', 1],
    ]);
    store.enqueue(message('x', 'only a'), [['a', 1]]);
    store.delete('a');
    await store.flushed();
    t.equal(await store.load('a'), null);
    t.notOk((await store.loadSubscriptions()).has('a'));
    t.same(await payloads(store, 'b'), ['shared']);
    t.equal(await h.storedMessages(), 1);
  });

  withStore('what was flushed is there after a restart', LIMITS, async (t, h) => {
    const { store } = h;
    await store.open('a', Number.POSITIVE_INFINITY, false);
    store.subscribe('a', 'k/#', 2);
    const m = message('k/1', 'kept', 2);
    store.enqueue(m, [['a', 2]]);
    store.sent('a', m.id, 42);
    store.incomingQos2('a', 5, true);
    await store.flushed();
    const again = await h.reopen();
    const s = await again.load('a');
    t.same(s?.subscriptions, [['k/#', 2]]);
    t.same(
      s?.deliveries.map((d) => [Buffer.from(d.message.payload).toString(), d.packetId]),
      [['kept', 42]],
    );
    t.same(s?.incomingQos2, [5]);
  });
}
