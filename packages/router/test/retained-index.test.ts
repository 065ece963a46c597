import t from 'tap';
import { RetainedIndex } from '../src/index.js';
import { randomFilter, randomTopic, referenceMatch, seededRandom } from './fixtures/reference.js';

function matches<M>(index: RetainedIndex<M>, filter: string): string[] {
  const out: string[] = [];
  index.match(filter, (topic) => out.push(topic));
  return out.sort();
}

// Retained topics for the table below: MQTT 3.1.1 section 4.7's examples and edge cases.
const TOPICS = [
  'sport',
  'sport/',
  'sport/tennis',
  'sport/tennis/player1',
  'sport/tennis/player1/ranking',
  'sport/tennis/player1/score/wimbledon',
  'sport/tennis/player2',
  '/finance',
  'finance',
  '$SYS',
  '$SYS/monitor/Clients',
  '$SYS/broker/uptime',
  'a//b',
  'a/b',
  '/',
  'a/$x',
];

// [filter, the retained topics it must return]
const TABLE: [string, string[]][] = [
  [
    'sport/tennis/player1/#',
    ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon'],
  ],
  [
    'sport/#',
    [
      'sport',
      'sport/',
      'sport/tennis',
      'sport/tennis/player1',
      'sport/tennis/player1/ranking',
      'sport/tennis/player1/score/wimbledon',
      'sport/tennis/player2',
    ],
  ],
  ['sport/tennis/+', ['sport/tennis/player1', 'sport/tennis/player2']],
  ['sport/+', ['sport/', 'sport/tennis']],
  ['+', ['finance', 'sport']],
  ['+/+', ['/', '/finance', 'a/$x', 'a/b', 'sport/', 'sport/tennis']],
  ['/+', ['/', '/finance']],
  ['#', TOPICS.filter((x) => !x.startsWith('$'))],
  ['$SYS/#', ['$SYS', '$SYS/broker/uptime', '$SYS/monitor/Clients']],
  ['+/monitor/Clients', []],
  ['$SYS/monitor/+', ['$SYS/monitor/Clients']],
  ['$SYS', ['$SYS']],
  ['sport/tennis', ['sport/tennis']],
  ['sport/tennis/player3', []],
  ['a/+/b', ['a//b']],
  ['a//b', ['a//b']],
  ['+/#', TOPICS.filter((x) => !x.startsWith('$'))],
  [
    '+/tennis/#',
    [
      'sport/tennis',
      'sport/tennis/player1',
      'sport/tennis/player1/ranking',
      'sport/tennis/player1/score/wimbledon',
      'sport/tennis/player2',
    ],
  ],
  ['a/+', ['a/$x', 'a/b']],
  ['nothing/#', []],
];

t.test('matching: MQTT 3.1.1 section 4.7 examples and edge cases', async (t) => {
  const index = new RetainedIndex<string>();
  for (const topic of TOPICS) index.set(topic, `m:${topic}`);
  for (const [filter, expected] of TABLE) {
    const fromReference = TOPICS.filter((topic) => referenceMatch(filter, topic)).sort();
    t.same(fromReference, [...expected].sort(), `reference agrees with the table for ${filter}`);
    const seen: string[] = [];
    index.match(filter, (topic, message) => {
      if (message !== `m:${topic}`) t.fail(`message of ${topic}`);
      seen.push(topic);
    });
    t.same(seen.sort(), [...expected].sort(), filter);
  }
});

t.test('set, get, has, delete, size', async (t) => {
  const index = new RetainedIndex<{ payload: string }>();
  t.equal(index.size, 0);
  t.equal(index.set('a/b', { payload: '1' }), true, 'new topic');
  t.equal(index.set('a/b', { payload: '2' }), false, 'replaced');
  t.same(index.get('a/b'), { payload: '2' });
  t.equal(index.size, 1);
  t.equal(index.set('a', { payload: '3' }), true, 'a parent of a retained topic');
  t.equal(index.set('a/b/c', { payload: '4' }), true);
  t.equal(index.size, 3);
  t.equal(index.get('a/x'), undefined);
  t.equal(index.has('a/b'), true);
  t.equal(index.has('a/b/c/d'), false);
  t.equal(index.delete('a/x'), false, 'absent');
  t.equal(index.delete('a/b/c/d'), false, 'absent below a retained topic');
  t.equal(index.delete('a/b'), true);
  t.equal(index.delete('a/b'), false, 'already gone');
  t.equal(index.get('a/b'), undefined);
  t.equal(index.has('a/b'), false, 'interior node without a message');
  t.same(matches(index, 'a/#'), ['a', 'a/b/c']);
  t.equal(index.nodeCount, 3, 'a/b kept: a/b/c hangs below it');
  t.equal(index.delete('a/b/c'), true);
  t.equal(index.nodeCount, 1, 'a/b and a/b/c pruned');
  t.equal(index.delete('a'), true);
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0, 'every node pruned');
});

