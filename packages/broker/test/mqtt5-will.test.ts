/**
 * MQTT 5 wills: the will delay interval, will properties, and DISCONNECT 0x04. Will delays
 * are about time passing, so two tests here wait out a one-second delay; every other wait is
 * for a packet.
 */
import type { Will } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, receiveTopics, receiveUntil, serverClosed, subscribe, text } from './support/flows.js';

const v5 = { protocolVersion: 5 as const };

const will = (topic: string, payload: string, willDelayInterval = 0, extra: Will['properties'] = {}): Will => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: false,
  properties: { willDelayInterval, ...extra },
});

t.test('MQTT 5 wills', async (t) => {
  const tb = await startBroker();
  t.teardown(tb.stop);
  const { port } = tb;
  const { client: watcher } = await RawClient.connected(port, { ...v5, clientId: 'w5-watcher' });
  t.teardown(() => watcher.destroy());
  await subscribe(watcher, { 'w5/#': 1 });
  const { client: pub } = await RawClient.connected(port, { clientId: 'w5-marker' });
  t.teardown(() => pub.destroy());
  let markers = 0;
  /** Every message the watcher got up to a fresh marker: what did not come before it. */
  /**
   * The clock of the will-delay tests: a client whose will has the 1 s delay goes away; resolves
   * with what the watcher got up to that will, which comes once the delay has run out.
   */
  const delayRunOut = async (clientId: string, topic: string) => {
    const { client } = await RawClient.connected(port, {
      ...v5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: will(topic, 'later', 1),
    });
    client.destroy();
    return receiveUntil(watcher, topic);
  };

  const upToMarker = async () => {
    await publish(pub, 'w5/marker', `m${++markers}`, 1);
    return receiveUntil(watcher, 'w5/marker');
  };

  await t.test('will properties travel with the will message (3.1.3.2)', async (t) => {
    const { client } = await RawClient.connected(port, {
      ...v5,
      clientId: 'w5-props',
      will: will('w5/props', 'gone', 0, {
        contentType: 'text/plain',
        responseTopic: 'w5/reply',
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: [
          ['k', 'v1'],
          ['k', 'v2'],
        ],
      }),
    });
    client.destroy();
    const got = await receive(watcher);
    t.equal(got.topic, 'w5/props');
    t.equal(got.properties?.contentType, 'text/plain');
    t.equal(got.properties?.responseTopic, 'w5/reply');
    t.same(got.properties?.correlationData, Buffer.from([1, 2, 3]));
    t.same(got.properties?.userProperties, [
      ['k', 'v1'],
      ['k', 'v2'],
    ]);
    t.equal(got.properties?.willDelayInterval, undefined, 'the delay is the broker’s, not the message’s');
  });

  await t.test(
    'a will’s payload format indicator and message expiry interval travel too; the expiry counts from its publication (3.1.3.2.3, 3.1.3.2.4)',
    async (t) => {
      const { client } = await RawClient.connected(port, {
        ...v5,
        clientId: 'w5-expiring',
        will: will('w5/expiring', 'utf-8 text', 0, { payloadFormatIndicator: true, messageExpiryInterval: 60 }),
      });
      client.destroy();
      const got = await receive(watcher);
      t.equal(got.topic, 'w5/expiring');
      t.equal(got.properties?.payloadFormatIndicator, true, 'payload format indicator as set in the will');
      const left = got.properties?.messageExpiryInterval;
      t.ok(
        left !== undefined && left > 0 && left <= 60,
        `the will’s expiry interval, counting down: 0 < ${left} <= 60`,
      );
    },
  );

  await t.test('only a normal DISCONNECT (0x00) discards the will [MQTT-3.14.4-3]', async (t) => {
    const a = await RawClient.connected(port, { ...v5, clientId: 'w5-dc4', will: will('w5/dc4', 'asked for') });
    a.client.send({ cmd: 'disconnect', reasonCode: 0x04 });
    await a.client.waitClosed();
    const b = await RawClient.connected(port, { ...v5, clientId: 'w5-dc0', will: will('w5/dc0', 'never') });
    await b.client.disconnect();
    const c = await RawClient.connected(port, { ...v5, clientId: 'w5-dc80', will: will('w5/dc80', 'error end') });
    c.client.send({ cmd: 'disconnect', reasonCode: 0x80 });
    await c.client.waitClosed();
    await Promise.all(['w5-dc4', 'w5-dc0', 'w5-dc80'].map((id) => serverClosed(tb, id)));
    // With routing workers the two wills may come from different workers: no order between them.
    const wills = await receiveTopics(watcher, ['w5/dc4', 'w5/dc80']);
    t.same(wills.map((p) => p.topic).sort(), ['w5/dc4', 'w5/dc80']);
    const rest = await upToMarker();
    t.same(
      rest.map((p) => p.topic),
      ['w5/marker'],
      'no will for the normal DISCONNECT',
    );
  });

  await t.test('a delayed will is published once the delay runs out', async (t) => {
    const { client } = await RawClient.connected(port, {
      ...v5,
      clientId: 'w5-delayed',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: will('w5/delayed', 'late', 1),
    });
    client.destroy();
    const got = await receive(watcher);
    t.equal(got.topic, 'w5/delayed');
    t.equal(text(got), 'late');
  });

  await t.test('a client back within the delay: the will never fires [MQTT-3.1.3-9]', async (t) => {
    const connect = {
      ...v5,
      clientId: 'w5-back',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: will('w5/back', 'should not', 1),
    };
    const first = await RawClient.connected(port, connect);
    first.client.destroy();
    await first.client.waitClosed();
    await serverClosed(tb, 'w5-back');
    const again = await RawClient.connected(port, connect);
    t.equal(again.connack.sessionPresent, true);
    // Once a will of the same delay set off after the reconnect has come, the first
    // connection's delay has run out too, and its will must not have come.
    const got = await delayRunOut('w5-back-clock', 'w5/back-clock');
    t.same(
      got.map((p) => p.topic),
      ['w5/back-clock'],
      'only the will of the client that did not come back',
    );
    // A clean end, so this connection's own will is discarded.
    await again.client.disconnect();
  });

  await t.test(
    'a takeover within the delay: the old connection’s will never fires, the session goes on [MQTT-3.1.3-9] [MQTT-3.1.4-3]',
    async (t) => {
      const connect = {
        ...v5,
        clientId: 'w5-taken',
        clean: false,
        properties: { sessionExpiryInterval: 300 },
        will: will('w5/taken', 'should not', 1),
      };
      const { client: old } = await RawClient.connected(port, connect);
      const again = await RawClient.connected(port, connect);
      t.equal((await old.expect('disconnect')).reasonCode, 0x8e, 'the old connection is told 0x8E');
      await old.waitClosed();
      t.equal(again.connack.sessionPresent, true);
      // Once a will of the same delay set off after the takeover has come, the old
      // connection's delay has run out too.
      const got = await delayRunOut('w5-taken-marker', 'w5/taken-marker');
      t.same(
        got.map((p) => p.topic),
        ['w5/taken-marker'],
        'only the will of the client that did not come back',
      );
      // A clean end, so the new connection's own will is discarded.
      await again.client.disconnect();
    },
  );

  await t.test(
    'a client back after the delay ran out: the will was published, once, and the session is still there',
    async (t) => {
      const connect = {
        ...v5,
        clientId: 'w5-late',
        clean: false,
        properties: { sessionExpiryInterval: 300 },
        will: will('w5/late', 'too late', 1),
      };
      const first = await RawClient.connected(port, connect);
      first.client.destroy();
      // The delay runs out with the client away: the will comes.
      const got = await receive(watcher);
      t.equal(got.topic, 'w5/late');
      t.equal(text(got), 'too late');
      const again = await RawClient.connected(port, connect);
      t.equal(again.connack.sessionPresent, true, 'the session outlived the will delay');
      // The reconnect neither publishes it a second time nor fires the new connection's will.
      const rest = await upToMarker();
      t.same(
        rest.map((p) => p.topic),
        ['w5/marker'],
        'no second will',
      );
      // A clean end, so this connection's own will is discarded.
      await again.client.disconnect();
    },
  );

  await t.test('a session that ends first takes its delayed will out at once (3.1.3.2.2)', async (t) => {
    // Expiry 0: the session ends with the connection, long before the delay of an hour.
    const { client } = await RawClient.connected(port, {
      ...v5,
      clientId: 'w5-ends',
      will: will('w5/ends', 'session over', 3600),
    });
    client.destroy();
    const got = await receive(watcher);
    t.equal(got.topic, 'w5/ends');
  });

  await t.test('a clean start ends the old session: its delayed will fires at once', async (t) => {
    const first = await RawClient.connected(port, {
      ...v5,
      clientId: 'w5-clean',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      will: will('w5/clean', 'replaced', 3600),
    });
    first.client.destroy();
    await first.client.waitClosed();
    const again = await RawClient.connected(port, { ...v5, clientId: 'w5-clean', clean: true });
    t.teardown(() => again.client.destroy());
    const got = await receive(watcher);
    t.equal(got.topic, 'w5/clean');
  });

  await t.test('the will of a session with a short expiry fires when the session ends', async (t) => {
    const { client } = await RawClient.connected(port, {
      ...v5,
      clientId: 'w5-expiry',
      clean: false,
      properties: { sessionExpiryInterval: 1 },
      will: will('w5/expiry', 'expired', 3600),
    });
    client.destroy();
    const got = await receive(watcher);
    t.equal(got.topic, 'w5/expiry');
  });
});
