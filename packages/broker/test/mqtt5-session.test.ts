/**
 * MQTT 5 CONNECT and CONNACK, session expiry and the DISCONNECT a client sends: what a
 * client is told about the server's limits, and how long its session outlives it.
 */
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, subscribe, text } from './support/flows.js';

const v5 = { protocolVersion: 5 as const };

t.test('MQTT 5 sessions', async (t) => {
  const tb = await startBroker({ receiveMaximum: 100, topicAliasMaximum: 5, maxPacketSize: 4096 });
  t.teardown(tb.stop);
  const { port, logs } = tb;

  await t.test('CONNACK tells the server limits (3.2.2.3)', async (t) => {
    const { client, connack } = await RawClient.connected(port, { ...v5, clientId: 'v5-limits' });
    t.teardown(() => client.destroy());
    t.equal(connack.returnCode, 0);
    t.equal(connack.properties?.receiveMaximum, 100);
    t.equal(connack.properties?.topicAliasMaximum, 5);
    t.equal(connack.properties?.maximumPacketSize, 4096);
    t.equal(connack.properties?.sharedSubscriptionAvailable, undefined, 'shared subscriptions available (the default)');
    t.equal(connack.properties?.assignedClientIdentifier, undefined, 'no id assigned when the client had one');
  });

  await t.test('an empty client id is assigned and told, clean start or not [MQTT-3.2.2-16]', async (t) => {
    const { client, connack } = await RawClient.connected(port, { ...v5, clientId: '', clean: false });
    t.teardown(() => client.destroy());
    t.equal(connack.returnCode, 0);
    t.match(connack.properties?.assignedClientIdentifier, /^tern-/);
  });

  await t.test('session expiry 0 ends the session with the connection', async (t) => {
    const first = await RawClient.connected(port, { ...v5, clientId: 'v5-exp0', clean: false });
    await subscribe(first.client, { 'exp0/t': 1 });
    await first.client.disconnect();
    const again = await RawClient.connected(port, { ...v5, clientId: 'v5-exp0', clean: false });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, false, 'nothing to resume');
  });

  await t.test('a session with an expiry interval is resumed with what was queued', async (t) => {
    const props = { sessionExpiryInterval: 300 };
    const first = await RawClient.connected(port, { ...v5, clientId: 'v5-keep', clean: false, properties: props });
    await subscribe(first.client, { 'keep/t': 1 });
    await first.client.disconnect();
    const { client: pub } = await RawClient.connected(port, { clientId: 'v5-keep-pub' });
    t.teardown(() => pub.destroy());
    await publish(pub, 'keep/t', 'while away', 1);
    const again = await RawClient.connected(port, { ...v5, clientId: 'v5-keep', clean: false, properties: props });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, true);
    const got = await receive(again.client);
    t.equal(text(got), 'while away');
  });

  await t.test('an offline session ends when its expiry interval runs out', async (t) => {
    const props = { sessionExpiryInterval: 1 };
    const first = await RawClient.connected(port, { ...v5, clientId: 'v5-short', clean: false, properties: props });
    await subscribe(first.client, { 'short/t': 1 });
    await first.client.disconnect();
    await logs.waitFor((l) => l.clientId === 'v5-short' && l.msg === 'session expired');
    const again = await RawClient.connected(port, { ...v5, clientId: 'v5-short', clean: false, properties: props });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, false, 'the session expired');
  });

  await t.test('DISCONNECT can shorten the expiry interval to 0', async (t) => {
    const props = { sessionExpiryInterval: 300 };
    const first = await RawClient.connected(port, { ...v5, clientId: 'v5-shorten', clean: false, properties: props });
    await subscribe(first.client, { 'shorten/t': 1 });
    first.client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await first.client.waitClosed();
    const again = await RawClient.connected(port, { ...v5, clientId: 'v5-shorten', clean: false, properties: props });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, false);
  });

  await t.test('DISCONNECT may not raise an expiry interval of 0 [MQTT-3.14.2-2]', async (t) => {
    const { client } = await RawClient.connected(port, { ...v5, clientId: 'v5-raise', clean: true });
    client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    const answer = await client.expect('disconnect');
    t.equal(answer.reasonCode, 0x82, 'protocol error');
    await client.waitClosed();
  });

  await t.test('an authentication method Tern does not offer gets CONNACK 0x8C', async (t) => {
    const client = await RawClient.open(port, 5);
    const connack = await client.connect({
      clientId: 'v5-auth-method',
      properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('x') },
    });
    t.equal(connack.returnCode, 0x8c);
    await client.waitClosed();
  });
});

t.test('MQTT 5 refusals', async (t) => {
  const tb = await startBroker({ allowAnonymous: false });
  t.teardown(tb.stop);

  await t.test('a refused client gets an MQTT 5 reason code and a reason string', async (t) => {
    // Anonymous clients are refused here.
    const client = await RawClient.open(tb.port, 5);
    const refused = await client.connect({ clientId: 'v5-anon', keepalive: 0 });
    t.ok(refused.returnCode >= 0x80, `refused with an MQTT 5 reason code (0x${refused.returnCode.toString(16)})`);
    t.type(refused.properties?.reasonString, 'string', 'with a reason string');
    await client.waitClosed();
  });
});

t.test('MQTT 5 keepalive and expiry caps', async (t) => {
  const tb = await startBroker({ maxKeepalive: 30, maxSessionExpiry: 10, responseInformation: 'replies/%c/' });
  t.teardown(tb.stop);

  await t.test('server keep alive when the client asks for none or more [MQTT-3.2.2-21]', async (t) => {
    const none = await RawClient.connected(tb.port, { ...v5, clientId: 'v5-ka-none', keepalive: 0 });
    t.teardown(() => none.client.destroy());
    t.equal(none.connack.properties?.serverKeepAlive, 30);
    const less = await RawClient.connected(tb.port, { ...v5, clientId: 'v5-ka-less', keepalive: 10 });
    t.teardown(() => less.client.destroy());
    t.equal(less.connack.properties?.serverKeepAlive, undefined, 'its own is kept');
  });

  await t.test('response information only to a client that asks (3.2.2.3.15) [MQTT-3.1.2-28]', async (t) => {
    const asks = await RawClient.connected(tb.port, {
      ...v5,
      clientId: 'v5-resp',
      properties: { requestResponseInformation: true },
    });
    t.teardown(() => asks.client.destroy());
    t.equal(asks.connack.properties?.responseInformation, 'replies/v5-resp/');
    const silent = await RawClient.connected(tb.port, { ...v5, clientId: 'v5-resp-not' });
    t.teardown(() => silent.client.destroy());
    t.equal(silent.connack.properties?.responseInformation, undefined);
  });

  await t.test('a longer session expiry is capped and the client told', async (t) => {
    const { client, connack } = await RawClient.connected(tb.port, {
      ...v5,
      clientId: 'v5-cap',
      clean: false,
      properties: { sessionExpiryInterval: 100 },
    });
    t.teardown(() => client.destroy());
    t.equal(connack.properties?.sessionExpiryInterval, 10);
  });
});
