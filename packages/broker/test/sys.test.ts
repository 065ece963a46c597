import { VERSION } from '@tern/broker';
import type { PublishPacket } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';

/** Every topic the broker publishes, as named in sys-topics.ts. */
const SYS_TOPICS = [
  '$SYS/broker/version',
  '$SYS/broker/uptime',
  '$SYS/broker/clients/connected',
  '$SYS/broker/clients/disconnected',
  '$SYS/broker/clients/total',
  '$SYS/broker/clients/maximum',
  '$SYS/broker/messages/received',
  '$SYS/broker/messages/sent',
  '$SYS/broker/publish/messages/received',
  '$SYS/broker/publish/messages/sent',
  '$SYS/broker/publish/messages/dropped',
  '$SYS/broker/bytes/received',
  '$SYS/broker/bytes/sent',
  '$SYS/broker/subscriptions/count',
  '$SYS/broker/retained messages/count',
  '$SYS/broker/store/messages/count',
];

/**
 * Whether `filter` matches `topic` [MQTT-4.7.1-2] [MQTT-4.7.1-3]; a leading wildcard never
 * matches a topic starting with '$' [MQTT-4.7.2-1].
 */
function matches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('#') || filter.startsWith('+'))) return false;
  const f = filter.split('/');
  const l = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= l.length || (f[i] !== '+' && f[i] !== l[i])) return false;
  }
  return f.length === l.length;
}

t.test('$SYS topics (sysInterval 1)', async (t) => {
  const tb = await startBroker({ sysInterval: 1 });
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
    // The server may send PUBLISHes matching the subscription before its SUBACK (MQTT 3.1.1
    // section 3.8.4): with routing workers a periodic update can come while the SUBACK waits
    // for the other workers to route the new filter. Only a live one that matches may.
    let p = await client.next();
    for (; p.cmd === 'publish'; p = await client.next()) {
      const topic = p.topic;
      t.ok(!p.retain && filters.some((f) => matches(f, topic)), `${topic} before the SUBACK matches ${filters}`);
    }
    if (p.cmd !== 'suback') throw new Error(`expected suback, got ${p.cmd}`);
    t.same(
      p.granted,
      filters.map(() => 0),
    );
    return client;
  };
  /** The next PUBLISH that is a periodic update (RETAIN=0), skipping retained ones. */
  const nextUpdate = async (client: RawClient, topic: string): Promise<PublishPacket> => {
    for (;;) {
      const p = await client.expect('publish');
      if (!p.retain && p.topic === topic) return p;
    }
  };

  // The figures are published once at start: in one thread before the broker listens; with
  // routing workers once the supervisor has had them from every worker. Wait for that.
  const probe = await subscriber('sys-probe', ['$SYS/broker/version']);
  await probe.expect('publish');

  await t.test(
    "a '$SYS/broker/#' subscriber gets every broker figure, retained on subscribe, then periodically",
    async (t) => {
      const sub = await subscriber('sys-all', ['$SYS/broker/#']);
      const values = new Map<string, string>();
      // The retained figures follow the SUBACK.
      while (values.size < SYS_TOPICS.length) {
        const p = await sub.expect('publish');
        t.equal(p.retain, true, `${p.topic} is retained`);
        values.set(p.topic, p.payload.toString());
      }
      t.same([...values.keys()].sort(), [...SYS_TOPICS].sort(), 'every topic of sys-topics.ts');
      t.equal(values.get('$SYS/broker/version'), `tern ${VERSION}`);
      t.match(values.get('$SYS/broker/uptime'), /^\d+ seconds$/);
      for (const topic of SYS_TOPICS.slice(2)) t.match(values.get(topic), /^\d+$/, `${topic} is a count`);

      const connected = await nextUpdate(sub, '$SYS/broker/clients/connected');
      t.ok(Number(connected.payload.toString()) >= 1, 'the update counts this subscriber');
      t.equal(connected.qos, 0);
    },
  );

  await t.test("'#' and '+/broker/#' subscribers never get $SYS topics [MQTT-4.7.2-1]", async (t) => {
    const wild = await subscriber('sys-wild', ['#']);
    const plus = await subscriber('sys-plus', ['+/broker/#']);
    // Subscribed after them: its first periodic update was published to them too.
    const sys = await subscriber('sys-witness', ['$SYS/broker/uptime']);
    await nextUpdate(sys, '$SYS/broker/uptime');

    const { client: pub } = await RawClient.connected(port, { clientId: 'sys-marker-pub' });
    t.teardown(() => pub.destroy());
    pub.send({
      cmd: 'publish',
      topic: 'x/broker/marker',
      payload: Buffer.from('m'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 1,
    });
    await pub.expect('puback');
    t.equal((await wild.expect('publish')).topic, 'x/broker/marker', "'#' got no $SYS message, retained or periodic");
    t.equal((await plus.expect('publish')).topic, 'x/broker/marker', "'+/broker/#' got no $SYS message");
  });

  await t.test("a client's PUBLISH to '$SYS/foo' is acknowledged and goes nowhere", async (t) => {
    const sub = await subscriber('sys-foo-sub', ['$SYS/foo', '$SYS/foo/#', 'sys/marker']);
    const { client: pub } = await RawClient.connected(port, { clientId: 'sys-foo-pub' });
    t.teardown(() => pub.destroy());
    const publish = (qos: 0 | 1 | 2, messageId?: number) =>
      pub.send({
        cmd: 'publish',
        topic: '$SYS/foo',
        payload: Buffer.from(`qos${qos}`),
        qos,
        retain: true,
        dup: false,
        messageId,
      });

    publish(0);
    publish(1, 11);
    t.equal((await pub.expect('puback')).messageId, 11, 'QoS 1: PUBACK');
    publish(2, 12);
    t.equal((await pub.expect('pubrec')).messageId, 12, 'QoS 2: PUBREC');
    pub.send({ cmd: 'pubrel', messageId: 12 });
    t.equal((await pub.expect('pubcomp')).messageId, 12, 'QoS 2: PUBCOMP');
    pub.send({
      cmd: 'publish',
      topic: 'sys/marker',
      payload: Buffer.from('m'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 13,
    });
    await pub.expect('puback');

    t.equal((await sub.expect('publish')).topic, 'sys/marker', 'nothing was delivered for $SYS/foo');
    if (tb.broker !== null) t.equal(tb.broker.retained.has('$SYS/foo'), false, 'nor retained');
    const late = await subscriber('sys-foo-late', ['$SYS/foo']);
    late.send({ cmd: 'pingreq' });
    t.equal((await late.next()).cmd, 'pingresp', 'a new subscriber gets no retained $SYS/foo');
  });
});
