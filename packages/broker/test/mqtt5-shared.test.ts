/**
 * Shared subscriptions `$share/{group}/{filter}` (MQTT 5 section 4.8.2, and for 3.1.1 clients
 * as other brokers allow): each message to one member of the group, every member in turn, a
 * member's unacknowledged messages to another member when it goes, and no retained messages
 * when one is made. Run in one thread and with routing workers (members then sit on more than
 * one worker, and the choice crosses threads).
 */
import type { Packet, PublishPacket } from '@tern/protocol';
import { type RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { publish, settled, subscribe } from './support/flows.js';
import { connect4, connect5, connect5Elsewhere, publish5, subscribe5, untilPingresp } from './support/v5.js';

const publishes = (packets: readonly Packet[]): PublishPacket[] =>
  packets.filter((p): p is PublishPacket => p.cmd === 'publish');

/** The payloads of the next `count` PUBLISHes `client` gets, each acknowledged (QoS 1) as it comes. */
async function takeAcking(client: RawClient, count: number): Promise<string[]> {
  const got: string[] = [];
  while (got.length < count) {
    const p = await client.next();
    if (p.cmd !== 'publish') continue;
    client.send({ cmd: 'puback', messageId: p.messageId as number });
    got.push(p.payload.toString());
  }
  return got;
}

t.test('shared subscriptions', async (t) => {
  const tb = await startBroker();
  t.teardown(tb.stop);
  const { port } = tb;

  await t.test('each message goes to exactly one member, every member gets some', async (t) => {
    const members: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const { client } = await connect5(t, port, `sh-v5-${i}`);
      t.same(await subscribe5(client, [{ topic: '$share/workers/sh/jobs/+', qos: 1 }]), [1]);
      members.push(client);
    }
    // With routing workers, one member sits on another worker than the first: the group spans both.
    const { client: elsewhere } = await connect5Elsewhere(t, tb, 'sh-v5-0', 'sh-v5-far');
    t.same(await subscribe5(elsewhere, [{ topic: '$share/workers/sh/jobs/+', qos: 1 }]), [1]);
    members.push(elsewhere);
    // A 3.1.1 client joins the same group, as other brokers allow.
    const old = await connect4(t, port, 'sh-v4');
    t.same(await subscribe(old, { '$share/workers/sh/jobs/+': 1 }), [1]);
    members.push(old);
    // An ordinary subscriber beside the group gets every message.
    const { client: all } = await connect5(t, port, 'sh-all');
    await subscribe5(all, [{ topic: 'sh/jobs/#', qos: 0 }]);

    const { client: pub } = await connect5(t, port, 'sh-pub');
    const sent = Array.from({ length: 40 }, (_, i) => `job-${i}`);
    for (const job of sent) await publish5(pub, `sh/jobs/${job}`, job, 1);
    await settled(pub);

    // PUBLISHes the broker wrote before each member's PINGRESP: every one routed so far.
    const got: string[][] = [];
    for (const member of members) {
      const packets = publishes(await untilPingresp(member));
      for (const p of packets) if (p.qos === 1) member.send({ cmd: 'puback', messageId: p.messageId as number });
      got.push(packets.map((p) => p.payload.toString()));
    }
    t.same(got.flat().sort(), [...sent].sort(), 'every message once, across the group');
    for (let i = 0; i < got.length; i++) t.ok((got[i] as string[]).length > 0, `member ${i} had its turn`);
    const everything = publishes(await untilPingresp(all)).map((p) => p.payload.toString());
    t.same(everything.sort(), [...sent].sort(), 'the ordinary subscriber got them all');
  });

  await t.test('round robin: two members take turns, message by message', async (t) => {
    // Wherever the two sit (one worker or two), the member where a message enters picks among
    // itself and the other, and a worker with both picks among its own: either way they alternate.
    const { client: a } = await connect5(t, port, 'sh-rr-a');
    t.same(await subscribe5(a, [{ topic: '$share/rr/sh/rr', qos: 1 }]), [1]);
    const { client: b } = await connect5Elsewhere(t, tb, 'sh-rr-a', 'sh-rr-b');
    t.same(await subscribe5(b, [{ topic: '$share/rr/sh/rr', qos: 1 }]), [1]);
    const { client: pub } = await connect5(t, port, 'sh-rr-pub');
    const sent = Array.from({ length: 12 }, (_, i) => `n${i}`);
    for (const m of sent) await publish5(pub, 'sh/rr', m, 1);
    await settled(pub);
    const take = async (member: RawClient) => {
      const packets = publishes(await untilPingresp(member));
      for (const p of packets) member.send({ cmd: 'puback', messageId: p.messageId as number });
      return packets.map((p) => p.payload.toString());
    };
    const toA = await take(a);
    const toB = await take(b);
    const even = sent.filter((_, i) => i % 2 === 0);
    const odd = sent.filter((_, i) => i % 2 === 1);
    t.ok(
      (toA.join() === even.join() && toB.join() === odd.join()) ||
        (toA.join() === odd.join() && toB.join() === even.join()),
      `one member gets every other message, the other the rest, in order (a: ${toA.join()}; b: ${toB.join()})`,
    );
  });

  await t.test('a member that leaves with messages unacknowledged: another member gets them', async (t) => {
    const { client: leaving } = await connect5(t, port, 'sh-leaving');
    await subscribe5(leaving, [{ topic: '$share/g2/sh/re', qos: 1 }]);
    // On another worker when there are several: the messages cross threads to it.
    const { client: staying } = await connect5Elsewhere(t, tb, 'sh-leaving', 'sh-staying');
    await subscribe5(staying, [{ topic: '$share/g2/sh/re', qos: 1 }]);
    const { client: pub } = await connect5(t, port, 'sh-re-pub');
    const sent = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const m of sent) await publish5(pub, 'sh/re', m, 1);
    await settled(pub);
    // The leaving member acknowledges nothing and goes.
    const unacked = publishes(await untilPingresp(leaving)).map((p) => p.payload.toString());
    t.ok(unacked.length > 0, 'the leaving member had some');
    leaving.destroy();
    await leaving.waitClosed();
    const got = await takeAcking(staying, sent.length);
    t.same(got.sort(), [...sent].sort(), 'the staying member ends up with all of them');
  });

  await t.test(
    'a member that leaves with its share still queued (past its receive maximum): another member gets those too; its own subscriptions’ messages stay with its session',
    async (t) => {
      const connect = { clean: false, properties: { sessionExpiryInterval: 300, receiveMaximum: 1 } };
      const { client: leaving } = await connect5(t, port, 'sh-queued', connect);
      await subscribe5(leaving, [
        { topic: '$share/g9/sh/queued', qos: 1 },
        { topic: 'sh/own', qos: 1 },
      ]);
      const { client: staying } = await connect5Elsewhere(t, tb, 'sh-queued', 'sh-queued-stay');
      await subscribe5(staying, [{ topic: '$share/g9/sh/queued', qos: 1 }]);
      const { client: pub } = await connect5(t, port, 'sh-queued-pub');
      const sent = Array.from({ length: 10 }, (_, i) => `s${i}`);
      for (const m of sent) await publish5(pub, 'sh/queued', m, 1);
      await publish5(pub, 'sh/own', 'own-1', 1);
      await publish5(pub, 'sh/own', 'own-2', 1);
      await settled(pub);
      // Receive maximum 1: one PUBLISH in flight, the rest of its share waits in its queue.
      const inflight = publishes(await untilPingresp(leaving));
      t.equal(inflight.length, 1, 'one in flight, unacknowledged');
      leaving.destroy();
      await leaving.waitClosed();

      const got = await takeAcking(staying, sent.length);
      t.same(got.sort(), [...sent].sort(), 'the staying member ends up with the whole share');

      const { client: back, connack } = await connect5(t, port, 'sh-queued', {
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      });
      t.equal(connack.sessionPresent, true);
      await publish5(pub, 'sh/own', 'marker', 1);
      const mine: string[] = [];
      for (;;) {
        const p = await back.expect('publish');
        back.send({ cmd: 'puback', messageId: p.messageId as number });
        mine.push(p.payload.toString());
        if (p.payload.toString() === 'marker') break;
      }
      t.same(mine, ['own-1', 'own-2', 'marker'], 'the returning member gets its own messages, none of the share');
    },
  );

  await t.test('a lone persistent member keeps what it had not acknowledged: resent when it returns', async (t) => {
    const connect = { clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await connect5(t, port, 'sh-lone', connect);
    await subscribe5(first.client, [{ topic: '$share/g6/sh/lone', qos: 1 }]);
    const { client: pub } = await connect5(t, port, 'sh-lone-pub');
    await publish5(pub, 'sh/lone', 'q1', 1);
    await settled(pub);
    await first.client.expect('publish');
    // Nobody else in the group: the message stays with the session instead of being lost.
    first.client.destroy();
    await first.client.waitClosed();
    const again = await connect5(t, port, 'sh-lone', connect);
    t.equal(again.connack.sessionPresent, true);
    const back = await again.client.expect('publish');
    t.equal(back.payload.toString(), 'q1', 'the QoS 1 message is not lost');
  });

  await t.test('a QoS 2 message already sent stays with its member [MQTT-4.8.2-4]', async (t) => {
    const { client: a } = await connect5(t, port, 'sh-q2-a');
    await subscribe5(a, [{ topic: '$share/g7/sh/q2', qos: 2 }]);
    const { client: b } = await connect5Elsewhere(t, tb, 'sh-q2-a', 'sh-q2-b');
    await subscribe5(b, [{ topic: '$share/g7/sh/q2', qos: 2 }]);
    const { client: pub } = await connect5(t, port, 'sh-q2-pub');
    for (let i = 0; i < 4; i++) await publish5(pub, 'sh/q2', `q${i}`, 2);
    await settled(pub);
    const toA = publishes(await untilPingresp(a)).map((p) => p.payload.toString());
    const toB = publishes(await untilPingresp(b));
    for (const p of toB) b.send({ cmd: 'pubrec', messageId: p.messageId as number });
    a.destroy();
    await a.waitClosed();
    // B answers what comes as it must; nothing A was sent may reach B too.
    const later = publishes(await untilPingresp(b)).map((p) => p.payload.toString());
    t.same(
      later.filter((m) => toA.includes(m)),
      [],
      'what A was sent is never sent to B',
    );
  });

  await t.test('a shared subscription’s identifier comes with its messages [MQTT-3.3.4-3]', async (t) => {
    const { client } = await connect5(t, port, 'sh-sid');
    await subscribe5(client, [{ topic: '$share/g8/sh/sid/#', qos: 0 }], 17);
    const { client: pub } = await connect5(t, port, 'sh-sid-pub');
    await publish5(pub, 'sh/sid/a', 'x', 1);
    await settled(pub);
    const got = await client.expect('publish');
    t.same(got.properties?.subscriptionIdentifiers, [17]);
  });

  await t.test('no retained messages when a shared subscription is made (MQTT 5 section 4.8.2)', async (t) => {
    const { client: pub } = await connect5(t, port, 'sh-ret-pub');
    await publish5(pub, 'sh/ret/a', 'kept', 1, { retain: true });
    await settled(pub);
    const { client } = await connect5(t, port, 'sh-ret');
    await subscribe5(client, [{ topic: '$share/g3/sh/ret/#', qos: 1 }]);
    t.same(publishes(await untilPingresp(client)), [], 'nothing on subscribe');
    await publish5(pub, 'sh/ret/a', 'live', 1, { retain: true });
    const live = await client.expect('publish');
    t.equal(live.payload.toString(), 'live', 'live messages come as usual');
  });

  await t.test('no local on a shared subscription is a protocol error [MQTT-3.8.3-4]', async (t) => {
    const { client } = await connect5(t, port, 'sh-nolocal');
    client.send({
      cmd: 'subscribe',
      messageId: 9,
      subscriptions: [{ topic: '$share/g4/sh/x', qos: 1, noLocal: true }],
    });
    const bye = await client.expect('disconnect');
    t.equal(bye.reasonCode, 0x82);
    await client.waitClosed();
  });

  await t.test('a 3.1.1 publisher reaches the group too', async (t) => {
    const { client: member } = await connect5(t, port, 'sh-old-member');
    await subscribe5(member, [{ topic: '$share/g5/sh/old', qos: 1 }]);
    const old = await connect4(t, port, 'sh-old-pub');
    await publish(old, 'sh/old', 'from 3.1.1', 1);
    await settled(old);
    const got = await member.expect('publish');
    t.equal(got.payload.toString(), 'from 3.1.1');
  });
});
