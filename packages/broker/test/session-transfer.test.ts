/**
 * The bytes a persistent session moves in between routing workers (session-transfer.ts):
 * everything the session holds comes back, in order, and bytes that do not read back are a
 * typed error. The moves themselves are covered end to end by workers.test.ts and the
 * takeover/persistent suites run with TERN_TEST_WORKERS.
 */
import { Message, Session } from '@tern/session';
import t from 'tap';
import { decodeSessionTransfer, encodeSessionTransfer, SessionTransferError } from '../src/session-transfer.js';
import { transferOf } from '../src/workers/messages.js';

const limits = { maxInflight: 4, maxQueued: 2, overflowPolicy: 'drop-oldest' as const };

/** MQTT 5 content type "text" as PUBLISH property bytes (3.3.2.3.9). */
const CONTENT_TYPE = Buffer.from([0x03, 0x00, 0x04, 0x74, 0x65, 0x78, 0x74]);

function message(topic: string, payload: string | Buffer, qos: 0 | 1 | 2, id: number): Message {
  const m = new Message(topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, false, 'pub');
  m.id = id;
  m.time = 1_700_000_000_000 + id;
  return m;
}

t.test('a session moves with its subscriptions, inflight window, queue and ids', async (t) => {
  const session = new Session('mover', 3600, limits);
  session.setSubscription('a/#', 1);
  session.setSubscription('$share/g/b/+', 2 | (7 * 64));
  session.expiresAt = 1_800_000_000_000;
  session.nextId = 42;
  session.addIncomingQos2(5);
  session.addIncomingQos2(9);

  const sent = message('a/1', 'one', 1, 1);
  const released = message('a/2', 'two', 2, 2);
  const shared = message('b/x', 'for the group', 2, 3);
  session.putInflight({ id: 40, message: sent, qos: 1, retain: false, state: 'publish', share: null });
  session.putInflight({ id: 41, message: released, qos: 2, retain: false, state: 'pubrel', share: null });
  session.putInflight({ id: 7, message: shared, qos: 1, retain: false, state: 'publish', share: '$share/g/b/+' });

  const v5 = message('a/ünïcode', 'typed', 1, 4);
  v5.properties = CONTENT_TYPE;
  v5.expiryInterval = 60;
  const big = message('a/big', Buffer.alloc(70_000, 7), 1, 5);
  const empty = message('a/empty', '', 2, 6);
  session.queue.restore({ message: v5, qos: 1, retain: true });
  session.queue.restore({ message: big, qos: 1, retain: false });
  session.queue.restore({ message: empty, qos: 2, retain: false, share: '$share/g/b/+' });

  const bytes = encodeSessionTransfer(session);
  t.same(transferOf(bytes), [bytes.buffer], 'the bytes own their buffer: they cross threads without a copy');
  const back = decodeSessionTransfer(bytes, limits);

  t.equal(back.clientId, 'mover');
  t.equal(back.expiryInterval, 3600);
  t.equal(back.expiresAt, 1_800_000_000_000);
  t.equal(back.nextId, 42);
  t.same([...back.incomingQos2], [5, 9]);
  t.same([...back.subscriptions], [...session.subscriptions]);
  t.equal(back.identifiedSubscriptions, session.identifiedSubscriptions, 'subscription ids counted again');
  t.equal(back.owner, null, 'offline until its client takes it');

  t.same(
    [...back.inflight.values()].map((e) => [
      e.id,
      e.message.topic,
      e.message.payload.toString(),
      e.qos,
      e.state,
      e.share,
    ]),
    [
      [40, 'a/1', 'one', 1, 'publish', null],
      [41, 'a/2', 'two', 2, 'pubrel', null],
      [7, 'b/x', 'for the group', 1, 'publish', '$share/g/b/+'],
    ],
    'the window in order, with packet ids, states and groups',
  );
  t.same(
    [...back.queue].map((q) => [q.message.topic, q.message.payload.length, q.qos, q.retain, q.share ?? null]),
    [
      ['a/ünïcode', 5, 1, true, null],
      ['a/big', 70_000, 1, false, null],
      ['a/empty', 0, 2, false, '$share/g/b/+'],
    ],
    'the queue in order, past its limit of 2 (what was accepted is kept)',
  );
  const [first] = [...back.queue];
  const m = first?.message as Message;
  t.equal(m.id, 4, 'message ids kept: a message met twice during the move is delivered once');
  t.equal(m.time, v5.time);
  t.equal(m.qos, 1);
  t.equal(m.origin, 'pub');
  t.equal(m.expiryInterval, 60, 'the expiry interval keeps counting from the same time');
  t.same(m.properties, CONTENT_TYPE, 'MQTT 5 properties carried as they came');
  t.ok(Buffer.alloc(70_000, 7).equals([...back.queue][1]?.message.payload as Buffer), 'a large payload intact');
});

