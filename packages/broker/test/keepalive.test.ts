import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, receive, subscribe, text } from './support/flows.js';

t.test('keepalive', async (t) => {
  const { port, logs, stop } = await startBroker();
  t.teardown(stop);

  await t.test('PINGREQ is answered with PINGRESP [MQTT-3.12.4-1]', async (t) => {
    const { client } = await RawClient.connected(port, { clientId: 'ka-ping', keepalive: 30 });
    t.teardown(() => client.destroy());
    client.send({ cmd: 'pingreq' });
    await client.expect('pingresp');
    client.send({ cmd: 'pingreq' });
    await client.expect('pingresp');
    t.pass('two PINGRESPs');
  });

  await t.test(
    'a silent client is closed after 1.5 x keepalive and its will is published [MQTT-3.1.2-24]',
    async (t) => {
      const { client: watcher } = await RawClient.connected(port, { clientId: 'ka-watcher' });
      t.teardown(() => watcher.destroy());
      await subscribe(watcher, { 'ka/will/#': 1 });
      const { client: silent } = await RawClient.connected(port, {
        clientId: 'ka-silent',
        keepalive: 1,
        will: { topic: 'ka/will/silent', payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      t.teardown(() => silent.destroy());
      await silent.waitClosed();
      const will = await receive(watcher);
      t.equal(will.topic, 'ka/will/silent');
      t.equal(text(will), 'gone');
      const line = await logs.waitFor((l) => l.clientId === 'ka-silent' && l.msg.includes('keepalive-timeout'));
      t.equal(line.reason, 'keepalive-timeout');
    },
  );

  await t.test('keepalive 0 turns the timeout off (3.1.2.10)', async (t) => {
    // A connects first: had it a timeout, it would end before B's.
    const { client: a } = await RawClient.connected(port, { clientId: 'ka-zero', keepalive: 0 });
    t.teardown(() => a.destroy());
    const { client: b } = await RawClient.connected(port, { clientId: 'ka-one', keepalive: 1 });
    t.teardown(() => b.destroy());
    await b.waitClosed();
    t.equal(a.closed, false, 'A is still open after B timed out');
    a.send({ cmd: 'pingreq' });
    await a.expect('pingresp');
    t.pass('A answers PINGREQ');
  });

  await t.test('any packet, not only PINGREQ, keeps the connection alive [MQTT-3.1.2-23]', async (t) => {
    const { client: a } = await RawClient.connected(port, { clientId: 'ka-busy', keepalive: 1 });
    t.teardown(() => a.destroy());
    // QoS 0 PUBLISH well inside the keepalive; this timer is traffic, not synchronisation.
    let sent = 0;
    const traffic = setInterval(() => {
      if (!a.closed) void publish(a, 'ka/busy', String(sent++), 0);
    }, 200);
    t.teardown(() => clearInterval(traffic));
    // B connects after A and stays silent: A, as silent, would have been closed first.
    const { client: b } = await RawClient.connected(port, { clientId: 'ka-quiet', keepalive: 1 });
    t.teardown(() => b.destroy());
    await b.waitClosed();
    clearInterval(traffic);
    t.equal(a.closed, false, 'A is still open after B timed out');
    t.ok(sent > 0, 'A sent PUBLISH packets meanwhile');
    a.send({ cmd: 'pingreq' });
    await a.expect('pingresp');
    t.equal(a.pending.length, 0, 'nothing else was sent to A');
  });

  await t.test(
    'packets 1.2 x keepalive apart keep the connection: the server allows 1.5 x [MQTT-3.1.2-24]',
    async (t) => {
      // Regression: lastSeen is read from the coarse clock, up to one sweep old, and the
      // timeout once fired after as little as ~1 x keepalive of real silence.
      const { client: a } = await RawClient.connected(port, { clientId: 'ka-late', keepalive: 1 });
      t.teardown(() => a.destroy());
      const pings = setInterval(() => {
        if (!a.closed) a.send({ cmd: 'pingreq' });
      }, 1200);
      t.teardown(() => clearInterval(pings));
      // B (keepalive 3, silent) outlives several of A's intervals before it is closed.
      const { client: b } = await RawClient.connected(port, { clientId: 'ka-late-quiet', keepalive: 3 });
      t.teardown(() => b.destroy());
      await b.waitClosed();
      clearInterval(pings);
      t.equal(a.closed, false, 'A is still open after B timed out');
      const pongs = a.pending.length;
      t.ok(pongs >= 2, `A got PINGRESPs meanwhile (${pongs})`);
      t.ok(
        a.pending.every((p) => p.cmd === 'pingresp'),
        'only PINGRESPs',
      );
    },
  );
});
