/**
 * MQTT 5 subscriptions end to end over real sockets: the subscription options (no local,
 * retain as published, retain handling), subscription identifiers, and the reason codes of
 * SUBACK and UNSUBACK.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PublishPacket } from '@tern/protocol';
import { type RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { tempDir } from './support/access.js';
import { packetId, receive, receiveUntil, text } from './support/flows.js';
import { connect4, connect5, connect5Elsewhere, payloads, publish5, subscribe5 } from './support/v5.js';

const ids = (p: PublishPacket | undefined): number[] | undefined =>
  p?.properties?.subscriptionIdentifiers === undefined
    ? undefined
    : [...p.properties.subscriptionIdentifiers].sort((a, b) => a - b);

t.test('MQTT 5 subscription options', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);

  await t.test(
    "no local: a subscription with it gets no message its own client published, and gets another client's [MQTT-3.8.3-3]",
    async (t) => {
      const { client: a } = await connect5(t, port, 'nl-a');
      t.same(await subscribe5(a, [{ topic: 'nl/#', qos: 1, noLocal: true }]), [1]);
      const { client: b } = await connect5Elsewhere(t, tb, 'nl-a', 'nl-b');

      // Its own copy would be written right after its PUBACK, before b's message could arrive.
      await publish5(a, 'nl/t', 'from a', 1);
      await publish5(a, 'nl/t', 'from a at 0', 0);
      await publish5(b, 'nl/t', 'from b', 1);
      t.same(payloads(await receiveUntil(a, 'nl/t')), ['from b'], "only the other client's message");

      // Without the option, a client's own message comes back to it.
      const { client: plain } = await connect5(t, port, 'nl-plain');
      await subscribe5(plain, [{ topic: 'nl-plain/t', qos: 1 }]);
      await publish5(plain, 'nl-plain/t', 'own', 1);
      t.equal(text(await receive(plain)), 'own', 'without no local its own message is delivered');

      // No local belongs to one subscription: an overlapping one without it still delivers.
      const { client: both } = await connect5(t, port, 'nl-both');
      await subscribe5(both, [
        { topic: 'nl-both/#', qos: 1, noLocal: true },
        { topic: 'nl-both/t', qos: 1 },
      ]);
      // QoS 0: nothing to wait for, so the copies coming back do not meet a wait for a PUBACK.
      await publish5(both, 'nl-both/t', 'overlap', 0);
      await publish5(both, 'nl-both/other', 'not back', 0);
      await publish5(both, 'nl-both/t', 'overlap again', 0);
      const got: PublishPacket[] = [await receive(both), await receive(both)];
      t.same(payloads(got), ['overlap', 'overlap again'], 'through the subscription without no local, once each');
    },
  );

  await t.test(
    'retain as published: a live delivery of a retained publish keeps RETAIN=1 with it, RETAIN=0 without [MQTT-3.3.1-12]',
    async (t) => {
      const { client: keep } = await connect5(t, port, 'rap-keep');
      await subscribe5(keep, [{ topic: 'rap/t', qos: 1, retainAsPublished: true }]);
      const { client: clear } = await connect5(t, port, 'rap-clear');
      await subscribe5(clear, [{ topic: 'rap/t', qos: 1 }]);
      const { client: pub } = await connect5Elsewhere(t, tb, 'rap-keep', 'rap-pub');

      for (const qos of [0, 1] as const) {
        await publish5(pub, 'rap/t', `retained at ${qos}`, qos, { retain: true });
        const kept = await receive(keep);
        t.equal(text(kept), `retained at ${qos}`);
        t.equal(kept.retain, true, `QoS ${qos}: RETAIN=1 with retain as published`);
        const cleared = await receive(clear);
        t.equal(text(cleared), `retained at ${qos}`);
        t.equal(cleared.retain, false, `QoS ${qos}: RETAIN=0 without it [MQTT-3.3.1-9]`);
      }
      await publish5(pub, 'rap/t', 'not retained', 1);
      t.equal((await receive(keep)).retain, false, 'a publish that was not retained arrives with RETAIN=0');
      t.equal((await receive(clear)).retain, false);
      // Leave no retained message for the other tests of this broker.
      await publish5(pub, 'rap/t', '', 1, { retain: true });
    },
  );

  await t.test(
    'retain handling: 0 sends the retained messages on every SUBSCRIBE, 1 only for a new subscription, 2 never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]',
    async (t) => {
      const { client: pub } = await connect5(t, port, 'rh-pub');
      await publish5(pub, 'rh/t', 'kept', 1, { retain: true });
      // A retained message on a filter asked for with retain handling 0, after the one under
      // test in the same SUBSCRIBE: its arrival proves the one before it was not sent.
      await publish5(pub, 'rh/marker', 'marker', 1, { retain: true });
      const marker = { topic: 'rh/marker', qos: 1, retainHandling: 0 } as const;
      const retainedUpToMarker = async (client: RawClient) => {
        const got = await receiveUntil(client, 'rh/marker');
        t.ok(
          got.every((p) => p.retain),
          'sent on SUBSCRIBE with RETAIN=1 [MQTT-3.3.1-8]',
        );
        return payloads(got);
      };

      const { client: zero } = await connect5(t, port, 'rh-0');
      await subscribe5(zero, [{ topic: 'rh/t', qos: 1, retainHandling: 0 }, marker]);
      t.same(await retainedUpToMarker(zero), ['kept', 'marker'], '0: sent on the first SUBSCRIBE');
      await subscribe5(zero, [{ topic: 'rh/t', qos: 1, retainHandling: 0 }, marker]);
      t.same(await retainedUpToMarker(zero), ['kept', 'marker'], '0: sent again when the subscription is replaced');

      const { client: one } = await connect5(t, port, 'rh-1');
      await subscribe5(one, [{ topic: 'rh/t', qos: 1, retainHandling: 1 }, marker]);
      t.same(await retainedUpToMarker(one), ['kept', 'marker'], '1: sent for a new subscription');
      await subscribe5(one, [{ topic: 'rh/t', qos: 1, retainHandling: 1 }, marker]);
      t.same(await retainedUpToMarker(one), ['marker'], '1: not sent when the subscription existed');
      one.send({ cmd: 'unsubscribe', messageId: packetId(), unsubscriptions: ['rh/t'] });
      await one.expect('unsuback');
      await subscribe5(one, [{ topic: 'rh/t', qos: 1, retainHandling: 1 }, marker]);
      t.same(await retainedUpToMarker(one), ['kept', 'marker'], '1: sent again once it is new again');

      const { client: two } = await connect5(t, port, 'rh-2');
      await subscribe5(two, [{ topic: 'rh/t', qos: 1, retainHandling: 2 }, marker]);
      t.same(await retainedUpToMarker(two), ['marker'], '2: not sent for a new subscription');
      await subscribe5(two, [{ topic: 'rh/t', qos: 1, retainHandling: 2 }, marker]);
      t.same(await retainedUpToMarker(two), ['marker'], '2: nor for an existing one');
      await publish5(pub, 'rh/t', 'live', 1);
      const live = await receive(two);
      t.equal(text(live), 'live', '2: live messages are delivered');
      t.equal(live.retain, false);

      await publish5(pub, 'rh/t', '', 1, { retain: true });
      await publish5(pub, 'rh/marker', '', 1, { retain: true });
    },
  );

  await t.test(
    'subscription identifiers: a PUBLISH carries the identifier of every matching subscription [MQTT-3.3.4-3], once [MQTT-3.3.4-4]; a retained message sent on SUBSCRIBE carries it too',
    async (t) => {
      const { client: sub } = await connect5(t, port, 'si-sub');
      t.same(await subscribe5(sub, [{ topic: 'si/+', qos: 1 }], 7), [1]);
      t.same(await subscribe5(sub, [{ topic: 'si/a', qos: 1 }], 9), [1]);
      t.same(await subscribe5(sub, [{ topic: 'si-none/+', qos: 1 }]), [1]);
      const { client: pub, clientId: pubId } = await connect5Elsewhere(t, tb, 'si-sub', 'si-pub');

      for (const qos of [0, 1] as const) {
        await publish5(pub, 'si/a', `a at ${qos}`, qos);
        await publish5(pub, 'si/b', `b at ${qos}`, qos);
        const got = await receiveUntil(sub, 'si/b');
        t.same(payloads(got), [`a at ${qos}`, `b at ${qos}`], `QoS ${qos}: one copy of the message on si/a`);
        t.same(ids(got[0]), [7, 9], `QoS ${qos}: si/a carries 7 and 9`);
        t.same(ids(got[1]), [7], `QoS ${qos}: si/b carries 7 only`);
      }

      await publish5(pub, 'si-none/x', 'none', 1);
      t.equal(ids(await receive(sub)), undefined, 'a subscription without an identifier adds none');

      // Replacing si/a without an identifier drops 9.
      await subscribe5(sub, [{ topic: 'si/a', qos: 1 }]);
      await publish5(pub, 'si/a', 'replaced', 1);
      const replaced = await receive(sub);
      t.equal(text(replaced), 'replaced');
      t.same(ids(replaced), [7], 'the replaced subscription no longer carries 9');

      await publish5(pub, 'si-r/x', 'retained', 1, { retain: true });
      const { client: late } = await connect5Elsewhere(t, tb, pubId, 'si-late');
      t.same(await subscribe5(late, [{ topic: 'si-r/+', qos: 1 }], 11), [1]);
      const retained = await receive(late);
      t.equal(text(retained), 'retained');
      t.equal(retained.retain, true);
      t.same(ids(retained), [11], 'the retained message carries the identifier of the new subscription');
      await publish5(pub, 'si-r/x', '', 1, { retain: true });
    },
  );
});

t.test('MQTT 5 SUBACK and UNSUBACK reason codes', async (t) => {
  const dir = tempDir(t);
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, '# anonymous clients\ntopic readwrite sa/#\n');
  const tb = await startBroker({ maxSubscriptions: 1, aclFile });
  const { port } = tb;
  t.teardown(tb.stop);

  await t.test('SUBACK says why a filter was refused (MQTT 5 section 3.9.3)', async (t) => {
    const { client, connack } = await connect5(t, port, 'sa-v5');
    t.equal(connack.properties?.sharedSubscriptionAvailable, undefined, 'CONNACK: shared subscriptions available');

    t.same(
      await subscribe5(client, [
        { topic: 'sa/one', qos: 1 },
        { topic: 'sa/two', qos: 0 },
      ]),
      [1, 0x97],
      'past maxSubscriptions: 0x97 (quota exceeded)',
    );
    t.same(
      await subscribe5(client, [{ topic: '$share/g', qos: 1 }]),
      [0x8f],
      'a shared subscription without a topic filter: 0x8F [MQTT-4.8.2-2]',
    );
    t.same(await subscribe5(client, [{ topic: 'secret/x', qos: 1 }]), [0x87], 'refused by the ACL: 0x87');
    t.same(await subscribe5(client, [{ topic: 'sa/one', qos: 2 }]), [2], 'replacing the one it holds is not one more');

    // The same refusals are 0x80 for a 3.1.1 client.
    const old = await connect4(t, port, 'sa-v4');
    old.send({
      cmd: 'subscribe',
      messageId: 3,
      subscriptions: [
        { topic: 'sa/one', qos: 1 },
        { topic: 'sa/two', qos: 1 },
        { topic: '$share/g', qos: 1 },
        { topic: 'secret/x', qos: 1 },
      ],
    });
    t.same((await old.expect('suback')).granted, [1, 0x80, 0x80, 0x80], '3.1.1: 0x80 for each');
  });

  await t.test('SUBACK 0x9E for the non-standard `$queue/` shares; 0x80 for a 3.1.1 client', async (t) => {
    const { client } = await connect5(t, port, 'sa-queue-v5');
    t.same(
      await subscribe5(client, [
        { topic: '$queue/sa/q', qos: 1 },
        { topic: 'sa/q', qos: 1 },
      ]),
      [0x9e, 1],
      '0x9E (shared subscriptions not supported) for `$queue/`, and the refusal took no room',
    );
    const old = await connect4(t, port, 'sa-queue-v4');
    old.send({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: '$queue/sa/q', qos: 1 }] });
    t.same((await old.expect('suback')).granted, [0x80], '3.1.1: 0x80');
  });

  await t.test('UNSUBACK: 0x00 for a filter held, 0x11 for one not held (MQTT 5 section 3.11.3)', async (t) => {
    const { client } = await connect5(t, port, 'ua-v5');
    t.same(await subscribe5(client, [{ topic: 'sa/held', qos: 1 }]), [1]);
    const messageId = packetId();
    client.send({ cmd: 'unsubscribe', messageId, unsubscriptions: ['sa/held', 'sa/never', 'sa/held'] });
    const unsuback = await client.expect('unsuback');
    t.equal(unsuback.messageId, messageId);
    t.same(unsuback.granted, [0x00, 0x11, 0x11], 'held, never held, and no longer held');
    t.same(await subscribe5(client, [{ topic: 'sa/other', qos: 0 }]), [0], 'the subscription freed room for another');
  });
});
