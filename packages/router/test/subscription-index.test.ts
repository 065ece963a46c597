import t from 'tap';
import { SubscriptionIndex } from '../src/index.js';
import { randomFilter, randomTopic, referenceMatch, seededRandom } from './fixtures/reference.js';

/** Every (key, filter) the index visits for `topic`, sorted, as 'key filter' strings. */
function matches<T>(index: SubscriptionIndex<T>, topic: string): string[] {
  const out: string[] = [];
  index.match(topic, (key, _value, filter) => out.push(`${key} ${filter}`));
  return out.sort();
}

// [filter, topic, matches?]: the examples of MQTT 3.1.1 section 4.7, then edge cases.
const TABLE: [string, string, boolean][] = [
  // 4.7.1.2 multi-level wildcard
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/tennis/player1/#', 'sport/tennis/player2', false],
  ['sport/tennis/player1/#', 'sport/tennis', false],
  ['sport/#', 'sport', true],
  ['#', 'sport/tennis/player1', true],
  ['#', 'sport', true],
  ['#', '/', true],
  // 4.7.1.3 single-level wildcard
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player2', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  ['+', 'sport', true],
  ['+', '/finance', false],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+/tennis/#', 'sport/tennis/player1', true],
  ['+/tennis/#', 'sport/tennis', true],
  ['sport/+/player1', 'sport/tennis/player1', true],
  // 4.7.2 topics beginning with $ [MQTT-4.7.2-1]
  ['#', '$SYS/monitor/Clients', false],
  ['#', '$SYS', false],
  ['+', '$SYS', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['$SYS/#', '$SYS/monitor/Clients', true],
  ['$SYS/#', '$SYS', true],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$SYS/+/Clients', '$SYS/monitor/Clients', true],
  ['a/$x', 'a/$x', true],
  ['a/+', 'a/$x', true],
  ['a/#', 'a/$x/y', true],
  // literal matching: case, spaces, empty levels
  ['sport/tennis', 'sport/tennis', true],
  ['sport/tennis', 'Sport/tennis', false],
  ['sport/tennis', 'sport/tennis/', false],
  ['sport tennis', 'sport tennis', true],
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/+/b', 'a//b', true],
  ['/a', '/a', true],
  ['/a', 'a', false],
  ['+/a', '/a', true],
  ['a/', 'a/', true],
  ['a/', 'a', false],
  ['a/+', 'a/', true],
  ['a/#', 'a/', true],
  ['//', '//', true],
  ['+/+/+', '//', true],
  ['+/+', '//', false],
];

t.test('matching: MQTT 3.1.1 section 4.7 examples and edge cases', async (t) => {
  for (const [filter, topic, expected] of TABLE) {
    t.equal(referenceMatch(filter, topic), expected, `reference: ${filter} vs ${topic}`);
    const index = new SubscriptionIndex<number>();
    index.add(filter, 'c1', 1);
    t.same(
      matches(index, topic),
      expected ? [`c1 ${filter}`] : [],
      `${filter} ${expected ? 'matches' : 'does not match'} ${topic}`,
    );
  }
});

t.test('all table filters in one index match exactly the expected ones', async (t) => {
  const index = new SubscriptionIndex<number>();
  const filters = [...new Set(TABLE.map((row) => row[0]))];
  for (const f of filters) index.add(f, 'c', 0);
  for (const topic of new Set(TABLE.map((row) => row[1]))) {
    const expected = filters
      .filter((f) => referenceMatch(f, topic))
      .map((f) => `c ${f}`)
      .sort();
    t.same(matches(index, topic), expected, topic);
  }
});

t.test('add, replace, get, has, remove', async (t) => {
  const index = new SubscriptionIndex<{ qos: number }>();
  t.equal(index.size, 0);
  t.equal(index.add('a/b', 'c1', { qos: 0 }), true, 'new pair');
  t.equal(index.add('a/b', 'c1', { qos: 1 }), false, 'same pair replaces');
  t.same(index.get('a/b', 'c1'), { qos: 1 }, 'value replaced');
  t.equal(index.size, 1);
  t.equal(index.filterCount, 1);
  t.equal(index.add('a/b', 'c2', { qos: 2 }), true);
  t.equal(index.add('a/+', 'c1', { qos: 0 }), true);
  t.equal(index.size, 3);
  t.equal(index.filterCount, 2);
  t.equal(index.has('a/b', 'c2'), true);
  t.equal(index.has('a/b', 'c3'), false);
  t.equal(index.has('a', 'c1'), false, 'an interior node is not a filter');
  t.equal(index.has('a/#', 'c1'), false);
  t.equal(index.get('x/y', 'c1'), undefined);

  const seen: string[] = [];
  index.match('a/b', (key, value, filter) => seen.push(`${key} ${filter} ${value.qos}`));
  t.same(seen.sort(), ['c1 a/+ 0', 'c1 a/b 1', 'c2 a/b 2'], 'one visit per (key, filter), overlaps included');

  t.equal(index.remove('a/b', 'c3'), false, 'absent key');
  t.equal(index.remove('x/y', 'c1'), false, 'absent filter');
  t.equal(index.remove('a', 'c1'), false, 'interior node');
  t.equal(index.remove('a/b', 'c1'), true);
  t.equal(index.remove('a/b', 'c1'), false, 'already removed');
  t.same(matches(index, 'a/b'), ['c1 a/+', 'c2 a/b']);
  t.equal(index.filterCount, 2);
  t.equal(index.remove('a/b', 'c2'), true);
  t.equal(index.filterCount, 1);
  t.equal(index.remove('a/+', 'c1'), true);
  t.equal(index.size, 0);
  t.equal(index.filterCount, 0);
  t.equal(index.nodeCount, 0, 'every node pruned');
  t.same(matches(index, 'a/b'), []);
});

t.test('remove prunes only nodes left empty', async (t) => {
  const index = new SubscriptionIndex<number>();
  index.add('a/b/c', 'k', 0);
  index.add('a/b', 'k', 0);
  index.add('a/+/#', 'k', 0);
  index.add('a/#', 'k', 0);
  t.equal(index.nodeCount, 6, 'a, b, c, +, +/#, #');
  index.remove('a/b/c', 'k');
  t.equal(index.nodeCount, 5, 'c pruned, a/b kept (it is a filter)');
  index.remove('a/+/#', 'k');
  t.equal(index.nodeCount, 3, "'+' and its '#' pruned");
  index.remove('a/b', 'k');
  t.equal(index.nodeCount, 2, "b pruned, a kept for 'a/#'");
  t.same(matches(index, 'a'), ['k a/#']);
  index.remove('a/#', 'k');
  t.equal(index.nodeCount, 0);
  index.add('#', 'k', 0);
  index.add('+', 'k', 0);
  index.add('', 'k', 0);
  t.equal(index.nodeCount, 3);
  t.same(matches(index, ''), ['k ', 'k #', 'k +'], 'the empty topic is one empty level');
  index.remove('#', 'k');
  index.remove('+', 'k');
  index.remove('', 'k');
  t.equal(index.nodeCount, 0);
});

t.test('churn does not grow the trie', async (t) => {
  const index = new SubscriptionIndex<number>();
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 200; i++) index.add(`dev/${round}/${i}/+/state`, `c${i}`, i);
    for (let i = 0; i < 200; i++) index.remove(`dev/${round}/${i}/+/state`, `c${i}`);
  }
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0);
});

