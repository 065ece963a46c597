import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, receiveUntil, serverClosed, subscribe, text } from './support/flows.js';

t.test('takeover: a second CONNECT with the same client id', async (t) => {
  // A window of 2 so that some messages are in flight and others queued at the takeover.
  const tb = await startBroker({ maxInflight: 2 });
  const { port, logs } = tb;
  t.teardown(tb.stop);
  const { client: pub } = await RawClient.connected(port, { clientId: 'tk-publisher' });
  t.teardown(() => pub.destroy());

  await t.test('closes the first connection [MQTT-3.1.4-2] and logs it', async (t) => {
    const { client: first } = await RawClient.connected(port, { clientId: 'tk-a' });
    t.teardown(() => first.destroy());
    const { client: second, connack } = await RawClient.connected(port, { clientId: 'tk-a' });
    t.teardown(() => second.destroy());
    t.equal(connack.returnCode, 0);
    await first.waitClosed();
    t.equal(second.closed, false, 'the new connection stays');
    const line = await logs.waitFor((l) => l.clientId === 'tk-a' && l.msg.includes('taken over'));
    t.match(line.msg, /connection taken over by a new CONNECT with the same client id/);
    await logs.waitFor((l) => l.clientId === 'tk-a' && l.reason === 'takeover');
    if (tb.broker !== null) t.equal(tb.broker.clients.size, 2, 'one live client per id (and the publisher)');
    t.equal((await tb.stats()).gauges.clientsConnected, 2, 'one connected client per id (and the publisher)');
    t.match(await tb.session('tk-a'), { online: true }, 'the session has its live connection');
    second.send({ cmd: 'pingreq' });
    await second.expect('pingresp');
  });

  await t.test(
    'cleanSession=0: subscriptions, inflight (resent with DUP=1) and queue move [MQTT-4.4.0-1]',
    async (t) => {
      const { client: first } = await RawClient.connected(port, { clientId: 'tk-b', clean: false });
      t.teardown(() => first.destroy());
      await subscribe(first, { 'tk/b/#': 2 });
      await publish(pub, 'tk/b/1', 'one', 1);
      await publish(pub, 'tk/b/2', 'two', 2);
      await publish(pub, 'tk/b/3', 'three', 1);
      await publish(pub, 'tk/b/4', 'four', 2);
      // The first connection receives the two that fit the window and acknowledges nothing.
      const unacked = [await receive(first, false), await receive(first, false)];
      t.same(unacked.map(text), ['one', 'two']);

      const { client: second, connack } = await RawClient.connected(port, { clientId: 'tk-b', clean: false });
      t.teardown(() => second.destroy());
      await first.waitClosed();
      t.equal(connack.sessionPresent, true, 'the session is present [MQTT-3.2.2-2]');
      const resent = [await receive(second), await receive(second)];
      t.same(
        resent.map((p) => ({ text: text(p), dup: p.dup, qos: p.qos, id: p.messageId })),
        unacked.map((p) => ({ text: text(p), dup: true, qos: p.qos, id: p.messageId })),
        'the unacknowledged PUBLISHes again, same ids, DUP=1, in order',
      );
      // No SUBSCRIBE here: the subscription moved with the session.
      await publish(pub, 'tk/b/marker', 'marker', 1);
      const rest = await receiveUntil(second, 'tk/b/marker');
      t.same(
        rest.map((p) => `${text(p)}:${p.dup}`),
        ['three:false', 'four:false', 'marker:false'],
        'then the queue, then new messages, each once',
      );
    },
  );

  await t.test(
    'cleanSession=0 over a QoS 2 message already PUBRECed: PUBREL is resent, not the PUBLISH [MQTT-4.3.3-1]',
    async (t) => {
      const { client: first } = await RawClient.connected(port, { clientId: 'tk-c', clean: false });
      t.teardown(() => first.destroy());
      await subscribe(first, { 'tk/c': 2 });
      await publish(pub, 'tk/c', 'exactly once', 2);
      const p = await receive(first, false);
      first.send({ cmd: 'pubrec', messageId: p.messageId as number });
      const pubrel = await first.expect('pubrel');

      const { client: second } = await RawClient.connected(port, { clientId: 'tk-c', clean: false });
      t.teardown(() => second.destroy());
      await first.waitClosed();
      const again = await second.expect('pubrel');
      t.equal(again.messageId, pubrel.messageId, 'PUBREL for the same id');
      second.send({ cmd: 'pubcomp', messageId: again.messageId });
      await publish(pub, 'tk/c', 'marker', 1);
      t.same((await receiveUntil(second, 'tk/c')).map(text), ['marker'], 'the message was not sent again');
    },
  );

  await t.test('cleanSession=1 on the new connection starts over [MQTT-3.1.2-6]', async (t) => {
    const { client: first } = await RawClient.connected(port, { clientId: 'tk-d', clean: false });
    t.teardown(() => first.destroy());
    await subscribe(first, { 'tk/d': 1 });
    const { client: second, connack } = await RawClient.connected(port, { clientId: 'tk-d', clean: true });
    t.teardown(() => second.destroy());
    await first.waitClosed();
    t.equal(connack.sessionPresent, false, 'session present 0 [MQTT-3.2.2-1]');
    await subscribe(second, { 'tk/d/marker': 1 });
    await publish(pub, 'tk/d', 'old subscription', 1);
    await publish(pub, 'tk/d/marker', 'marker', 1);
    t.same((await receiveUntil(second, 'tk/d/marker')).map(text), ['marker']);
  });

  await t.test("the first connection's will is published once", async (t) => {
    const { client: watcher } = await RawClient.connected(port, { clientId: 'tk-watcher' });
    t.teardown(() => watcher.destroy());
    await subscribe(watcher, { 'tk/will/#': 1 });
    const { client: first } = await RawClient.connected(port, {
      clientId: 'tk-e',
      clean: false,
      will: { topic: 'tk/will/e', payload: Buffer.from('first'), qos: 1, retain: false },
    });
    const { client: second } = await RawClient.connected(port, {
      clientId: 'tk-e',
      clean: false,
      will: { topic: 'tk/will/e', payload: Buffer.from('second'), qos: 1, retain: false },
    });
    await first.waitClosed();
    // The second leaves cleanly: its own will is discarded [MQTT-3.1.2-10].
    await second.disconnect();
    await serverClosed(tb, 'tk-e');
    await publish(pub, 'tk/will/marker', 'marker', 1);
    t.same(
      (await receiveUntil(watcher, 'tk/will/marker')).map((p) => `${p.topic}:${text(p)}`),
      ['tk/will/e:first', 'tk/will/marker:marker'],
    );
  });

  await t.test('a chain of takeovers leaves one live connection', async (t) => {
    const clients: RawClient[] = [];
    for (let i = 0; i < 5; i++) {
      const { client, connack } = await RawClient.connected(port, { clientId: 'tk-f', clean: false });
      t.equal(connack.sessionPresent, i > 0, `CONNECT ${i + 1}: session present ${i > 0}`);
      clients.push(client);
    }
    t.teardown(() => {
      for (const c of clients) c.destroy();
    });
    await Promise.all(clients.slice(0, -1).map((c) => c.waitClosed()));
    const last = clients[clients.length - 1] as RawClient;
    t.equal(last.closed, false);
    if (tb.broker !== null)
      t.equal(tb.broker.clients.get('tk-f')?.conn.isClosed, false, 'the broker holds the last one');
    last.send({ cmd: 'pingreq' });
    await last.expect('pingresp');
    t.match(await tb.session('tk-f'), { online: true, persistent: true }, 'the session is online, with the last one');
    t.equal((await tb.stats()).gauges.clientsConnected, 2, 'one connected client for the id (and the publisher)');
  });
});
