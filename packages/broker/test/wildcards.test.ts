import { Message } from '@tern/session';
import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { connectMqttjs } from './support/mqttjs.js';

/** Topics of the PUBLISHes received up to and including the first on `last`. */
async function topicsUntil(client: RawClient, last: string): Promise<string[]> {
  const topics: string[] = [];
  for (;;) {
    const p = await client.expect('publish');
    topics.push(p.topic);
    if (p.topic === last) return topics;
  }
}

t.test('topic wildcards', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);
  const subscriber = async (clientId: string, filters: string[]) => {
    const { client } = await RawClient.connected(port, { clientId });
    t.teardown(() => client.destroy());
    client.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })),
    });
    t.same(
      (await client.expect('suback')).granted,
      filters.map(() => 0),
      `${clientId} subscribed to ${filters.join(', ')}`,
    );
    return client;
  };
  /**
   * Publishes as the broker itself, on the path closed to clients for $SYS: Broker.publish in
   * one thread; with routing workers the supervisor's $SYS path (worker 0 publishes each value
   * retained, and every worker gets a copy). There a message that must not stay retained is
   * deleted in the same turn, so every worker handles both in one batch and none keeps it.
   * Resolves once worker 0 has published and sent its copies on: it answers a later request
   * on the same channel after that.
   */
  const brokerPublish = async (messages: [topic: string, payload: string][], retain: boolean) => {
    if (tb.broker !== null) {
      for (const [topic, payload] of messages) {
        tb.broker.publish(new Message(topic, Buffer.from(payload), 0, retain, ''));
      }
      return;
    }
    const sys = tb.supervisor as unknown as { publishSys(values: [string, string][]): void };
    sys.publishSys(retain ? messages : [...messages, ...messages.map(([topic]): [string, string] => [topic, ''])]);
    await tb.stats();
  };
  const publisher = async (clientId: string) => {
    const client = await connectMqttjs(t, port, clientId);
    return async (topics: string[]) => {
      for (const topic of topics) await client.publishAsync(topic, topic, { qos: 0 });
    };
  };

  await t.test("'+' matches exactly one level, an empty one included [MQTT-4.7.1-3]", async (t) => {
    const sub = await subscriber('wc-plus', ['w/+/c', 'w/end']);
    const publish = await publisher('wc-plus-pub');
    await publish(['w/b/c', 'w/b/x/c', 'w/c', 'w//c', 'w/b/c/d', 'x/b/c', 'w/end']);
    t.same(await topicsUntil(sub, 'w/end'), ['w/b/c', 'w//c', 'w/end']);
  });

  await t.test("'+/+' matches two-level topics, a leading empty level included", async (t) => {
    const sub = await subscriber('wc-plus-plus', ['+/+']);
    const publish = await publisher('wc-plus-plus-pub');
    await publish(['p', '/p', 'p/q', 'p/q/r', 'p/', 'pp/end']);
    t.same(await topicsUntil(sub, 'pp/end'), ['/p', 'p/q', 'p/', 'pp/end']);
  });

  await t.test("'a/#' matches 'a' itself and every level below [MQTT-4.7.1-2]", async (t) => {
    const sub = await subscriber('wc-hash', ['h/#']);
    const publish = await publisher('wc-hash-pub');
    await publish(['h', 'hx', 'h/x', 'other/h', 'h/x/y/z', 'h/', 'h/end']);
    t.same(await topicsUntil(sub, 'h/end'), ['h', 'h/x', 'h/x/y/z', 'h/', 'h/end']);
  });

  await t.test("'#' alone matches every topic not starting with '$'", async (t) => {
    const sub = await subscriber('wc-all', ['#']);
    const publish = await publisher('wc-all-pub');
    await publish(['x', '/', 'x/y/z', '$dollar/x', 'all/end']);
    t.same(await topicsUntil(sub, 'all/end'), ['x', '/', 'x/y/z', 'all/end']);
  });

  await t.test(
    "'$SYS/x' is not matched by '#' or '+/x', only by filters starting with '$SYS' [MQTT-4.7.2-1]",
    async (t) => {
      const wild = await subscriber('wc-sys-wild', ['#']);
      const plus = await subscriber('wc-sys-plus', ['+/x']);
      const sysAll = await subscriber('wc-sys-all', ['$SYS/#']);
      const sysPlus = await subscriber('wc-sys-plus-level', ['$SYS/+']);
      const sysExact = await subscriber('wc-sys-exact', ['$SYS/x']);
      // The broker's own $SYS path (clients may not publish there).
      await brokerPublish(
        [
          ['$SYS/x', 'sys'],
          ['marker/x', 'marker'],
        ],
        false,
      );
      t.same(await topicsUntil(wild, 'marker/x'), ['marker/x'], "'#' did not match $SYS/x");
      t.same(await topicsUntil(plus, 'marker/x'), ['marker/x'], "'+/x' did not match $SYS/x");
      for (const sub of [sysAll, sysPlus, sysExact]) {
        t.equal((await sub.expect('publish')).topic, '$SYS/x');
      }
    },
  );

  await t.test(
    "any topic starting with '$' is kept from leading wildcards, not only $SYS [MQTT-4.7.2-1]",
    async (t) => {
      const wild = await subscriber('wc-dollar-wild', ['#']);
      const plus = await subscriber('wc-dollar-plus', ['+/x', '+/#']);
      const dollar = await subscriber('wc-dollar', ['$app/#']);
      const publish = await publisher('wc-dollar-pub');
      await publish(['$app/x', 'app/x']);
      t.same(await topicsUntil(wild, 'app/x'), ['app/x']);
      t.same(await topicsUntil(plus, 'app/x'), ['app/x']);
      t.equal((await dollar.expect('publish')).topic, '$app/x');
    },
  );

  await t.test(
    "retained messages on '$' topics are not sent to '#', '+/r' or '+/#' on SUBSCRIBE [MQTT-4.7.2-1]",
    async (t) => {
      const pub = await mqtt.connectAsync({
        port,
        host: '127.0.0.1',
        clientId: 'wc-retained-pub',
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      t.teardown(() => pub.endAsync());
      await pub.publishAsync('$app/r', 'dollar', { qos: 1, retain: true });
      await pub.publishAsync('app/r', 'plain', { qos: 1, retain: true });
      await brokerPublish([['$SYS/r', 'sys']], true);
      for (const filters of [['#'], ['+/r'], ['+/#']]) {
        const sub = await subscriber(`wc-retained-${filters.join()}`, filters);
        const p = await sub.expect('publish');
        t.equal(p.topic, 'app/r', `${filters.join()} got the plain retained message`);
        t.equal(p.retain, true);
        sub.send({ cmd: 'pingreq' });
        t.equal((await sub.next()).cmd, 'pingresp', `${filters.join()} got no '$' retained message`);
      }
      const dollar = await subscriber('wc-retained-dollar', ['$app/+', '$SYS/#']);
      const topics = [(await dollar.expect('publish')).topic, (await dollar.expect('publish')).topic];
      t.same(topics, ['$app/r', '$SYS/r'], "filters starting with '$' get them");
      for (const topic of ['$app/r', 'app/r']) await pub.publishAsync(topic, '', { qos: 1, retain: true });
    },
  );
});