t.test('many subscribers on one filter', async (t) => {
  const index = new SubscriptionIndex<number>();
  const n = 1000;
  let added = 0;
  for (let i = 0; i < n; i++) if (index.add('fan/out', `c${i}`, i)) added++;
  t.equal(added, n, 'all new');
  let replaced = 0;
  for (let i = 0; i < n; i += 3) if (!index.add('fan/out', `c${i}`, -i)) replaced++;
  t.equal(replaced, Math.ceil(n / 3), 'replacements are not new');
  t.equal(index.size, n);
  t.equal(index.filterCount, 1);
  const seen = new Map<string, number>();
  index.match('fan/out', (key, value) => seen.set(key, value));
  t.equal(seen.size, n, 'every subscriber visited once');
  t.equal(seen.get('c3'), -3, 'replaced value');
  t.equal(seen.get('c4'), 4);

  // Remove the even ones, in an order that exercises swap-removal from the middle.
  let removed = 0;
  for (let i = 0; i < n; i += 2) if (index.remove('fan/out', `c${i}`)) removed++;
  t.equal(removed, n / 2);
  t.equal(index.size, n / 2);
  const left: string[] = [];
  index.match('fan/out', (key, value) => {
    left.push(key);
    if (value !== (Number(key.slice(1)) % 3 === 0 ? -Number(key.slice(1)) : Number(key.slice(1))))
      t.fail(`value of ${key}`);
  });
  t.same(
    left.sort(),
    Array.from({ length: n / 2 }, (_, j) => `c${2 * j + 1}`).sort(),
    'the odd ones are left, values intact',
  );
  let wrong = 0;
  for (let i = 0; i < n; i++) if (index.has('fan/out', `c${i}`) !== (i % 2 === 1)) wrong++;
  t.equal(wrong, 0, 'has() agrees after removals');
  for (let i = 1; i < n; i += 2) index.remove('fan/out', `c${i}`);
  t.equal(index.size, 0);
  t.equal(index.nodeCount, 0);
});

