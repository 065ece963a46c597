import type { QoS, Will } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, receiveUntil, serverClosed, subscribe, text } from './support/flows.js';

const will = (topic: string, payload: string, qos: QoS = 1, retain = false): Will => ({
  topic,
  payload: Buffer.from(payload),
  qos,
  retain,
});

t.test('will message', async (t) => {
  const tb = await startBroker();
  const { port, logs } = tb;
  t.teardown(tb.stop);

  // One watcher at QoS 2 sees every will at the QoS it was published with.
  const { client: watcher } = await RawClient.connected(port, { clientId: 'will-watcher' });
  t.teardown(() => watcher.destroy());
  await subscribe(watcher, { 'will/#': 2 });
  const { client: pub } = await RawClient.connected(port, { clientId: 'will-publisher' });
  t.teardown(() => pub.destroy());
  let markers = 0;
  /** Publishes a marker and returns every message the watcher received up to it. */
  const upToMarker = async () => {
    await publish(pub, 'will/marker', `m${++markers}`, 1);
    return receiveUntil(watcher, 'will/marker');
  };

  await t.test('published when the socket is destroyed [MQTT-3.1.2-8]', async (t) => {
    for (const qos of [0, 1, 2] as const) {
      const { client } = await RawClient.connected(port, {
        clientId: `will-destroy-${qos}`,
        will: will(`will/destroy/${qos}`, `bye at ${qos}`, qos),
      });
      client.destroy();
      const got = await receive(watcher);
      t.equal(got.topic, `will/destroy/${qos}`);
      t.equal(text(got), `bye at ${qos}`);
      t.equal(got.qos, qos, `QoS ${qos} as in the will`);
      t.equal(got.retain, false, 'not retained');
    }
  });

  await t.test('published on a protocol error [MQTT-3.1.2-8]', async (t) => {
    const { client } = await RawClient.connected(port, {
      clientId: 'will-garbage',
      will: will('will/garbage', 'broke the rules'),
    });
    // Packet type 0 is reserved.
    client.sendBytes([0x00, 0x00, 0xde, 0xad]);
    await client.waitClosed();
    const got = await receive(watcher);
    t.equal(got.topic, 'will/garbage');
    t.equal(text(got), 'broke the rules');
    t.equal(got.qos, 1);
    await logs.waitFor((l) => l.clientId === 'will-garbage' && l.code === 'TERN_PROTO_PACKET_TYPE');
  });

  await t.test('published on keepalive timeout [MQTT-3.1.2-8]', async (t) => {
    const { client } = await RawClient.connected(port, {
      clientId: 'will-silent',
      keepalive: 1,
      will: will('will/silent', 'timed out', 2),
    });
    t.teardown(() => client.destroy());
    await client.waitClosed();
    const got = await receive(watcher);
    t.equal(got.topic, 'will/silent');
    t.equal(text(got), 'timed out');
    t.equal(got.qos, 2);
  });

  await t.test('published on takeover by a new connection with the same id [MQTT-3.1.4-2]', async (t) => {
    const { client: first } = await RawClient.connected(port, {
      clientId: 'will-taken',
      will: will('will/taken', 'replaced'),
    });
    const { client: second } = await RawClient.connected(port, { clientId: 'will-taken' });
    t.teardown(() => second.destroy());
    await first.waitClosed();
    const got = await receive(watcher);
    t.equal(got.topic, 'will/taken');
    t.equal(text(got), 'replaced');
    t.equal(got.qos, 1);
  });

  await t.test('not published after DISCONNECT [MQTT-3.1.2-10] [MQTT-3.14.4-3]', async (t) => {
    for (const clean of [true, false]) {
      const id = `will-clean-${clean}`;
      const { client } = await RawClient.connected(port, { clientId: id, clean, will: will('will/clean', 'no') });
      await client.disconnect();
      await serverClosed(tb, id);
      const got = await upToMarker();
      t.same(
        got.map((p) => p.topic),
        ['will/marker'],
        `cleanSession=${clean}: only the marker arrives`,
      );
    }
  });

  await t.test('a retained will is stored as the retained message of its topic [MQTT-3.1.2-17]', async (t) => {
    const { client } = await RawClient.connected(port, {
      clientId: 'will-retained',
      will: will('will/retained', 'last words', 1, true),
    });
    client.destroy();
    const live = await receive(watcher);
    t.equal(text(live), 'last words');
    t.equal(live.retain, false, 'RETAIN is cleared for an existing subscription [MQTT-3.3.1-9]');

    const { client: late } = await RawClient.connected(port, { clientId: 'will-late' });
    t.teardown(() => late.destroy());
    await subscribe(late, { 'will/retained': 2 });
    const stored = await receive(late);
    t.equal(stored.topic, 'will/retained');
    t.equal(text(stored), 'last words');
    t.equal(stored.retain, true, 'sent with RETAIN=1 to a new subscription [MQTT-3.3.1-8]');
    t.equal(stored.qos, 1, 'at the will QoS');

    // Clean up: an empty retained message deletes it; the watcher sees that one too.
    await publish(pub, 'will/retained', '', 1, true);
    t.equal(text(await receive(watcher)), '');
  });

  await t.test('published exactly once (DESIGN guarantee 5)', async (t) => {
    // Protocol error: the error and the socket close both end the connection.
    const { client: bad } = await RawClient.connected(port, { clientId: 'will-once', will: will('will/once', 'a') });
    bad.sendBytes([0x36, 0x00]);
    await bad.waitClosed();
    await serverClosed(tb, 'will-once');
    t.same(
      (await upToMarker()).map((p) => `${p.topic}:${text(p)}`),
      ['will/once:a', `will/marker:m${markers}`],
      'protocol error: one will',
    );

    // Takeover, then the new connection (no will) goes away too: still one will.
    const { client: first } = await RawClient.connected(port, {
      clientId: 'will-once',
      clean: false,
      will: will('will/once', 'b'),
    });
    const { client: second } = await RawClient.connected(port, { clientId: 'will-once', clean: false });
    await first.waitClosed();
    second.destroy();
    await second.waitClosed();
    await serverClosed(tb, 'will-once');
    t.same(
      (await upToMarker()).map((p) => `${p.topic}:${text(p)}`),
      ['will/once:b', `will/marker:m${markers}`],
      'takeover: one will, from the first connection only',
    );

    // Destroy many at once: one will each.
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        RawClient.connected(port, { clientId: `will-many-${i}`, will: will(`will/many/${i}`, String(i)) }),
      ),
    );
    for (const { client } of clients) client.destroy();
    await Promise.all(clients.map((_, i) => serverClosed(tb, `will-many-${i}`)));
    const got = (await upToMarker()).filter((p) => p.topic.startsWith('will/many/'));
    t.equal(got.length, 20, '20 wills');
    t.equal(new Set(got.map((p) => p.topic)).size, 20, 'one per client');
  });
});

t.test('a will on a $SYS topic is never published: the broker’s tree is not writable by clients', async (t) => {
  const tb = await startBroker();
  t.teardown(tb.stop);
  const { client: watcher } = await RawClient.connected(tb.port, { clientId: 'sys-will-watcher' });
  t.teardown(() => watcher.destroy());
  await subscribe(watcher, { '$SYS/#': 1, 'sys-will/marker': 1 });
  const { client } = await RawClient.connected(tb.port, {
    clientId: 'sys-will',
    will: will('$SYS/broker/version', 'pwned', 1, true),
  });
  client.destroy();
  await serverClosed(tb, 'sys-will');
  const { client: pub } = await RawClient.connected(tb.port, { clientId: 'sys-will-pub' });
  t.teardown(() => pub.destroy());
  await publish(pub, 'sys-will/marker', 'm', 1);
  const got = await receiveUntil(watcher, 'sys-will/marker');
  t.same(
    got.map((p) => p.topic),
    ['sys-will/marker'],
    'nothing on $SYS before the marker',
  );
  await tb.logs.waitFor((l) => l.msg.startsWith('will not published: $SYS'));
});
