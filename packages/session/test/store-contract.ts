/**
 * The contract every session store keeps (memory, Redis, and any other): one suite, run
 * against each store by its own test file, so they cannot drift apart.
 */
import type { Test } from 'tap';
import {
  decodeStoredMessage,
  EXPIRE_BATCH,
  type SessionStore,
  type StoredMessage,
  type StoreLimits,
} from '../src/index.js';

/** The stores under test keep packed subscription options, not only a QoS. */
export type Store = SessionStore<number>;

export interface StoreHarness {
  store: Store;
  /**
   * A fresh store over the same data (a new connection, a reopened file): what a restart, or
   * another node, sees.
   */
  reopen(): Promise<Store>;
  /** Messages held at all (a message must go with its last delivery). */
  storedMessages(): Promise<number>;
  stop(): Promise<void>;
}

export type MakeStore = (limits: StoreLimits) => Promise<StoreHarness>;

let nextId = 1;
function message(
  topic: string,
  payload: string | Uint8Array,
  qos: 1 | 2 = 1,
  properties: Uint8Array | null = null,
): StoredMessage {
  return {
    id: 2 ** 40 + nextId++,
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos,
    retain: false,
    origin: 'publisher',
    time: 1_700_000_000_000 + nextId,
    properties,
  };
}

const LIMITS: StoreLimits = { maxQueued: 100, overflowPolicy: 'drop-oldest' };

/**
 * Subscription options as the broker packs them: QoS 1, no local, retain as published, retain
 * handling 1, and the largest subscription identifier (268,435,455) times 64: past 32 bits.
 */
const PACKED = 1 + 4 + 8 + 16 + 268_435_455 * 64;

/** A deadline no test reaches by the clock: only expire(now) with a later `now` passes it. */
const later = (): number => Date.now() + 3_600_000;