t.test('a session that never expires and holds nothing', async (t) => {
  const session = new Session('idle', Number.POSITIVE_INFINITY, limits);
  const back = decodeSessionTransfer(encodeSessionTransfer(session), limits);
  t.equal(back.expiryInterval, Number.POSITIVE_INFINITY);
  t.equal(back.expiresAt, Number.POSITIVE_INFINITY);
  t.equal(back.queue.length, 0);
  t.equal(back.inflight.size, 0);
});

t.test('bytes that do not read back are a typed error, never a half session', async (t) => {
  const session = new Session('cut', 60, limits);
  session.putInflight({
    id: 1,
    message: message('a', 'x', 1, 1),
    qos: 1,
    retain: false,
    state: 'publish',
    share: null,
  });
  const bytes = encodeSessionTransfer(session);
  t.throws(() => decodeSessionTransfer(bytes.subarray(0, 2), limits), { code: 'TERN_SESSION_TRANSFER_INVALID' });
  const headless = Uint8Array.from(bytes);
  new DataView(headless.buffer).setUint32(0, bytes.length, true);
  t.throws(() => decodeSessionTransfer(headless, limits), SessionTransferError);
  // The head names one inflight entry; a batch cut before its record cannot carry it.
  const headLength = new DataView(bytes.buffer).getUint32(0, true);
  const empty = Uint8Array.from(bytes.subarray(0, 4 + headLength + 5));
  new DataView(empty.buffer).setUint32(4 + headLength + 1, 0, true);
  t.throws(() => decodeSessionTransfer(empty, limits), { code: 'TERN_SESSION_TRANSFER_INVALID' });
  t.throws(() => decodeSessionTransfer(bytes.subarray(0, bytes.length - 1), limits), {
    code: 'TERN_CLUSTER_BATCH_INVALID',
  });
});

t.test(
  'the queue is read as it is taken, and a fault anywhere in it is found before the session is made',
  async (t) => {
    const roomy = { ...limits, maxQueued: 100 };
    const session = new Session('lazy', 60, roomy);
    for (let i = 1; i <= 50; i++)
      session.queue.restore({ message: message(`q/${i}`, String(i), 1, i), qos: 1, retain: false });
    const bytes = encodeSessionTransfer(session);

    const small = decodeSessionTransfer(bytes, limits);
    t.equal(small.queue.length, 50, 'all kept under a smaller limit: they were accepted before it');
    const back = decodeSessionTransfer(bytes, roomy);
    back.queue.push({ message: message('q/new', 'new', 1, 99), qos: 1, retain: false }, 'drop-new');
    t.equal(back.queue.shift()?.message.topic, 'q/1');
    const order = [...back.queue].map((d) => d.message.topic);
    t.same(order, [...Array.from({ length: 49 }, (_, i) => `q/${i + 2}`), 'q/new'], 'moved ones first, in order');

    // Flags of the last record made invalid: refused at once, not when the drain reaches it.
    const headLength = new DataView(bytes.buffer).getUint32(0, true);
    const bad = Uint8Array.from(bytes);
    let at = 4 + headLength + 5;
    const view = new DataView(bad.buffer);
    for (let i = 0; i < 49; i++) {
      const lengths = [2, 4, 6].reduce((sum, o) => sum + view.getUint16(at + o, true), 0);
      at += 32 + lengths + view.getUint32(at + 8, true) + view.getUint32(at + 12, true);
    }
    view.setUint16(at, 0xffff, true);
    t.throws(() => decodeSessionTransfer(bad, limits), { code: 'TERN_CLUSTER_BATCH_INVALID' });
  },
);
