import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, receiveUntil, serverClosed, settled, subscribe, text } from './support/flows.js';

t.test('persistent sessions (cleanSession=0)', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);
  const { client: pub } = await RawClient.connected(port, { clientId: 'ps-publisher' });
  t.teardown(() => pub.destroy());

  /** Connects `id` and waits until the broker is done with it after a DISCONNECT. */
  const away = async (id: string, client: RawClient) => {
    await client.disconnect();
    await serverClosed(tb, id);
  };

  await t.test(
    'messages queued while away arrive on reconnect, in order, once [MQTT-3.2.2-2] [MQTT-3.1.2-5]',
    async (t) => {
      const first = await RawClient.connected(port, { clientId: 'ps-a', clean: false });
      t.equal(first.connack.sessionPresent, false, 'no session yet [MQTT-3.2.2-3]');
      t.same(await subscribe(first.client, { 'ps/a/#': 2 }), [2]);
      await away('ps-a', first.client);

      await publish(pub, 'ps/a/x', 'q1-1', 1);
      await publish(pub, 'ps/a/x', 'q0-1', 0);
      await publish(pub, 'ps/a/y', 'q2-1', 2);
      await publish(pub, 'ps/a/x', 'q1-2', 1);
      await publish(pub, 'ps/a/x', 'q0-2', 0);
      await publish(pub, 'ps/a/y', 'q2-2', 2);

      const { client, connack } = await RawClient.connected(port, { clientId: 'ps-a', clean: false });
      t.teardown(() => client.destroy());
      t.equal(connack.returnCode, 0);
      t.equal(connack.sessionPresent, true, 'session present [MQTT-3.2.2-2]');
      // No SUBSCRIBE on this connection: the marker proves the subscription survived.
      await publish(pub, 'ps/a/marker', 'marker', 1);
      const got = await receiveUntil(client, 'ps/a/marker');
      t.same(
        got.map((p) => `${text(p)}@${p.qos}`),
        ['q1-1@1', 'q2-1@2', 'q1-2@1', 'q2-2@2', 'marker@1'],
        'QoS 1 and 2 in publish order, no QoS 0, no duplicate, then the marker',
      );
      t.ok(
        got.every((p) => !p.dup),
        'first sends, DUP=0',
      );
    },
  );

  await t.test('the session survives repeated absences, with no SUBSCRIBE after the first', async (t) => {
    let client = (await RawClient.connected(port, { clientId: 'ps-a', clean: false })).client;
    for (let round = 1; round <= 3; round++) {
      await away('ps-a', client);
      await publish(pub, 'ps/a/x', `round ${round}`, 1);
      const next = await RawClient.connected(port, { clientId: 'ps-a', clean: false });
      client = next.client;
      t.equal(next.connack.sessionPresent, true, `round ${round}: session present`);
      await publish(pub, 'ps/a/marker', 'marker', 1);
      t.same((await receiveUntil(client, 'ps/a/marker')).map(text), [`round ${round}`, 'marker']);
    }
    client.destroy();
  });

  await t.test(
    'a PUBLISH left unacknowledged is resent with DUP=1 on reconnect [MQTT-4.4.0-1] [MQTT-3.3.1-1]',
    async (t) => {
      const first = await RawClient.connected(port, { clientId: 'ps-e', clean: false });
      await subscribe(first.client, { 'ps/e': 1 });
      await publish(pub, 'ps/e', 'unacked', 1);
      const original = await receive(first.client, false);
      t.equal(original.dup, false);
      await away('ps-e', first.client);

      const { client, connack } = await RawClient.connected(port, { clientId: 'ps-e', clean: false });
      t.teardown(() => client.destroy());
      t.equal(connack.sessionPresent, true);
      const again = await receive(client);
      t.same(
        { text: text(again), id: again.messageId, dup: again.dup },
        { text: 'unacked', id: original.messageId, dup: true },
        'same packet id, DUP=1',
      );
      await publish(pub, 'ps/e', 'marker', 1);
      t.same((await receiveUntil(client, 'ps/e')).map(text), ['marker'], 'acknowledged once, not sent again');
    },
  );

  await t.test('cleanSession=1 discards the stored session [MQTT-3.1.2-6] [MQTT-3.2.2-1]', async (t) => {
    const first = await RawClient.connected(port, { clientId: 'ps-b', clean: false });
    await subscribe(first.client, { 'ps/b/old': 1 });
    await away('ps-b', first.client);
    await publish(pub, 'ps/b/old', 'queued while away', 1);

    const { client, connack } = await RawClient.connected(port, { clientId: 'ps-b', clean: true });
    t.teardown(() => client.destroy());
    t.equal(connack.sessionPresent, false, 'session present 0 [MQTT-3.2.2-1]');
    // The first packet after CONNACK is our SUBACK: nothing queued was delivered.
    t.same(await subscribe(client, { 'ps/b/marker': 1 }), [1]);
    await publish(pub, 'ps/b/old', 'after the clean start', 1);
    await publish(pub, 'ps/b/marker', 'marker', 1);
    t.same(
      (await receiveUntil(client, 'ps/b/marker')).map(text),
      ['marker'],
      'no old message, and the old subscription is gone',
    );
    await away('ps-b', client);
    const again = await RawClient.connected(port, { clientId: 'ps-b', clean: false });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, false, 'the clean session ended with its connection [MQTT-3.1.2-6]');
  });

  await t.test('a cleanSession=1 CONNECT removes the persistent session of its id [MQTT-3.1.2-6]', async (t) => {
    const first = await RawClient.connected(port, { clientId: 'ps-c', clean: false });
    await subscribe(first.client, { 'ps/c/#': 1 });
    await away('ps-c', first.client);
    t.match(await tb.session('ps-c'), { online: false, persistent: true }, 'stored while away');

    const transient = await RawClient.connected(port, { clientId: 'ps-c', clean: true });
    t.equal(transient.connack.sessionPresent, false);
    await away('ps-c', transient.client);
    t.equal(await tb.session('ps-c'), null, 'gone after the clean session ends');

    await publish(pub, 'ps/c/x', 'to nobody', 1);
    const { client, connack } = await RawClient.connected(port, { clientId: 'ps-c', clean: false });
    t.teardown(() => client.destroy());
    t.equal(connack.sessionPresent, false, 'a new session [MQTT-3.2.2-3]');
    await subscribe(client, { 'ps/c/marker': 1 });
    await publish(pub, 'ps/c/marker', 'marker', 1);
    t.same((await receiveUntil(client, 'ps/c/marker')).map(text), ['marker'], 'nothing from before');
  });

  await t.test('1000 messages queued while away are delivered in order', async (t) => {
    const first = await RawClient.connected(port, { clientId: 'ps-d', clean: false });
    await subscribe(first.client, { 'ps/d': 1 });
    await away('ps-d', first.client);
    const count = 1000;
    // All sent at once, then every PUBACK awaited: the broker holds them all before we reconnect.
    for (let i = 0; i < count; i++) {
      const payload = Buffer.from(String(i));
      pub.send({ cmd: 'publish', topic: 'ps/d', payload, qos: 1, retain: false, dup: false, messageId: i + 1 });
    }
    const acked: number[] = [];
    for (let i = 0; i < count; i++) acked.push((await pub.expect('puback')).messageId);
    t.equal(acked.length, count, 'every PUBLISH acknowledged');
    // With routing workers the session may be on another worker than the publisher.
    await settled(pub);
    t.equal((await tb.session('ps-d'))?.queued, count, 'all 1000 queued (maxQueued 1000)');
    const { client, connack } = await RawClient.connected(port, { clientId: 'ps-d', clean: false });
    t.teardown(() => client.destroy());
    t.equal(connack.sessionPresent, true);
    const payloads: string[] = [];
    for (let i = 0; i < count; i++) payloads.push(text(await receive(client)));
    t.same(
      payloads,
      Array.from({ length: count }, (_, i) => String(i)),
      '0..999 in order',
    );
    await publish(pub, 'ps/d', 'marker', 1);
    t.equal(text(await receive(client)), 'marker', 'nothing after the 1000th but the marker');
  });
});
