import { encode, type Packet } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { connectMqttjs } from './support/mqttjs.js';

t.test('PUBLISH QoS 1', async (t) => {
  const { port, stop } = await startBroker();
  t.teardown(stop);
  const connect = async (clientId: string) => {
    return connectMqttjs(t, port, clientId);
  };
  const rawSubscriber = async (clientId: string, subscriptions: { topic: string; qos: 0 | 1 | 2 }[], clean = true) => {
    const { client, connack } = await RawClient.connected(port, { clientId, clean });
    t.teardown(() => client.destroy());
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions });
    const suback = await client.expect('suback');
    return { client, connack, granted: suback.granted };
  };

  await t.test('PUBACK answers the publisher with the same packet id [MQTT-4.3.2-2] [MQTT-2.3.1-6]', async (t) => {
    const { client } = await RawClient.connected(port, { clientId: 'q1-puback' });
    t.teardown(() => client.destroy());
    for (const id of [1, 4242, 65_535]) {
      client.send({
        cmd: 'publish',
        topic: 'q1/puback',
        payload: Buffer.from('x'),
        qos: 1,
        retain: false,
        dup: false,
        messageId: id,
      });
      t.equal((await client.expect('puback')).messageId, id);
    }
  });

  await t.test(
    'a QoS 1 subscriber gets PUBLISH QoS 1 with a packet id; unacknowledged, it is resent with DUP=1 on reconnect [MQTT-4.4.0-1] [MQTT-3.3.1-1]',
    async (t) => {
      const first = await rawSubscriber('q1-redeliver', [{ topic: 'q1/redeliver', qos: 1 }], false);
      const pub = await connect('q1-redeliver-pub');
      await pub.publishAsync('q1/redeliver', 'unacked', { qos: 1 });
      const original = await first.client.expect('publish');
      t.equal(original.qos, 1);
      t.equal(original.dup, false);
      t.type(original.messageId, 'number');
      t.not(original.messageId, 0);
      // Gone without PUBACK.
      first.client.destroy();
      await first.client.waitClosed();

      const second = await RawClient.connected(port, { clientId: 'q1-redeliver', clean: false });
      t.teardown(() => second.client.destroy());
      t.equal(second.connack.sessionPresent, true);
      const resent = await second.client.expect('publish');
      t.equal(resent.payload.toString(), 'unacked');
      t.equal(resent.dup, true, 'DUP=1 on redelivery');
      t.equal(resent.qos, 1);
      t.equal(resent.messageId, original.messageId, 'same packet id');
      second.client.send({ cmd: 'puback', messageId: resent.messageId as number });
      await second.client.disconnect();

      // Acknowledged now: the next reconnect resends nothing; the first packet is a new message.
      const third = await RawClient.connected(port, { clientId: 'q1-redeliver', clean: false });
      t.teardown(() => third.client.destroy());
      await pub.publishAsync('q1/redeliver', 'next', { qos: 1 });
      const next = await third.client.expect('publish');
      t.equal(next.payload.toString(), 'next', 'the acknowledged message is not resent');
      t.equal(next.dup, false);
      third.client.send({ cmd: 'puback', messageId: next.messageId as number });
    },
  );

  await t.test('outbound QoS is min(publish QoS, granted QoS) [MQTT-3.8.4-6]', async (t) => {
    const { client: sub, granted } = await rawSubscriber('q1-min', [
      { topic: 'q1/min/granted0', qos: 0 },
      { topic: 'q1/min/granted1', qos: 1 },
    ]);
    t.same(granted, [0, 1]);
    const pub = await connect('q1-min-pub');

    await pub.publishAsync('q1/min/granted0', 'qos1-to-granted0', { qos: 1 });
    const a = await sub.expect('publish');
    t.equal(a.payload.toString(), 'qos1-to-granted0');
    t.equal(a.qos, 0, 'QoS 1 publish to a QoS 0 subscription arrives at QoS 0');
    t.equal(a.messageId, undefined);

    await pub.publishAsync('q1/min/granted1', 'qos0-to-granted1', { qos: 0 });
    const b = await sub.expect('publish');
    t.equal(b.payload.toString(), 'qos0-to-granted1');
    t.equal(b.qos, 0, 'QoS 0 publish to a QoS 1 subscription arrives at QoS 0');

    await pub.publishAsync('q1/min/granted1', 'qos2-to-granted1', { qos: 2 });
    const c = await sub.expect('publish');
    t.equal(c.payload.toString(), 'qos2-to-granted1');
    t.equal(c.qos, 1, 'QoS 2 publish to a QoS 1 subscription arrives at QoS 1');
    sub.send({ cmd: 'puback', messageId: c.messageId as number });
  });

  await t.test(
    "overlapping subscriptions ('a/#' QoS 0, 'a/b' QoS 1) deliver one copy at the highest QoS [MQTT-3.3.5-1]",
    async (t) => {
      const { client: sub, granted } = await rawSubscriber('q1-overlap', [
        { topic: 'q1/a/#', qos: 0 },
        { topic: 'q1/a/b', qos: 1 },
      ]);
      t.same(granted, [0, 1]);
      const pub = await connect('q1-overlap-pub');
      await pub.publishAsync('q1/a/b', 'both-match', { qos: 1 });
      // Matches only 'q1/a/#': a marker after which a second copy would have shown up.
      await pub.publishAsync('q1/a/c', 'marker', { qos: 0 });
      const first = await sub.expect('publish');
      t.equal(first.payload.toString(), 'both-match');
      t.equal(first.qos, 1, 'delivered at the highest granted QoS');
      sub.send({ cmd: 'puback', messageId: first.messageId as number });
      const second = await sub.expect('publish');
      t.equal(second.payload.toString(), 'marker', 'no second copy');
      t.equal(second.qos, 0);
    },
  );

  await t.test('packet ids are not reused while in flight, also after they wrap at 65535 [MQTT-2.3.1-4]', async (t) => {
    const total = 65_600;
    const wide = await startBroker({ maxQueued: total });
    const widePort = wide.port;
    t.teardown(wide.stop);
    const { client: sub } = await RawClient.connected(widePort, { clientId: 'q1-ids' });
    t.teardown(() => sub.destroy());
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q1/ids', qos: 1 }] });
    await sub.expect('suback');

    const { client: pub } = await RawClient.connected(widePort, { clientId: 'q1-ids-pub' });
    t.teardown(() => pub.destroy());
    // All publishes in a few writes; the broker queues what does not fit the window.
    const batch: Buffer[] = [];
    for (let i = 0; i < total; i++) {
      const packet: Packet = {
        cmd: 'publish',
        topic: 'q1/ids',
        payload: Buffer.from(String(i)),
        qos: 1,
        retain: false,
        dup: false,
        messageId: (i % 65_535) + 1,
      };
      batch.push(encode(packet, 4));
      if (batch.length === 4096 || i === total - 1) pub.sendBytes(Buffer.concat(batch.splice(0)));
    }

    // The first message is never acknowledged: its id stays in flight through the wrap.
    const held = await sub.expect('publish');
    t.equal(held.payload.toString(), '0');
    const heldId = held.messageId as number;
    let reused = 0;
    let wrapped = false;
    let last = heldId;
    let outOfOrder = 0;
    for (let i = 1; i < total; i++) {
      const p = await sub.expect('publish');
      const id = p.messageId as number;
      if (id === heldId) reused++;
      if (id < last) wrapped = true;
      last = id;
      if (p.payload.toString() !== String(i)) outOfOrder++;
      sub.send({ cmd: 'puback', messageId: id });
    }
    t.equal(wrapped, true, 'the id space wrapped around');
    t.equal(reused, 0, 'the unacknowledged id was skipped');
    t.equal(outOfOrder, 0, 'every message arrived, in order');
    // PINGRESP comes after the broker has handled every PUBACK sent before the PINGREQ.
    sub.send({ cmd: 'pingreq' });
    await sub.expect('pingresp');
    t.equal((await wide.session('q1-ids'))?.inflight, 1, 'only the held message is still in flight');
  });
});
