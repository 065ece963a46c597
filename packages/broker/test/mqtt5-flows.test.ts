/**
 * MQTT 5 acknowledgement flows: error reason codes in PUBREC, unknown packet ids (0x92), the
 * client's receive maximum on reconnect, and what only a server may put in a PUBLISH.
 */
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish } from './support/flows.js';
import { connect5, subscribe5, untilPingresp } from './support/v5.js';

t.test('MQTT 5 flows', async (t) => {
  const tb = await startBroker();
  t.teardown(tb.stop);
  const { port } = tb;
  const { client: pub } = await RawClient.connected(port, { clientId: 'fl-pub' });
  t.teardown(() => pub.destroy());

  await t.test(
    'a PUBREC with an error code ends the QoS 2 flow: no PUBREL, the window moves on [MQTT-4.3.3-4]',
    async (t) => {
      const { client } = await connect5(t, port, 'fl-pubrec', { properties: { receiveMaximum: 1 } });
      await subscribe5(client, [{ topic: 'fl/q2', qos: 2 }]);
      await publish(pub, 'fl/q2', 'one', 2);
      await publish(pub, 'fl/q2', 'two', 2);
      const first = await client.expect('publish');
      t.equal(first.payload.toString(), 'one');
      client.send({ cmd: 'pubrec', messageId: first.messageId as number, reasonCode: 0x80 });
      // The next one comes (the window of 1 is free again) and no PUBREL came before it.
      const next = await client.expect('publish');
      t.equal(next.payload.toString(), 'two');
    },
  );

  await t.test('unknown packet ids get 0x92 (packet identifier not found)', async (t) => {
    const { client } = await connect5(t, port, 'fl-unknown');
    client.send({ cmd: 'pubrel', messageId: 4242 });
    const pubcomp = await client.expect('pubcomp');
    t.equal(pubcomp.messageId, 4242);
    t.equal(pubcomp.reasonCode, 0x92);
    client.send({ cmd: 'pubrec', messageId: 4343 });
    const pubrel = await client.expect('pubrel');
    t.equal(pubrel.messageId, 4343);
    t.equal(pubrel.reasonCode, 0x92);
  });

  await t.test(
    'a reconnect with a smaller receive maximum: only that many resent at once [MQTT-3.3.4-9]',
    async (t) => {
      const connect = { clean: false, properties: { sessionExpiryInterval: 300, receiveMaximum: 10 } };
      const first = await RawClient.connected(port, { protocolVersion: 5, clientId: 'fl-resend', ...connect });
      first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fl/re', qos: 1 }] });
      await first.client.expect('suback');
      for (let i = 0; i < 5; i++) await publish(pub, 'fl/re', `m${i}`, 1);
      // Five in flight, none acknowledged, then the connection drops.
      for (let i = 0; i < 5; i++) await first.client.expect('publish');
      first.client.destroy();
      await first.client.waitClosed();
      const again = await RawClient.connected(port, {
        protocolVersion: 5,
        clientId: 'fl-resend',
        clean: false,
        properties: { sessionExpiryInterval: 300, receiveMaximum: 2 },
      });
      t.teardown(() => again.client.destroy());
      const resent = (await untilPingresp(again.client)).filter((p) => p.cmd === 'publish');
      t.equal(resent.length, 2, 'two resent, the receive maximum');
      t.ok(
        resent.every((p) => p.cmd === 'publish' && p.dup),
        'with DUP=1',
      );
      // Each PUBACK lets one more come, in order.
      const got = resent.map((p) => (p.cmd === 'publish' ? p.payload.toString() : ''));
      for (const p of resent)
        if (p.cmd === 'publish') again.client.send({ cmd: 'puback', messageId: p.messageId as number });
      while (got.length < 5) {
        const p = await again.client.expect('publish');
        again.client.send({ cmd: 'puback', messageId: p.messageId as number });
        got.push(p.payload.toString());
      }
      t.same(got, ['m0', 'm1', 'm2', 'm3', 'm4'], 'all five, in order');
    },
  );

  await t.test('a client PUBLISH with a subscription identifier is a protocol error [MQTT-3.3.4-6]', async (t) => {
    const { client } = await connect5(t, port, 'fl-subid');
    client.send({
      cmd: 'publish',
      topic: 'fl/x',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
      properties: { subscriptionIdentifiers: [3] },
    });
    const bye = await client.expect('disconnect');
    t.equal(bye.reasonCode, 0x82);
    await client.waitClosed();
  });
});