t.test('a visitor may call match again', async (t) => {
  const index = new SubscriptionIndex<string>();
  index.add('a/+', 'outer', 'x/y');
  index.add('a/#', 'outer', 'x/#');
  index.add('x/+', 'inner', '');
  index.add('x/y', 'inner', '');
  const seen: string[] = [];
  index.match('a/b', (key, value, filter) => {
    seen.push(`${key} ${filter}`);
    index.match('x/y', (k, _v, f) => seen.push(`  ${k} ${f}`));
    t.equal(value.length > 0, true);
  });
  t.equal(seen.length, 6);
  t.same(seen.filter((s) => !s.startsWith(' ')).sort(), ['outer a/#', 'outer a/+']);
  t.same(matches(index, 'a/b'), ['outer a/#', 'outer a/+'], 'outer walk state restored');
});

t.test('a visitor that throws leaves the index usable', async (t) => {
  const index = new SubscriptionIndex<number>();
  index.add('a/+', 'k', 0);
  index.add('a/b', 'k', 0);
  t.throws(() =>
    index.match('a/b', () => {
      throw new Error('boom');
    }),
  );
  t.same(matches(index, 'a/b'), ['k a/+', 'k a/b']);
});

t.test("'#' anywhere but last is refused", async (t) => {
  const index = new SubscriptionIndex<number>();
  t.throws(() => index.add('a/#/b', 'k', 0), RangeError);
  t.equal(index.has('a/#/b', 'k'), false);
  t.equal(index.remove('a/#/b', 'k'), false);
});

t.test('clear empties the index', async (t) => {
  const index = new SubscriptionIndex<number>();
  index.add('a/b', 'k', 0);
  index.add('#', 'k', 0);
  index.clear();
  t.equal(index.size, 0);
  t.equal(index.filterCount, 0);
  t.equal(index.nodeCount, 0);
  t.same(matches(index, 'a/b'), []);
});

t.test('randomized: the trie agrees with the reference matcher', async (t) => {
  const rnd = seededRandom(0x7e57);
  const index = new SubscriptionIndex<number>();
  const pairs = new Map<string, [string, string]>();
  for (let i = 0; i < 3000; i++) {
    const filter = randomFilter(rnd);
    const key = `c${Math.floor(rnd() * 40)}`;
    const id = `${key} ${filter}`;
    if (index.add(filter, key, i) === pairs.has(id)) t.fail(`add ${id}: wrong new/replaced answer`);
    pairs.set(id, [key, filter]);
  }
  t.equal(index.size, pairs.size);
  t.equal(index.filterCount, new Set([...pairs.values()].map((p) => p[1])).size);

  const topics = Array.from({ length: 3000 }, () => randomTopic(rnd));
  const check = (label: string): void => {
    let mismatches = 0;
    let matched = 0;
    for (const topic of topics) {
      const expected: string[] = [];
      for (const [id, [, filter]] of pairs) if (referenceMatch(filter, topic)) expected.push(id);
      expected.sort();
      const actual = matches(index, topic);
      matched += actual.length;
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        if (mismatches++ < 5) t.same(actual, expected, `${label}: ${JSON.stringify(topic)}`);
      }
    }
    t.equal(mismatches, 0, `${label}: ${topics.length} topics agree (${matched} matches)`);
  };
  check('after adds');

  // Remove about half, then check again: pruning must not cut live branches.
  for (const [id, [key, filter]] of [...pairs]) {
    if (rnd() < 0.5) {
      if (!index.remove(filter, key)) t.fail(`remove ${id}`);
      pairs.delete(id);
    }
  }
  t.equal(index.size, pairs.size);
  check('after removing half');

  for (const [key, filter] of pairs.values()) index.remove(filter, key);
  t.equal(index.size, 0);
  t.equal(index.filterCount, 0);
  t.equal(index.nodeCount, 0, 'everything pruned');
});
