import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';

t.test('CONNECT', async (t) => {
  const { port, logs, stop } = await startBroker({ connectTimeoutMs: 300 });
  t.teardown(stop);

  await t.test('MQTT.js connects with 3.1.1 and gets CONNACK 0 [MQTT-3.2.2-3]', async (t) => {
    const client = await mqtt.connectAsync({ port, host: '127.0.0.1', clientId: 'c1', protocolVersion: 4 });
    t.teardown(() => client.endAsync());
    t.equal(client.connected, true);
  });

  await t.test('MQTT 3.1 (MQIsdp, level 3) is accepted', async (t) => {
    const { client, connack } = await RawClient.connected(port, {
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      clientId: 'v31',
    });
    t.teardown(() => client.destroy());
    t.equal(connack.returnCode, 0);
  });

  await t.test('unsupported protocol level gets CONNACK 0x01, then close [MQTT-3.1.2-2]', async (t) => {
    const client = await RawClient.open(port);
    // CONNECT 'MQTT' level 6, clean, keepalive 0, client id 'x'
    client.sendBytes([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78]);
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 1);
    t.equal(connack.sessionPresent, false);
    await client.waitClosed();
  });

  await t.test('zero-length client id with cleanSession=1 gets an assigned id [MQTT-3.1.3-6]', async (t) => {
    const { client, connack } = await RawClient.connected(port, { clientId: '', clean: true });
    t.teardown(() => client.destroy());
    t.equal(connack.returnCode, 0);
  });

  await t.test('zero-length client id with cleanSession=0 gets CONNACK 0x02 and close [MQTT-3.1.3-8]', async (t) => {
    const { client, connack } = await RawClient.connected(port, { clientId: '', clean: false });
    t.equal(connack.returnCode, 2);
    await client.waitClosed();
  });

  await t.test('a client id of 65535 bytes is allowed', async (t) => {
    const { client, connack } = await RawClient.connected(port, { clientId: 'x'.repeat(65_535) });
    t.teardown(() => client.destroy());
    t.equal(connack.returnCode, 0);
  });

  await t.test('first packet other than CONNECT closes the connection [MQTT-3.1.0-1]', async (t) => {
    const client = await RawClient.open(port);
    client.send({ cmd: 'pingreq' });
    await client.waitClosed();
    const line = await logs.waitFor((l) => l.code === 'TERN_PROTO_FIRST_PACKET');
    t.match(line.msg, /first packet must be CONNECT/);
  });

  await t.test('a second CONNECT closes the connection [MQTT-3.1.0-2]', async (t) => {
    const { client } = await RawClient.connected(port, { clientId: 'twice' });
    client.sendConnect({ clientId: 'twice' });
    await client.waitClosed();
    await logs.waitFor((l) => l.code === 'TERN_PROTO_SECOND_CONNECT');
    t.pass('closed');
  });

  await t.test('a socket that never sends CONNECT is closed after the connect timeout', async (t) => {
    const client = await RawClient.open(port);
    await client.waitClosed();
    await logs.waitFor('no CONNECT in time');
    t.pass('closed');
  });

  await t.test('CONNECT with the reserved flag set is a protocol error [MQTT-3.1.2-3]', async (t) => {
    const client = await RawClient.open(port);
    client.sendBytes([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x00, 0x00, 0x01, 0x78]);
    await client.waitClosed();
    await logs.waitFor((l) => l.code === 'TERN_PROTO_CONNECT_RESERVED');
    t.pass('closed with a log line');
  });
});
