/**
 * MQTT 5 CONNECT and CONNACK, session expiry and the DISCONNECT a client sends: what a
 * client is told about the server's limits, and how long its session outlives it.
 */
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, subscribe, text } from './support/flows.js';
import { untilPingresp } from './support/v5.js';

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

  await t.test('DISCONNECT can lengthen a non-zero expiry interval (3.14.2.2.2)', async (t) => {
    const props = { sessionExpiryInterval: 1 };
    const first = await RawClient.connected(port, { ...v5, clientId: 'v5-lengthen', clean: false, properties: props });
    await subscribe(first.client, { 'lengthen/t': 1 });
    first.client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 300 } });
    await first.client.waitClosed();
    // A session with the interval it had at CONNECT, ended after it: once this one has
    // expired, so would have the first had its interval stayed 1 s.
    const marker = await RawClient.connected(port, {
      ...v5,
      clientId: 'v5-lengthen-marker',
      clean: false,
      properties: props,
    });
    await marker.client.disconnect();
    await logs.waitFor((l) => l.clientId === 'v5-lengthen-marker' && l.msg === 'session expired');
    const again = await RawClient.connected(port, { ...v5, clientId: 'v5-lengthen', clean: false, properties: props });
    t.teardown(() => again.client.destroy());
    t.equal(again.connack.sessionPresent, true, 'the session outlived the interval of its CONNECT');
  });

  await t.test('DISCONNECT may not raise an expiry interval of 0 [MQTT-3.14.2-2]', async (t) => {
    const { client } = await RawClient.connected(port, { ...v5, clientId: 'v5-raise', clean: true });
    client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    const answer = await client.expect('disconnect');
    t.equal(answer.reasonCode, 0x82, 'protocol error');
    await client.waitClosed();
  });

  await t.test(
    'user properties from the client (CONNECT, SUBSCRIBE, PUBACK, UNSUBSCRIBE, DISCONNECT) and its reason strings are taken without complaint (3.1.2.11.8)',
    async (t) => {
      const userProperties: Array<[string, string]> = [
        ['k', 'v1'],
        ['k', 'v2'],
        ['empty', ''],
      ];
      const errors = async () => (await tb.stats()).counters.protocolErrors;
      const before = await errors();
      const { client, connack } = await RawClient.connected(port, {
        ...v5,
        clientId: 'v5-userprops',
        properties: { userProperties },
      });
      t.teardown(() => client.destroy());
      t.equal(connack.returnCode, 0, 'a CONNECT with user properties is accepted');
      client.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 'userprops/t', qos: 1 }],
        properties: { userProperties },
      });
      t.same((await client.expect('suback')).granted, [1], 'a SUBSCRIBE with user properties is granted');
      const { client: pub } = await RawClient.connected(port, { clientId: 'v5-userprops-pub' });
      t.teardown(() => pub.destroy());
      await publish(pub, 'userprops/t', 'hello', 1);
      const got = await receive(client, false);
      t.equal(text(got), 'hello');
      client.send({
        cmd: 'puback',
        messageId: got.messageId as number,
        reasonCode: 0,
        properties: { reasonString: 'thanks', userProperties },
      });
      t.same(await untilPingresp(client), [], 'the PUBACK with a reason string and user properties is taken');
      client.send({
        cmd: 'unsubscribe',
        messageId: 2,
        unsubscriptions: ['userprops/t'],
        properties: { userProperties },
      });
      t.same((await client.expect('unsuback')).granted, [0], 'an UNSUBSCRIBE with user properties is done');
      client.send({
        cmd: 'disconnect',
        reasonCode: 0,
        properties: { reasonString: 'done for today', userProperties },
      });
      await client.waitClosed();
      t.equal((await errors()) - before, 0, 'no protocol error counted');
    },
  );

  await t.test(
    'a maximum packet size too small for the CONNACK: refused with a bare CONNACK 0x95 and closed, its stored session untouched [MQTT-3.1.2-24]',
    async (t) => {
      const props = { sessionExpiryInterval: 300 };
      const first = await RawClient.connected(port, { ...v5, clientId: 'v5-tiny', clean: false, properties: props });
      await subscribe(first.client, { 'tiny/t': 1 });
      await first.client.disconnect();
      const before = (await tb.stats()).counters.connectionsRejected['packet-too-large'] ?? 0;
      // The CONNACK that would let it in says receive maximum, maximum packet size and topic
      // alias maximum: 16 bytes.
      const tiny = await RawClient.open(port, 5);
      t.teardown(() => tiny.destroy());
      const refused = await tiny.connect({ clientId: 'v5-tiny', clean: true, properties: { maximumPacketSize: 12 } });
      t.equal(refused.returnCode, 0x95, 'CONNACK 0x95 (packet too large), not silence');
      t.equal(refused.properties, undefined, 'without properties: the reason string would not fit');
      await tiny.waitClosed();
      t.equal(
        (await tb.stats()).counters.connectionsRejected['packet-too-large'] - before,
        1,
        'counted as a refused connection',
      );
      const again = await RawClient.connected(port, { ...v5, clientId: 'v5-tiny', clean: false, properties: props });
      t.teardown(() => again.client.destroy());
      t.equal(again.connack.sessionPresent, true, 'the refused clean start did not end the stored session');
    },
  );

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

t.test('MQTT 5 refusals without problem information', async (t) => {
  const tb = await startBroker({ allowAnonymous: false });
  t.teardown(tb.stop);

  await t.test(
    'a client that asked for no problem information is refused by the reason code alone [MQTT-3.1.2-29]',
    async (t) => {
      const client = await RawClient.open(tb.port, 5);
      const refused = await client.connect({
        clientId: 'v5-anon-quiet',
        properties: { requestProblemInformation: false },
      });
      t.ok(refused.returnCode >= 0x80, `refused (0x${refused.returnCode.toString(16)})`);
      t.equal(refused.properties?.reasonString, undefined, 'no reason string');
      t.equal(refused.properties?.userProperties, undefined, 'no user properties');
      await client.waitClosed();
    },
  );
});

t.test('MQTT 5 server keep alive is the one enforced', async (t) => {
  const tb = await startBroker({ maxKeepalive: 1 });
  t.teardown(tb.stop);

  await t.test(
    'a client that asked for no keepalive is held to the server keep alive: silent past 1.5 times it, DISCONNECT 0x8D [MQTT-3.2.2-22]',
    async (t) => {
      const { client, connack } = await RawClient.connected(tb.port, { ...v5, clientId: 'v5-ka-held', keepalive: 0 });
      t.equal(connack.properties?.serverKeepAlive, 1, 'CONNACK: server keep alive 1');
      const bye = await client.expect('disconnect');
      t.equal(bye.reasonCode, 0x8d, 'keep alive timeout');
      await client.waitClosed();
    },
  );
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