async function payloads(store: Store, clientId: string): Promise<string[]> {
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
    const ids = a?.deliveries.map((d) => d.message.id) as number[];
    t.same(
      (await store.loadEncoded('a', new Set(ids.slice(0, 2))))?.deliveries.map((d) => d.id),
      ids.slice(2),
      'the rest after a head read: what follows it',
    );
    t.same(
      (await store.loadEncoded('a', new Set([...ids.slice(0, 2), 999_999])))?.deliveries.map((d) => d.id),
      ids.slice(2),
      'a skipped delivery that is gone (the last one named) costs a whole read, not a wrong answer',
    );
    t.same(
      (await store.loadEncoded('a', new Set(ids)))?.deliveries.map((d) => d.id),
      [],
      'the whole queue read: nothing left',
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

  withStore('subscription options are kept and read back exactly, past 32 bits', LIMITS, async (t, h) => {
    const { store } = h;
    await store.open('a', Number.POSITIVE_INFINITY, false);
    store.subscribe('a', 'x/#', PACKED);
    store.subscribe('a', 'y', 2 + 32 + 64);
    store.subscribe('a', 'z', 0);
    await store.flushed();
    const expected = [
      ['x/#', PACKED],
      ['y', 2 + 32 + 64],
      ['z', 0],
    ];
    const byFilter = (subs: [string, number][] | undefined) =>
      [...(subs ?? [])].sort(([f1], [f2]) => (f1 < f2 ? -1 : 1));
    t.same(byFilter((await store.load('a'))?.subscriptions), expected, 'load');
    t.same(byFilter((await store.loadEncoded('a'))?.subscriptions), expected, 'loadEncoded');
    t.same(byFilter((await store.loadEncoded('a', new Set([1])))?.subscriptions), expected, 'loadEncoded with skip');
    t.same(byFilter((await store.loadSubscriptions()).get('a')), expected, 'loadSubscriptions');
    const again = await h.reopen();
    t.same(byFilter((await again.loadSubscriptions()).get('a')), expected, 'after a restart');
  });

  withStore('MQTT 5 message properties are kept as bytes; none reads as null', LIMITS, async (t, { store }) => {
    await store.open('a', Number.POSITIVE_INFINITY, false);
    const props = Buffer.from([0x01, 0x01, 0x26, 0x00, 0x01, 0x6b, 0x00, 0x02, 0xc3, 0xbc]);
    const absent: StoredMessage = message('t/absent', 'd');
    delete absent.properties;
    const sent = [
      message('t/props', 'a', 1, props),
      message('t/null', 'b', 2, null),
      message('t/empty', 'c', 1, new Uint8Array(0)),
      absent,
    ];
    for (const m of sent) store.enqueue(m, [['a', m.qos as 1 | 2]]);
    await store.flushed();
    const expected = [props, null, Buffer.alloc(0), null];
    const asBytes = (p: Uint8Array | null | undefined) => (p === null || p === undefined ? p : Buffer.from(p));
    const loaded = await store.load('a');
    t.same(
      loaded?.deliveries.map((d) => asBytes(d.message.properties)),
      expected,
      'load',
    );
    const encoded = await store.loadEncoded('a');
    t.same(
      encoded?.deliveries.map((d) => asBytes(decodeStoredMessage(d.id, d.body).properties)),
      expected,
      'loadEncoded',
    );
    t.same(
      loaded?.deliveries.map((d) => Buffer.from(d.message.payload).toString()),
      ['a', 'b', 'c', 'd'],
      'payloads are intact behind the properties',
    );
  });

  withStore('an offline session is deleted once expire() passes its deadline', LIMITS, async (t, h) => {
    const { store } = h;
    for (const id of ['a', 'b']) await store.open(id, 60, false);
    store.subscribe('a', 'x', 1);
    store.enqueue(message('x', 'shared'), [
      ['a', 1],
      ['b', 1],
    ]);
    store.enqueue(message('x', 'only a'), [['a', 1]]);
    const deadline = later();
    store.offline('a', deadline);
    await store.flushed();
    t.same(await store.expire(deadline - 1), [], 'nothing is due before the deadline');
    t.not(await store.load('a'), null);
    t.same(await store.expire(deadline), ['a'], 'due at the deadline itself');
    t.equal(await store.load('a'), null, 'the session is gone');
    t.notOk((await store.loadSubscriptions()).has('a'), 'and its subscriptions');
    t.equal(await h.storedMessages(), 1, 'the message only it held is freed; the shared one stays');
    t.same(await payloads(store, 'b'), ['shared']);
    t.same(await store.expire(deadline + 1), [], 'it is reported once');
    t.equal(await store.open('a', 60, false), false, 'a later connection finds no session');
  });

  withStore('open before the deadline cancels the expiry', LIMITS, async (t, { store }) => {
    await store.open('a', 60, false);
    store.subscribe('a', 'x', 1);
    const deadline = later();
    store.offline('a', deadline);
    t.equal(await store.open('a', 60, false), true, 'the session is resumed');
    t.same(await store.expire(deadline + 1), [], 'and no longer expires');
    t.same((await store.load('a'))?.subscriptions, [['x', 1]]);
    store.offline('a', deadline);
    t.equal(await store.open('a', 60, true), false, 'a clean start discards it');
    t.same(await store.expire(deadline + 1), [], 'and its deadline');
  });

  withStore('open after the deadline finds no session, even before expire()', LIMITS, async (t, h) => {
    const { store } = h;
    await store.open('a', 60, false);
    store.subscribe('a', 'x', 1);
    store.enqueue(message('x', 'queued'), [['a', 1]]);
    store.incomingQos2('a', 9, true);
    store.offline('a', Date.now() - 1000);
    t.equal(await store.open('a', 60, false), false, 'session present 0');
    const s = await store.load('a');
    t.same(
      [s?.subscriptions, s?.deliveries, s?.incomingQos2],
      [[], [], []],
      'the new session has nothing of the old one',
    );
    t.equal(await h.storedMessages(), 0, 'its messages are freed');
    t.same(await store.expire(Date.now() + 1000), [], 'the new session is online: nothing to expire');
  });

  withStore('a session offline with an infinite deadline never expires', LIMITS, async (t, { store }) => {
    await store.open('a', Number.POSITIVE_INFINITY, false);
    await store.open('b', 60, false);
    store.offline('a', Number.POSITIVE_INFINITY);
    store.offline('b', later());
    store.offline('b', Number.POSITIVE_INFINITY);
    await store.flushed();
    t.same(await store.expire(Number.MAX_VALUE), [], 'neither expires; the later call cleared the deadline');
    t.not(await store.load('a'), null);
    t.not(await store.load('b'), null);
  });

  withStore('deadlines go with delete(), and none is set for a session that is not there', LIMITS, async (t, h) => {
    const { store } = h;
    await store.open('a', 60, false);
    store.offline('a', later());
    store.delete('a');
    store.offline('ghost', later());
    await store.flushed();
    t.same(await store.expire(Number.MAX_VALUE), []);
    t.equal(await store.load('ghost'), null, 'offline() makes no session');
  });

  withStore('expire reports each client id once, across calls and stores', LIMITS, async (t, h) => {
    const { store } = h;
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const deadline = later();
    for (const [i, id] of ids.entries()) {
      await store.open(id, 60, false);
      store.enqueue(message('x', id), [[id, 1]]);
      store.offline(id, deadline + i);
    }
    await store.flushed();
    t.same(await store.expire(deadline + 10, 2), ['a', 'b'], 'at most `max`, earliest deadlines first');
    const other = await h.reopen();
    const both = await Promise.all([store.expire(deadline + 10, 2), other.expire(deadline + 10, 2)]);
    const rest = both.flat();
    t.same([...rest].sort(), ['c', 'd', 'e'], 'two callers at once share the rest');
    t.equal(new Set(rest).size, rest.length, 'no client id is reported twice');
    t.same(await store.expire(deadline + 10), [], 'nothing is left');
    t.same(await store.expire(deadline + 10, 0), [], 'max 0 deletes nothing');
    t.equal(await h.storedMessages(), 0, 'every expired session released its messages');
  });

  withStore('a deadline survives a restart', LIMITS, async (t, h) => {
    const { store } = h;
    await store.open('a', 60, false);
    const deadline = later();
    store.offline('a', deadline);
    await store.flushed();
    const again = await h.reopen();
    t.same(await again.expire(deadline - 1), []);
    t.same(await again.expire(deadline), ['a']);
  });
  withStore('orphaned() starts the expiry of what a gone holder served online', LIMITS, async (t, h) => {
    const { store } = h;
    const never = Number.POSITIVE_INFINITY;
    await store.open('a', 60, false, 'n1');
    store.subscribe('a', 'x', 1);
    store.enqueue(message('x', 'for a'), [['a', 1]]);
    await store.open('zero', 0, false, 'n1');
    await store.open('forever', never, false, 'n1');
    await store.open('elsewhere', 60, false, 'n2');
    await store.open('nobody', 60, false);
    const since = later();
    t.equal(await store.orphaned('n1', since), 2, 'the two with a finite expiry');
    t.same(await store.expire(since - 1), [], 'nothing is due before `since`');
    t.same(await store.expire(since), ['zero'], 'expiry 0: due at `since` itself');
    t.same(await store.expire(since + 60_000 - 1), []);
    t.same(await store.expire(since + 60_000), ['a'], 'the other its interval later');
    t.equal(await h.storedMessages(), 0, 'its messages went with it');
    t.equal(await store.orphaned('n1', since), 0, 'nothing is moved twice');
    t.same(await store.expire(Number.MAX_VALUE), [], 'never-expiring, other holders and no holder: untouched');
    for (const id of ['forever', 'elsewhere', 'nobody']) t.not(await store.load(id), null, `${id} is there`);
    t.equal(await store.orphaned('nobody-at-all'), 0, 'a holder that held nothing');
  });

  withStore('open, offline and delete take a session away from its holder', LIMITS, async (t, { store }) => {
    const since = later();
    // Taken over on another node: the old one no longer holds it.
    await store.open('moved', 60, false, 'n1');
    t.equal(await store.open('moved', 60, false, 'n2'), true);
    // Resumed on the same node with an expiry that never runs out: nothing to hold.
    await store.open('forever', 60, false, 'n1');
    await store.open('forever', Number.POSITIVE_INFINITY, false, 'n1');
    // A clean start on another node.
    await store.open('fresh', 60, false, 'n1');
    t.equal(await store.open('fresh', 30, true, 'n2'), false);
    // Offline (its connection ended cleanly) and deleted.
    await store.open('left', 60, false, 'n1');
    const deadline = since + 5_000;
    store.offline('left', deadline);
    await store.open('gone', 60, false, 'n1');
    store.delete('gone');
    await store.flushed();
    t.equal(await store.orphaned('n1', since), 0, 'n1 holds none of them now');
    t.equal(await store.orphaned('n2', since), 2, 'n2 holds the two it opened');
    t.same(await store.expire(deadline), ['left'], 'the offline one keeps its own deadline');
    t.same(await store.expire(since + 30_000), ['fresh'], 'each expires by its own interval');
    t.same(await store.expire(since + 60_000), ['moved']);
    t.same(await store.expire(Number.MAX_VALUE), []);
    t.not(await store.load('forever'), null);
  });

  withStore('expiry 0 held by a holder that did not let go ends with it', LIMITS, async (t, { store }) => {
    await store.open('zero', 0, false, 'n1');
    store.subscribe('zero', 'x', 1);
    t.equal(await store.open('zero', 0, false, 'n2'), false, 'opened from another holder: session present 0');
    t.same((await store.load('zero'))?.subscriptions, [], 'nothing of the old one');
    await store.open('same', 0, false, 'n1');
    t.equal(await store.open('same', 0, false, 'n1'), true, 'the same holder (a move inside the node) keeps it');
    await store.open('sixty', 60, false, 'n1');
    t.equal(await store.open('sixty', 0, false, 'n2'), true, 'a longer interval has not run out');
    await store.open('left', 0, false, 'n1');
    store.offline('left', later());
    t.equal(await store.open('left', 0, false, 'n2'), true, 'one its holder let go of is there');
  });

  withStore('orphaned() without `since` counts from now, by the store clock', LIMITS, async (t, { store }) => {
    await store.open('zero', 0, false, 'n1');
    await store.open('hour', 3600, false, 'n1');
    const before = Date.now();
    t.equal(await store.orphaned('n1'), 2);
    t.equal(await store.open('zero', 0, false, 'n2'), false, 'expiry 0 ended with its holder: session present 0');
    t.same(await store.expire(before + 60_000), [], 'the hour has not run out');
    t.same(await store.expire(before + 3_600_000 + 60_000), ['hour'], 'then it has');
  });

  withStore('a holder is remembered across a restart', LIMITS, async (t, h) => {
    await h.store.open('a', 60, false, 'n1');
    await h.store.flushed();
    const again = await h.reopen();
    const since = later();
    t.equal(await again.orphaned('n1', since), 1);
    t.same(await again.expire(since + 60_000), ['a']);
  });

  withStore('orphaned() moves every session of its holder, however many', LIMITS, async (t, { store }) => {
    const n = EXPIRE_BATCH + 5;
    for (let i = 0; i < n; i++) await store.open(`c${i}`, 10, false, 'big');
    await store.open('other', 10, false, 'small');
    const since = later();
    t.equal(await store.orphaned('big', since), n);
    const expired: string[] = [];
    for (let batch = await store.expire(since + 10_000); batch.length > 0; batch = await store.expire(since + 10_000)) {
      expired.push(...batch);
    }
    t.equal(expired.length, n, 'all of them expire');
    t.not(await store.load('other'), null, 'the other holder keeps its own');
  });
}
