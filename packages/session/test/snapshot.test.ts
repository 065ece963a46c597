import t from 'tap';
import { decodeSnapshot, encodeSnapshot, Message, Session, SnapshotError } from '../src/index.js';

const limits = { maxInflight: 4, maxQueued: 2, overflowPolicy: 'drop-oldest' as const };

t.test('a snapshot round trip keeps sessions, shared messages once, and retained messages', async (t) => {
  const shared = new Message('a/1', Buffer.from('one'), 2, false, 'pub');
  const other = new Message('a/2', Buffer.from('two'), 1, false, 'pub');
  const retained = new Message('status/x', Buffer.from('online'), 1, true, 'x');
  const s1 = new Session('s1', Number.POSITIVE_INFINITY, limits);
  s1.setSubscription('a/#', 2);
  s1.putInflight({ id: 7, message: shared, qos: 2, retain: false, state: 'pubrel', share: null });
  s1.queue.push({ message: other, qos: 1, retain: false }, 'drop-oldest');
  s1.addIncomingQos2(9);
  s1.nextId = 8;
  const s2 = new Session('s2', 3600, limits);
  s2.queue.push({ message: shared, qos: 1, retain: false }, 'drop-oldest');
  const transient = new Session('gone', 0, limits);
  transient.setSubscription('x', 0);

  const bytes = encodeSnapshot({ sessions: [s1, s2, transient], retained: [retained] }, 1234);
  const back = decodeSnapshot(bytes, limits);
  t.equal(back.savedAt, 1234);
  t.same(
    back.sessions.map((s) => s.clientId),
    ['s1', 's2'],
    'a session that ends with its connection is not saved',
  );
  const [r1, r2] = back.sessions as [Session, Session];
  t.equal(r1.expiryInterval, Number.POSITIVE_INFINITY, '"never expires" survives');
  t.equal(r2.expiryInterval, 3600);
  t.same([...r1.subscriptions], [['a/#', 2]]);
  t.same(
    [...r1.inflight.values()].map((e) => [e.id, e.message.topic, e.qos, e.state]),
    [[7, 'a/1', 2, 'pubrel']],
  );
  t.same(
    [...r1.queue].map((q) => [q.message.payload.toString(), q.qos]),
    [['two', 1]],
  );
  t.same([...r1.incomingQos2], [9]);
  t.equal(r1.nextId, 8);
  t.equal(r1.owner, null, 'restored sessions are offline');
  const queuedInS2 = [...r2.queue][0]?.message;
  t.equal(queuedInS2, r1.inflight.get(7)?.message, 'a message shared by two sessions is one object again');
  t.same(
    back.retained.map((m) => [m.topic, m.payload.toString(), m.retain]),
    [['status/x', 'online', true]],
  );
});

t.test('restoring never drops what was accepted, even above a lower limit', async (t) => {
  const big = new Session('big', Number.POSITIVE_INFINITY, { ...limits, maxQueued: 100 });
  for (let i = 0; i < 50; i++) {
    big.queue.push(
      { message: new Message(`t/${i}`, Buffer.from(String(i)), 1, false, 'p'), qos: 1, retain: false },
      'drop-oldest',
    );
  }
  const back = decodeSnapshot(encodeSnapshot({ sessions: [big], retained: [] }), limits);
  const queue = [...(back.sessions[0] as Session).queue];
  t.equal(queue.length, 50);
  t.same(
    queue.map((q) => q.message.payload.toString()),
    Array.from({ length: 50 }, (_, i) => String(i)),
    'in order',
  );
});

t.test('bytes that are not a snapshot are refused with a typed error', async (t) => {
  for (const bytes of [Buffer.from('garbage'), Buffer.alloc(0), Buffer.from([0x81, 0xa1, 0x76, 0x63])]) {
    t.throws(() => decodeSnapshot(bytes, limits), SnapshotError);
  }
  const truncated = encodeSnapshot({ sessions: [new Session('s', 10, limits)], retained: [] }).subarray(0, 10);
  t.throws(() => decodeSnapshot(truncated, limits), { code: 'TERN_SNAPSHOT_INVALID' });
});
