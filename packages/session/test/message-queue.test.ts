import t from 'tap';
import { type DeferredDeliveries, Message, MessageQueue } from '../src/index.js';

const msg = (n: number): Message => new Message(`t/${n}`, Buffer.from(String(n)), 1, false, 'p');
const item = (n: number) => ({ message: msg(n), qos: 1 as const, retain: false });
const topics = (q: MessageQueue): string[] => [...q].map((d) => d.message.topic);

t.test('FIFO order across growth and wrap-around', async (t) => {
  const q = new MessageQueue(100);
  for (let i = 0; i < 40; i++) q.push(item(i), 'drop-oldest');
  for (let i = 0; i < 30; i++) t.equal(q.shift()?.message.topic, `t/${i}`);
  for (let i = 40; i < 90; i++) q.push(item(i), 'drop-oldest');
  t.equal(q.length, 60);
  t.same(
    topics(q),
    Array.from({ length: 60 }, (_, i) => `t/${i + 30}`),
  );
});

t.test('drop-oldest keeps the newest `limit` items and returns what it dropped', async (t) => {
  const q = new MessageQueue(3);
  for (let i = 0; i < 3; i++) t.equal(q.push(item(i), 'drop-oldest'), null);
  t.equal(q.push(item(3), 'drop-oldest')?.message.topic, 't/0');
  t.same(topics(q), ['t/1', 't/2', 't/3']);
});

t.test('drop-new refuses the new item when full', async (t) => {
  const q = new MessageQueue(2);
  q.push(item(0), 'drop-new');
  q.push(item(1), 'drop-new');
  const extra = item(2);
  t.equal(q.push(extra, 'drop-new'), extra);
  t.same(topics(q), ['t/0', 't/1']);
});

t.test('a zero limit queues nothing', async (t) => {
  const q = new MessageQueue(0);
  const extra = item(0);
  t.equal(q.push(extra, 'drop-oldest'), extra);
  t.equal(q.length, 0);
  t.equal(q.shift(), null);
});

/** Deferred deliveries t/from .. t/(to-1), counting how many were made. */
class Numbered implements DeferredDeliveries {
  made = 0;
  constructor(
    private at: number,
    private readonly to: number,
  ) {}
  get remaining(): number {
    return this.to - this.at;
  }
  next() {
    this.made++;
    return item(this.at++);
  }
}

t.test('deferred deliveries are made one at a time as they are taken, before anything pushed later', async (t) => {
  const q = new MessageQueue(5);
  const source = new Numbered(0, 4);
  q.defer(source);
  t.equal(q.length, 4, 'counted before any is made');
  t.equal(source.made, 0);
  q.push(item(10), 'drop-new');
  t.equal(q.length, 5);
  t.equal(q.push(item(11), 'drop-new')?.message.topic, 't/11', 'the limit counts deferred deliveries');
  t.equal(q.shift()?.message.topic, 't/0');
  t.equal(source.made, 1, 'a shift makes only the one it takes');
  t.same(topics(q), ['t/1', 't/2', 't/3', 't/10'], 'iterating makes the rest, in order, in front of the pushed one');
  t.equal(source.made, 4);
  t.equal(q.length, 4);
  t.same(
    [q.shift(), q.shift(), q.shift(), q.shift(), q.shift()].map((d) => d?.message.topic ?? null),
    ['t/1', 't/2', 't/3', 't/10', null],
  );
});

t.test('drop-oldest on a full queue drops a deferred delivery first', async (t) => {
  const q = new MessageQueue(2);
  q.defer(new Numbered(0, 2));
  t.equal(q.push(item(5), 'drop-oldest')?.message.topic, 't/0');
  t.equal(q.peek()?.message.topic, 't/1', 'peek sees the next deferred one');
  t.same(topics(q), ['t/1', 't/5']);
});

t.test('defer needs an empty queue; clear forgets what was deferred', async (t) => {
  const q = new MessageQueue(10);
  q.push(item(0), 'drop-new');
  t.throws(() => q.defer(new Numbered(1, 3)));
  q.clear();
  const source = new Numbered(1, 3);
  q.defer(source);
  q.clear();
  t.equal(q.length, 0);
  t.equal(q.shift(), null);
  t.equal(source.made, 0, 'nothing was made');
  q.defer(new Numbered(0, 0));
  t.equal(q.length, 0, 'an empty source defers nothing');
});
