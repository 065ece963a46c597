import type { PublishPacket, QoS } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { connectMqttjs } from './support/mqttjs.js';

t.test('SUBSCRIBE and UNSUBSCRIBE', async (t) => {
  const { port, logs, stop } = await startBroker();
  t.teardown(stop);
  const connectRaw = async (clientId: string) => {
    const { client } = await RawClient.connected(port, { clientId });
    t.teardown(() => client.destroy());
    return client;
  };
  const connectMqtt = async (clientId: string) => {
    return connectMqttjs(t, port, clientId);
  };
  /** PINGRESP comes after everything the broker wrote to this client before it read the PINGREQ. */
  const nextAfterPing = async (client: RawClient) => {
    client.send({ cmd: 'pingreq' });
    return client.next();
  };

  await t.test(
    'SUBACK grants the requested QoS per filter, in order, with the SUBSCRIBE packet id [MQTT-3.8.4-2] [MQTT-3.8.4-5] [MQTT-2.3.1-7]',
    async (t) => {
      const sub = await connectRaw('sub-grant');
      sub.send({
        cmd: 'subscribe',
        messageId: 777,
        subscriptions: [
          { topic: 'sub/grant/two', qos: 2 },
          { topic: 'sub/grant/zero', qos: 0 },
          { topic: 'sub/grant/one', qos: 1 },
        ],
      });
      const suback = await sub.expect('suback');
      t.equal(suback.messageId, 777);
      t.same(suback.granted, [2, 0, 1]);
    },
  );

  await t.test(
    "'$share/...' filters are shared subscriptions for 3.1.1 clients too; a malformed one gets 0x80",
    async (t) => {
      const sub = await connectRaw('sub-share');
      sub.send({
        cmd: 'subscribe',
        messageId: 9,
        subscriptions: [
          { topic: '$share/group/sub/share', qos: 1 },
          { topic: 'sub/share', qos: 1 },
          { topic: '$share/group', qos: 1 },
        ],
      });
      const suback = await sub.expect('suback');
      t.equal(suback.messageId, 9);
      t.same(suback.granted, [1, 1, 0x80], 'no topic filter after the share name [MQTT-4.8.2-2]');
      const pub = await connectMqtt('sub-share-pub');
      await pub.publishAsync('sub/share', 'once', { qos: 0 });
      // Its shared subscription (it is the group's only member) and its own: one copy each.
      t.equal(((await sub.expect('publish')) as PublishPacket).payload.toString(), 'once');
      t.equal(((await sub.expect('publish')) as PublishPacket).payload.toString(), 'once');
      t.equal((await nextAfterPing(sub)).cmd, 'pingresp', 'and no more');
    },
  );

  await t.test('UNSUBSCRIBE stops delivery; UNSUBACK has the packet id [MQTT-3.10.4-2] [MQTT-3.10.4-4]', async (t) => {
    const sub = await connectRaw('sub-unsub');
    sub.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [
        { topic: 'sub/unsub/t', qos: 1 },
        { topic: 'sub/unsub/marker', qos: 0 },
      ],
    });
    await sub.expect('suback');
    const pub = await connectMqtt('sub-unsub-pub');
    await pub.publishAsync('sub/unsub/t', 'before', { qos: 0 });
    t.equal((await sub.expect('publish')).payload.toString(), 'before');

    sub.send({ cmd: 'unsubscribe', messageId: 4321, unsubscriptions: ['sub/unsub/t'] });
    t.equal((await sub.expect('unsuback')).messageId, 4321);
    await pub.publishAsync('sub/unsub/t', 'after', { qos: 1 });
    await pub.publishAsync('sub/unsub/marker', 'marker', { qos: 0 });
    t.equal((await sub.expect('publish')).payload.toString(), 'marker', "'after' was not delivered");
  });

  await t.test('UNSUBACK also answers a filter that was never subscribed [MQTT-3.10.4-5]', async (t) => {
    const sub = await connectRaw('sub-unsub-none');
    sub.send({ cmd: 'unsubscribe', messageId: 65_535, unsubscriptions: ['never/subscribed', 'nor/+/this'] });
    t.equal((await sub.expect('unsuback')).messageId, 65_535);
  });

  await t.test(
    'SUBSCRIBE to a filter already held replaces its QoS and resends the retained message [MQTT-3.8.4-3]',
    async (t) => {
      const pub = await connectMqtt('sub-replace-pub');
      await pub.publishAsync('sub/replace', 'retained', { qos: 1, retain: true });
      const sub = await connectRaw('sub-replace');

      const subscribe = async (messageId: number, qos: QoS) => {
        sub.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic: 'sub/replace', qos }] });
        const suback = await sub.expect('suback');
        t.equal(suback.messageId, messageId);
        t.same(suback.granted, [qos]);
        return sub.expect('publish');
      };
      const atQos0 = await subscribe(1, 0);
      t.equal(atQos0.payload.toString(), 'retained');
      t.equal(atQos0.qos, 0);
      t.equal(atQos0.retain, true);

      const atQos1 = await subscribe(2, 1);
      t.equal(atQos1.payload.toString(), 'retained', 'the retained message is sent again');
      t.equal(atQos1.qos, 1, 'at the new QoS');
      t.equal(atQos1.retain, true);
      sub.send({ cmd: 'puback', messageId: atQos1.messageId as number });

      await pub.publishAsync('sub/replace', 'live', { qos: 1 });
      const live = await sub.expect('publish');
      t.equal(live.payload.toString(), 'live');
      t.equal(live.qos, 1, 'the replaced subscription delivers at the new QoS');
      sub.send({ cmd: 'puback', messageId: live.messageId as number });
      t.equal((await nextAfterPing(sub)).cmd, 'pingresp', 'one subscription, one copy');
      // Leave no retained message for the other tests of this broker.
      await pub.publishAsync('sub/replace', '', { qos: 1, retain: true });
    },
  );

  for (const [filter, code, specId] of [
    ['a/#/b', 'TERN_PROTO_FILTER_HASH', 'MQTT-4.7.1-2'],
    ['a/b#', 'TERN_PROTO_FILTER_HASH', 'MQTT-4.7.1-2'],
    ['a/b+/c', 'TERN_PROTO_FILTER_PLUS', 'MQTT-4.7.1-3'],
  ] as const) {
    await t.test(
      `SUBSCRIBE with the invalid filter '${filter}' closes the connection with a log line [${specId}] [MQTT-4.8.0-1]`,
      async (t) => {
        const clientId = `sub-invalid-${code}-${filter}`;
        const { client } = await RawClient.connected(port, { clientId });
        t.teardown(() => client.destroy());
        client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] });
        await client.waitClosed();
        const line = await logs.waitFor((l) => l.code === code && l.clientId === clientId);
        t.match(line.msg, /^closing connection/);
        t.ok(line.msg.includes(JSON.stringify(filter)), 'the line names the filter');
        t.equal(line.specId, specId);
        t.equal(client.pending.filter((p) => p.cmd === 'suback').length, 0, 'no SUBACK');
      },
    );
  }
});
