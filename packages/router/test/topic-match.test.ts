import t from 'tap';
import { topicMatchesFilter } from '../src/index.js';
import { randomFilter, randomTopic, referenceMatch, seededRandom } from './fixtures/reference.js';

t.test('one filter against one topic, by the rules of MQTT section 4.7', async (t) => {
  const cases: [filter: string, topic: string, matches: boolean][] = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['#', '$SYS/x', false],
    ['+/x', '$a/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/+/c', 'a//c', true],
    ['a/b', 'a/bc', false],
    ['a/bc', 'a/b', false],
    ['+/+', 'a', false],
    ['a/+', 'a/', true],
    ['/+', '/x', true],
    ['+', 'a/b', false],
    ['a', 'a/b', false],
    ['a/b/#', 'a/b', true],
    ['a/b/#', 'a', false],
    ['+/#', 'a', true],
    ['a/+/#', 'a/b', true],
    ['a/+/#', 'a', false],
  ];
  for (const [filter, topic, expected] of cases) {
    t.equal(topicMatchesFilter(filter, topic), expected, `${filter} vs ${topic}`);
  }
});

t.test('agrees with the reference matcher on random pairs', async (t) => {
  const random = seededRandom(7);
  let disagreements = 0;
  for (let i = 0; i < 20_000; i++) {
    const filter = randomFilter(random);
    const topic = randomTopic(random);
    if (topicMatchesFilter(filter, topic) !== referenceMatch(filter, topic)) disagreements++;
  }
  t.equal(disagreements, 0);
});
