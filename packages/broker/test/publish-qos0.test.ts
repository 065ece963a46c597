import { RawClient, startBroker } from '@tern/testkit';
import type { MqttClient } from 'mqtt';
import t from 'tap';
import { connectMqttjs, settledMqttjs } from './support/mqttjs.js';

interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

/** The next `count` messages an MQTT.js client receives, in order. */
function messages(client: MqttClient, count: number): Promise<Received[]> {
  return new Promise((resolve) => {
    const out: Received[] = [];
    const on = (topic: string, payload: Buffer, packet: { qos: number; retain: boolean }): void => {
      out.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
      if (out.length < count) return;
      client.off('message', on);
      resolve(out);
    };
    client.on('message', on);
  });
}

t.test('PUBLISH QoS 0', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);
  const connect = async (clientId: string) => {
    return connectMqttjs(t, port, clientId);
  };

  await t.test('a QoS 0 message reaches its one subscriber, without a packet id [MQTT-2.3.1-5]', async (t) => {
    const { client: sub } = await RawClient.connected(port, { clientId: 'q0-one-sub' });
    t.teardown(() => sub.destroy());
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q0/one', qos: 0 }] });
    t.same((await sub.expect('suback')).granted, [0]);
    const pub = await connect('q0-one-pub');
    await pub.publishAsync('q0/one', 'hello', { qos: 0 });
    const msg = await sub.expect('publish');
    t.equal(msg.topic, 'q0/one');
    t.equal(msg.payload.toString(), 'hello');
    t.equal(msg.qos, 0);
    t.equal(msg.dup, false);
    t.equal(msg.retain, false);
    t.equal(msg.messageId, undefined, 'no packet id on QoS 0');
  });

  await t.test('a QoS 0 message reaches every matching subscriber exactly once', async (t) => {
    const subs = await Promise.all([1, 2, 3, 4, 5].map((i) => connect(`q0-many-sub-${i}`)));
    await Promise.all(subs.map((s) => s.subscribeAsync('q0/many', { qos: 0 })));
    const got = subs.map((s) => messages(s, 2));
    const pub = await connect('q0-many-pub');
    await pub.publishAsync('q0/many', 'one', { qos: 0 });
    // Order per publisher: 'end' arrives after 'one', so a second copy of 'one' would show.
    await pub.publishAsync('q0/many', 'end', { qos: 0 });
    const all = await Promise.all(got);
    for (const [i, messages] of all.entries()) {
      t.same(
        messages.map((m) => m.payload),
        ['one', 'end'],
        `subscriber ${i + 1} got each message once`,
      );
      t.ok(
        messages.every((m) => m.qos === 0 && !m.retain),
        `subscriber ${i + 1} got QoS 0, RETAIN 0`,
      );
    }
  });

  await t.test('a QoS 0 message is not queued for an offline persistent session', async (t) => {
    const first = await RawClient.connected(port, { clientId: 'q0-offline', clean: false });
    first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q0/offline', qos: 1 }] });
    t.same((await first.client.expect('suback')).granted, [1]);
    await first.client.disconnect();

    const dropped = (await tb.stats()).counters.messagesDropped['offline-qos0'];
    const pub = await connect('q0-offline-pub');
    await pub.publishAsync('q0/offline', 'qos0-while-away', { qos: 0 });
    // QoS 1 from the same publisher, after: it is queued, and it must be the first thing resent.
    await pub.publishAsync('q0/offline', 'qos1-while-away', { qos: 1 });
    // Both have reached the offline session (with routing workers, maybe on another worker).
    await settledMqttjs(pub);
    t.equal(
      (await tb.stats()).counters.messagesDropped['offline-qos0'],
      dropped + 1,
      'the QoS 0 message was counted as dropped',
    );

    const again = await RawClient.connected(port, { clientId: 'q0-offline', clean: false });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, true);
    const msg = await again.client.expect('publish');
    t.equal(msg.payload.toString(), 'qos1-while-away', 'the QoS 0 message was not kept');
    t.equal(msg.qos, 1);
    again.client.send({ cmd: 'puback', messageId: msg.messageId as number });
    again.client.send({ cmd: 'pingreq' });
    await again.client.expect('pingresp');
  });

  await t.test('order is preserved for 1000 messages from one publisher [MQTT-4.6.0-5] [MQTT-4.6.0-6]', async (t) => {
    const count = 1000;
    const { client: sub } = await RawClient.connected(port, { clientId: 'q0-order-sub' });
    t.teardown(() => sub.destroy());
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q0/order', qos: 0 }] });
    await sub.expect('suback');
    const pub = await connect('q0-order-pub');
    for (let i = 0; i < count; i++) pub.publish('q0/order', String(i), { qos: 0 });
    const received: number[] = [];
    for (let i = 0; i < count; i++) received.push(Number((await sub.expect('publish')).payload.toString()));
    t.same(
      received,
      Array.from({ length: count }, (_, i) => i),
      'received 0..999 in publish order',
    );
  });
});
