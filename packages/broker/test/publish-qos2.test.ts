import type { PublishPacket } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';

const publish = (topic: string, payload: string, messageId: number, dup = false): PublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos: 2,
  retain: false,
  dup,
  messageId,
});

t.test('PUBLISH QoS 2', async (t) => {
  const { port, stop } = await startBroker();
  t.teardown(stop);
  const rawSubscriber = async (clientId: string, topic: string, clean = true) => {
    const { client } = await RawClient.connected(port, { clientId, clean });
    t.teardown(() => client.destroy());
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
    t.same((await client.expect('suback')).granted, [2]);
    return client;
  };
  const rawPublisher = async (clientId: string) => {
    const { client } = await RawClient.connected(port, { clientId });
    t.teardown(() => client.destroy());
    return client;
  };

  await t.test(
    'full flow PUBLISH/PUBREC/PUBREL/PUBCOMP in both directions [MQTT-4.3.3-1] [MQTT-4.3.3-2]',
    async (t) => {
      const sub = await rawSubscriber('q2-flow-sub', 'q2/flow');
      const pub = await rawPublisher('q2-flow-pub');

      pub.send(publish('q2/flow', 'exactly-once', 10));
      t.equal((await pub.expect('pubrec')).messageId, 10, 'PUBREC with the PUBLISH id');
      pub.send({ cmd: 'pubrel', messageId: 10 });
      t.equal((await pub.expect('pubcomp')).messageId, 10, 'PUBCOMP with the PUBREL id [MQTT-3.6.4-1]');

      const out = await sub.expect('publish');
      t.equal(out.qos, 2);
      t.equal(out.dup, false);
      t.equal(out.payload.toString(), 'exactly-once');
      const id = out.messageId as number;
      sub.send({ cmd: 'pubrec', messageId: id });
      t.equal((await sub.expect('pubrel')).messageId, id, 'the broker answers PUBREC with PUBREL, same id');
      sub.send({ cmd: 'pubcomp', messageId: id });
      sub.send({ cmd: 'pingreq' });
      await sub.expect('pingresp');
      t.equal(pub.pending.length, 0, 'nothing else reached the publisher');
    },
  );

  await t.test('MQTT.js publisher and subscriber at QoS 2: one message, QoS 2', async (t) => {
    const opts = { port, host: '127.0.0.1', protocolVersion: 4 as const, reconnectPeriod: 0 };
    const sub = await mqtt.connectAsync({ ...opts, clientId: 'q2-mqttjs-sub' });
    t.teardown(() => sub.endAsync());
    const pub = await mqtt.connectAsync({ ...opts, clientId: 'q2-mqttjs-pub' });
    t.teardown(() => pub.endAsync());
    await sub.subscribeAsync('q2/mqttjs', { qos: 2 });
    const got = new Promise<{ topic: string; payload: string; qos: number }[]>((resolve) => {
      const out: { topic: string; payload: string; qos: number }[] = [];
      sub.on('message', (topic, payload, packet) => {
        out.push({ topic, payload: payload.toString(), qos: packet.qos });
        if (out.length === 2) resolve(out);
      });
    });
    await pub.publishAsync('q2/mqttjs', 'one', { qos: 2 });
    await pub.publishAsync('q2/mqttjs', 'two', { qos: 2 });
    t.same(await got, [
      { topic: 'q2/mqttjs', payload: 'one', qos: 2 },
      { topic: 'q2/mqttjs', payload: 'two', qos: 2 },
    ]);
  });

  await t.test(
    'an incoming QoS 2 PUBLISH resent with the same id (DUP=1) before PUBREL is delivered once [MQTT-4.3.3-2]',
    async (t) => {
      const sub = await rawSubscriber('q2-dedup-sub', 'q2/dedup');
      const pub = await rawPublisher('q2-dedup-pub');

      pub.send(publish('q2/dedup', 'once', 20));
      t.equal((await pub.expect('pubrec')).messageId, 20);
      pub.send(publish('q2/dedup', 'once', 20, true));
      t.equal((await pub.expect('pubrec')).messageId, 20, 'the resend is PUBRECed again');
      pub.send(publish('q2/dedup', 'once', 20, true));
      t.equal((await pub.expect('pubrec')).messageId, 20);
      pub.send({ cmd: 'pubrel', messageId: 20 });
      t.equal((await pub.expect('pubcomp')).messageId, 20);
      // Same publisher, same topic, after: a second copy of 'once' would arrive before it.
      pub.send({
        cmd: 'publish',
        topic: 'q2/dedup',
        payload: Buffer.from('marker'),
        qos: 0,
        retain: false,
        dup: false,
      });

      const first = await sub.expect('publish');
      t.equal(first.payload.toString(), 'once');
      const second = await sub.expect('publish');
      t.equal(second.payload.toString(), 'marker', 'the resends were not delivered');
      sub.send({ cmd: 'pubrec', messageId: first.messageId as number });
      t.equal((await sub.expect('pubrel')).messageId, first.messageId);
      sub.send({ cmd: 'pubcomp', messageId: first.messageId as number });
    },
  );

  await t.test('after PUBREL the same packet id starts a new message [MQTT-4.3.3-2]', async (t) => {
    const sub = await rawSubscriber('q2-reuse-sub', 'q2/reuse');
    const pub = await rawPublisher('q2-reuse-pub');
    for (const payload of ['first', 'second']) {
      pub.send(publish('q2/reuse', payload, 30));
      t.equal((await pub.expect('pubrec')).messageId, 30);
      pub.send({ cmd: 'pubrel', messageId: 30 });
      t.equal((await pub.expect('pubcomp')).messageId, 30);
    }
    const delivered = [await sub.expect('publish'), await sub.expect('publish')];
    t.same(
      delivered.map((p) => p.payload.toString()),
      ['first', 'second'],
      'both delivered',
    );
    for (const p of delivered) {
      sub.send({ cmd: 'pubrec', messageId: p.messageId as number });
      t.equal((await sub.expect('pubrel')).messageId, p.messageId);
      sub.send({ cmd: 'pubcomp', messageId: p.messageId as number });
    }
  });

  await t.test(
    'outbound, before PUBREC: reconnect resends the PUBLISH with DUP=1 and the same id [MQTT-4.4.0-1]',
    async (t) => {
      const first = await rawSubscriber('q2-resend-publish', 'q2/resend-publish', false);
      const pub = await rawPublisher('q2-resend-publish-pub');
      pub.send(publish('q2/resend-publish', 'pending', 1));
      await pub.expect('pubrec');
      const original = await first.expect('publish');
      first.destroy();
      await first.waitClosed();

      const { client: again, connack } = await RawClient.connected(port, {
        clientId: 'q2-resend-publish',
        clean: false,
      });
      t.teardown(() => again.destroy());
      t.equal(connack.sessionPresent, true);
      const resent = await again.expect('publish');
      t.equal(resent.messageId, original.messageId, 'same id');
      t.equal(resent.dup, true, 'DUP=1');
      t.equal(resent.qos, 2);
      t.equal(resent.payload.toString(), 'pending');
      again.send({ cmd: 'pubrec', messageId: resent.messageId as number });
      t.equal((await again.expect('pubrel')).messageId, resent.messageId);
      again.send({ cmd: 'pubcomp', messageId: resent.messageId as number });
    },
  );

  await t.test(
    'outbound, after PUBREC: the broker sends PUBREL, and on reconnect resends PUBREL, not PUBLISH [MQTT-4.3.3-1] [MQTT-4.4.0-1]',
    async (t) => {
      const first = await rawSubscriber('q2-resend-pubrel', 'q2/resend-pubrel', false);
      const pub = await rawPublisher('q2-resend-pubrel-pub');
      pub.send(publish('q2/resend-pubrel', 'received', 1));
      await pub.expect('pubrec');
      const original = await first.expect('publish');
      const id = original.messageId as number;
      first.send({ cmd: 'pubrec', messageId: id });
      t.equal((await first.expect('pubrel')).messageId, id, 'PUBREL after PUBREC');
      // Gone without PUBCOMP.
      first.destroy();
      await first.waitClosed();

      const second = await RawClient.connected(port, { clientId: 'q2-resend-pubrel', clean: false });
      t.teardown(() => second.client.destroy());
      t.equal(second.connack.sessionPresent, true);
      const next = await second.client.next();
      t.equal(next.cmd, 'pubrel', 'PUBREL is resent, not the PUBLISH');
      t.equal((next as { messageId: number }).messageId, id, 'same id');
      second.client.send({ cmd: 'pubcomp', messageId: id });
      await second.client.disconnect();

      // Completed: a further reconnect resends nothing before the PINGRESP.
      const third = await RawClient.connected(port, { clientId: 'q2-resend-pubrel', clean: false });
      t.teardown(() => third.client.destroy());
      third.client.send({ cmd: 'pingreq' });
      t.equal((await third.client.next()).cmd, 'pingresp', 'nothing resent after PUBCOMP');
    },
  );
});
