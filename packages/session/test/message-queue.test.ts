import t from 'tap';
import { Message, MessageQueue } from '../src/index.js';

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
