/** The DISCONNECT an MQTT 5 client gets when Tern closes its connection, saying why [MQTT-3.14.2-1]. */
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';

const v5 = { protocolVersion: 5 as const };

t.test('server-initiated DISCONNECT', async (t) => {
  const tb = await startBroker({ maxPacketSize: 1024 });
  t.teardown(tb.stop);
  const { port } = tb;

  await t.test('0x8E when the session is taken over', async (t) => {
    const { client: old } = await RawClient.connected(port, { ...v5, clientId: 'd5-takeover' });
    const { client: fresh } = await RawClient.connected(port, { ...v5, clientId: 'd5-takeover' });
    t.teardown(() => fresh.destroy());
    const bye = await old.expect('disconnect');
    t.equal(bye.reasonCode, 0x8e);
    await old.waitClosed();
  });

  await t.test('0x8D when the keepalive runs out', async (t) => {
    const { client } = await RawClient.connected(port, { ...v5, clientId: 'd5-keepalive', keepalive: 1 });
    const bye = await client.expect('disconnect');
    t.equal(bye.reasonCode, 0x8d);
    await client.waitClosed();
  });

  await t.test('0x95 for a packet larger than the maximum packet size', async (t) => {
    const { client } = await RawClient.connected(port, { ...v5, clientId: 'd5-large' });
    client.send({ cmd: 'publish', topic: 'd5/large', payload: Buffer.alloc(2000), qos: 0, retain: false, dup: false });
    const bye = await client.expect('disconnect');
    t.equal(bye.reasonCode, 0x95);
    t.type(bye.properties?.reasonString, 'string', 'with the reason in words');
    await client.waitClosed();
  });

  await t.test(
    'a client that asked for no problem information is told by the reason code alone [MQTT-3.1.2-29]',
    async (t) => {
      const { client } = await RawClient.connected(port, {
        ...v5,
        clientId: 'd5-quiet',
        properties: { requestProblemInformation: false },
      });
      client.send({
        cmd: 'publish',
        topic: 'd5/quiet',
        payload: Buffer.alloc(2000),
        qos: 0,
        retain: false,
        dup: false,
      });
      const bye = await client.expect('disconnect');
      t.equal(bye.reasonCode, 0x95);
      t.equal(bye.properties?.reasonString, undefined, 'no reason string');
      t.equal(bye.properties?.userProperties, undefined, 'no user properties');
      await client.waitClosed();
    },
  );

  await t.test(
    'a DISCONNECT drops its reason string to fit the client’s maximum packet size [MQTT-3.14.2-3]',
    async (t) => {
      const { client } = await RawClient.connected(port, {
        ...v5,
        clientId: 'd5-small',
        properties: { maximumPacketSize: 20 },
      });
      // An alias above the broker's topic alias maximum (64) gets 0x94 and a close.
      client.send({
        cmd: 'publish',
        topic: 'd5/a',
        payload: Buffer.alloc(0),
        qos: 0,
        retain: false,
        dup: false,
        properties: { topicAlias: 65535 },
      });
      const bye = await client.expect('disconnect');
      t.equal(bye.reasonCode, 0x94);
      t.equal(bye.properties?.reasonString, undefined, 'no reason string: it would not fit');
      await client.waitClosed();
    },
  );

  await t.test('0x82 for a protocol error (a second CONNECT) [MQTT-3.1.0-2]', async (t) => {
    const { client } = await RawClient.connected(port, { ...v5, clientId: 'd5-second' });
    client.sendConnect({ clientId: 'd5-second' });
    const bye = await client.expect('disconnect');
    t.equal(bye.reasonCode, 0x82);
    await client.waitClosed();
  });
});

t.test('0x8B at shutdown', async (t) => {
  const tb = await startBroker();
  const { client } = await RawClient.connected(tb.port, { ...v5, clientId: 'd5-shutdown' });
  const stopping = tb.stop();
  const bye = await client.expect('disconnect');
  t.equal(bye.reasonCode, 0x8b);
  await stopping;
});

t.test('0x9D with the server reference at shutdown when the server has moved', async (t) => {
  const tb = await startBroker({ serverReference: 'new.example:1883', serverMoved: true });
  const { client } = await RawClient.connected(tb.port, { ...v5, clientId: 'd5-gone' });
  const stopping = tb.stop();
  const bye = await client.expect('disconnect');
  t.equal(bye.reasonCode, 0x9d);
  t.equal(bye.properties?.serverReference, 'new.example:1883');
  await stopping;
});

t.test('0x9C with the server reference at shutdown when one is configured', async (t) => {
  const tb = await startBroker({ serverReference: 'other.example:1883' });
  const { client } = await RawClient.connected(tb.port, { ...v5, clientId: 'd5-moved' });
  const stopping = tb.stop();
  const bye = await client.expect('disconnect');
  t.equal(bye.reasonCode, 0x9c);
  t.equal(bye.properties?.serverReference, 'other.example:1883');
  await stopping;
});

t.test('above memoryHighWaterMark an MQTT 5 CONNECT is refused 0x89 (server busy)', async (t) => {
  // One byte: every process is above it.
  const tb = await startBroker({ memoryHighWaterMark: 1 });
  t.teardown(tb.stop);
  await tb.logs.waitFor('memory high-water mark reached');
  const client = await RawClient.open(tb.port, 5);
  const refused = await client.connect({ clientId: 'd5-busy' });
  t.equal(refused.returnCode, 0x89);
  t.equal(refused.properties?.serverReference, undefined);
  await client.waitClosed();
});

t.test('above memoryHighWaterMark with a server reference: CONNACK 0x9C names the other server', async (t) => {
  const tb = await startBroker({ memoryHighWaterMark: 1, serverReference: 'spare.example:1883' });
  t.teardown(tb.stop);
  await tb.logs.waitFor('memory high-water mark reached');
  const client = await RawClient.open(tb.port, 5);
  const refused = await client.connect({ clientId: 'd5-elsewhere' });
  t.equal(refused.returnCode, 0x9c, 'use another server');
  t.equal(refused.properties?.serverReference, 'spare.example:1883');
  await client.waitClosed();
});