t.test('iteration yields every entry once', async (t) => {
  const index = new RetainedIndex<number>();
  const topics = ['a', 'a/b', 'a//b', '/x', '$SYS/x', 'deep/1/2/3/4'];
  for (const [i, topic] of topics.entries()) index.set(topic, i);
  const viaEntries = [...index.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  t.same(
    viaEntries,
    topics.map((topic, i) => [topic, i] as [string, number]).sort((x, y) => (x[0] < y[0] ? -1 : 1)),
  );
  t.same(new Map(index), new Map(viaEntries), 'the index is iterable');
  t.same([...new RetainedIndex<number>()], []);
});

t.test('deleting the visited topic from inside match is safe', async (t) => {
  const index = new RetainedIndex<number>();
  for (let i = 0; i < 100; i++) index.set(`exp/${i}/v`, i);
  const seen: string[] = [];
  index.match('exp/+/v', (topic, n) => {
    seen.push(topic);
    if (n % 2 === 0) index.delete(topic);
  });
  t.equal(seen.length, 100);
  t.equal(index.size, 50);
  t.same(matches(index, 'exp/#'), Array.from({ length: 50 }, (_, j) => `exp/${2 * j + 1}/v`).sort());
});

t.test('a visitor may call match again', async (t) => {
  const index = new RetainedIndex<number>();
  index.set('a/1', 1);
  index.set('a/2', 2);
  index.set('b/1', 3);
  const seen: string[] = [];
  index.match('a/+', (topic) => {
    seen.push(topic);
    index.match('b/#', (inner) => seen.push(` ${inner}`));
  });
  t.same(seen.sort(), [' b/1', ' b/1', 'a/1', 'a/2']);
  t.same(matches(index, '#'), ['a/1', 'a/2', 'b/1']);
});

t.test('churn does not grow the trie', async (t) => {
  const index = new RetainedIndex<number>();
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 200; i++) index.set(`dev/${round}/${i}/state`, i);
    for (let i = 0; i < 200; i++) index.delete(`dev/${round}/${i}/state`);
  }
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0);
});

t.test('clear empties the index', async (t) => {
  const index = new RetainedIndex<number>();
  index.set('a/b', 1);
  index.clear();
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0);
  t.same(matches(index, '#'), []);
});

t.test('randomized: the trie agrees with the reference matcher', async (t) => {
  const rnd = seededRandom(0x7e7a1);
  const index = new RetainedIndex<number>();
  const stored = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const topic = randomTopic(rnd);
    if (index.set(topic, i) === stored.has(topic)) t.fail(`set ${topic}: wrong new/replaced answer`);
    stored.set(topic, i);
  }
  t.equal(index.size, stored.size);
  const filters = Array.from({ length: 3000 }, () => randomFilter(rnd));
  const check = (label: string): void => {
    let mismatches = 0;
    let matched = 0;
    for (const filter of filters) {
      const expected = [...stored.keys()].filter((topic) => referenceMatch(filter, topic)).sort();
      const seen: string[] = [];
      index.match(filter, (topic, message) => {
        if (stored.get(topic) !== message) t.fail(`${filter}: message of ${topic}`);
        seen.push(topic);
      });
      seen.sort();
      matched += seen.length;
      if (JSON.stringify(seen) !== JSON.stringify(expected)) {
        if (mismatches++ < 5) t.same(seen, expected, `${label}: ${JSON.stringify(filter)}`);
      }
    }
    t.equal(mismatches, 0, `${label}: ${filters.length} filters agree (${matched} matches)`);
  };
  check('after sets');

  for (const topic of [...stored.keys()]) {
    if (rnd() < 0.5) {
      if (!index.delete(topic)) t.fail(`delete ${topic}`);
      stored.delete(topic);
    }
  }
  t.equal(index.size, stored.size);
  check('after deleting half');

  for (const topic of stored.keys()) index.delete(topic);
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0, 'everything pruned');
});
