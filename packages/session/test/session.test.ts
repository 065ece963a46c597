import t from 'tap';
import { Enqueued, Message, Session } from '../src/index.js';

const limits = { maxInflight: 2, maxQueued: 3, overflowPolicy: 'drop-oldest' as const };
const msg = (n: number): Message => new Message(`t/${n}`, Buffer.from(String(n)), 2, false, 'p');

t.test('an online session sends while the window has room, then queues in order', async (t) => {
  const s = new Session('c', Number.POSITIVE_INFINITY, limits);
  s.owner = {};
  t.equal(s.enqueue(msg(0), 1, false), Enqueued.Send);
  const a = s.addInflight(msg(0), 1, false);
  t.equal(s.enqueue(msg(1), 1, false), Enqueued.Send);
  s.addInflight(msg(1), 1, false);
  t.equal(s.enqueue(msg(2), 1, false), Enqueued.Queued, 'window full');
  t.equal(s.nextQueued(), null, 'nothing leaves the queue while the window is full');
  t.ok(s.complete(a.id, 1));
  t.equal(s.nextQueued()?.message.topic, 't/2');
});

t.test('an offline session queues; overflow reports which end was dropped', async (t) => {
  const s = new Session('c', Number.POSITIVE_INFINITY, limits);
  for (let i = 0; i < 3; i++) t.equal(s.enqueue(msg(i), 1, false), Enqueued.Queued);
  t.equal(s.enqueue(msg(3), 1, false), Enqueued.DroppedOldest);
  const dropNew = new Session('d', Number.POSITIVE_INFINITY, { ...limits, overflowPolicy: 'drop-new' });
  for (let i = 0; i < 3; i++) dropNew.enqueue(msg(i), 1, false);
  t.equal(dropNew.enqueue(msg(3), 1, false), Enqueued.DroppedNew);
});

t.test('packet ids skip ids still in flight and wrap after 65535 [MQTT-2.3.1-2]', async (t) => {
  const s = new Session('c', 0, { ...limits, maxInflight: 65_535 });
  const first = s.addInflight(msg(0), 1, false);
  t.equal(first.id, 1);
  for (let i = 2; i <= 65_535; i++) {
    const e = s.addInflight(msg(i), 1, false);
    if (e.id !== 1 + ((i - 1) % 65_535)) t.fail(`unexpected id ${e.id}`);
    s.complete(e.id, 1);
  }
  // Id 1 is still in flight: the allocator must skip it after wrapping.
  t.equal(s.addInflight(msg(1), 1, false).id, 2);
});

t.test('QoS 2: PUBCOMP completes only after PUBREC', async (t) => {
  const s = new Session('c', 0, limits);
  const e = s.addInflight(msg(0), 2, false);
  t.notOk(s.complete(e.id, 2), 'PUBCOMP before PUBREC is ignored');
  t.ok(s.received(e.id));
  t.equal(s.inflight.get(e.id)?.state, 'pubrel');
  t.ok(s.complete(e.id, 2));
  t.equal(s.inflight.size, 0);
});

t.test('reset forgets state but keeps the identity', async (t) => {
  const s = new Session('c', Number.POSITIVE_INFINITY, limits);
  s.setSubscription('a/#', 1);
  s.enqueue(msg(0), 1, false);
  s.addIncomingQos2(5);
  s.reset();
  t.equal(s.subscriptions.size, 0);
  t.equal(s.queue.length, 0);
  t.equal(s.incomingQos2.size, 0);
  t.equal(s.clientId, 'c');
});
