import t from 'tap';
import { RouteTable } from '../src/index.js';

t.test('a member is listed once per match, however many of its filters match', async (t) => {
  const routes = new RouteTable();
  t.equal(routes.add('a/#', 1), true);
  t.equal(routes.add('a/+', 1), true);
  t.equal(routes.add('a/b', 2), true);
  t.equal(routes.add('a/b', 2), false, 'adding again changes nothing');
  t.same([...routes.match('a/b')].sort(), [1, 2]);
  t.same([...routes.match('a/c')], [1]);
  t.same([...routes.match('x')], [], 'never a member without a matching filter');
  t.equal(routes.size, 3);
  t.equal(routes.filterCount, 3);
});

t.test('wildcard rules are those of subscriptions: $ topics, a/# matching a', async (t) => {
  const routes = new RouteTable();
  routes.add('#', 0);
  routes.add('a/#', 3);
  routes.add('$SYS/#', 4);
  t.same([...routes.match('$SYS/broker/uptime')], [4], "'#' does not match a $ topic [MQTT-4.7.2-1]");
  t.same([...routes.match('a')].sort(), [0, 3], "'a/#' matches 'a' [MQTT-4.7.1-2]");
});

t.test('remove and removeMember keep the per-member filter sets in step', async (t) => {
  const routes = new RouteTable();
  routes.add('a', 1);
  routes.add('b', 1);
  routes.add('b', 2);
  t.equal(routes.remove('a', 1), true);
  t.equal(routes.remove('a', 1), false);
  t.same([...routes.filtersOf(1)], ['b']);
  t.equal(routes.removeMember(1), 1);
  t.same([...routes.filtersOf(1)], []);
  t.same([...routes.match('b')], [2]);
  t.equal(routes.removeMember(9), 0);
});

t.test('the result array is reused; many members and many matches stay correct', async (t) => {
  const routes = new RouteTable();
  for (let m = 0; m < 40; m++) routes.add(`t/${m % 4}`, m);
  for (let round = 0; round < 1000; round++) {
    const found = routes.match(`t/${round % 4}`);
    if (found.length !== 10) t.fail(`round ${round}: ${found.length}`);
  }
  t.pass('1000 matches, 10 members each');
  t.throws(() => routes.add('x', -1), RangeError);
});
