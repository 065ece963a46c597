/**
 * A routing worker collects its garbage once a storm of connections settles (heap-trim.ts):
 * when, and how often, it decides to; and that the real `tern` command does it, for a storm
 * of connects and for a storm of disconnects.
 */
import { RawClient } from '@tern/testkit';
import t from 'tap';
import { HeapTrim } from '../src/heap-trim.js';
import { startCli } from './support/cli.js';

t.test('HeapTrim collects once per settled storm, never while connections keep coming', async (t) => {
  let collections = 0;
  const trim = new HeapTrim(() => collections++, 100, 10, 1000);
  let now = 0;
  const tick = (events: number) => trim.observe(events, (now += 1000));

  t.equal(tick(50), 0, 'below the threshold: nothing');
  t.equal(tick(500), 0, 'a storm in progress (450 events this tick): nothing yet');
  t.equal(tick(900), 0, 'still in progress');
  t.equal(tick(905), 905, 'settled (5 events this tick): one collection, for all 905 events');
  t.equal(collections, 1);
  t.equal(tick(905), 0, 'nothing new: nothing');
  t.equal(tick(960), 0, 'a few more, below the threshold since the last collection');
  t.equal(trim.observe(2000, now + 10), 0, 'ticks closer than tickMs are ignored');
  t.equal(tick(2000), 0, 'the next storm, in progress');
  t.equal(tick(2001), 1096, 'settled again: a second collection');
  t.equal(collections, 2);
});

t.test('a steady trickle of connections never triggers a collection', async (t) => {
  let collections = 0;
  const trim = new HeapTrim(() => collections++, 100, 10, 1000);
  for (let i = 1; i <= 50; i++) trim.observe(i * 20, i * 1000);
  t.equal(collections, 0, '20 events per tick, 1000 in all: never settled');
});

t.test('the tern command collects after a storm of connects and after a storm of disconnects', async (t) => {
  const node = await startCli(['--workers', '1', '--log-level', 'debug', '--heap-trim-connections', '20']);
  t.teardown(() => {
    node.child.kill('SIGKILL');
  });
  const trimmed = (after: number) =>
    node.waitForLog((e) => e.msg === 'heap collected after a storm of connections' && node.logs.indexOf(e) >= after);

  const clients: RawClient[] = [];
  for (let i = 0; i < 25; i++) clients.push((await RawClient.connected(node.port, { clientId: `storm-${i}` })).client);
  const first = await trimmed(0);
  t.ok((first.connectionEvents as number) >= 20, `collected after ${first.connectionEvents} connection events`);

  const mark = node.logs.length;
  await Promise.all(clients.map((c) => c.disconnect()));
  const second = await trimmed(mark);
  t.ok((second.connectionEvents as number) >= 20, `collected again after ${second.connectionEvents} more`);

  node.child.kill('SIGTERM');
  t.equal((await node.exited).code, 0, 'the node stops cleanly');
});
