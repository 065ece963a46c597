/**
 * MQTT 5 PUBLISH end to end over real sockets: properties passed on unchanged, request and
 * response, mixed 3.1.1 and 5.0 subscribers, message expiry, topic aliases both ways, the
 * client's maximum packet size and receive maximum, the broker's receive maximum, and PUBACK
 * 0x87 for a publish the ACL refuses.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import type { Properties, PublishPacket } from '@tern/protocol';
import { startBroker } from '@tern/testkit';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import t from 'tap';
import { tempDir } from './support/access.js';
import { publish, receive, receiveUntil, serverClosed, settled, text } from './support/flows.js';
import {
  connect4,
  connect5,
  connect5Elsewhere,
  onAnotherWorker,
  payloads,
  publish5,
  subscribe5,
  untilPingresp,
} from './support/v5.js';

/** The properties a subscriber sees that the publisher chose (what the broker must pass on). */
const passedOn = (p: Properties | undefined) => ({
  payloadFormatIndicator: p?.payloadFormatIndicator,
  contentType: p?.contentType,
  responseTopic: p?.responseTopic,
  correlationData: p?.correlationData?.toString('hex'),
  userProperties: p?.userProperties,
});

/** An MQTT.js client speaking MQTT 5, ended (forced) when `t` ends. */
async function openMqttjs5(
  t: { teardown: (fn: () => unknown) => void },
  port: number,
  clientId: string,
  options: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    port,
    host: '127.0.0.1',
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...options,
  });
  t.teardown(() => c.endAsync(true));
  return c;
}

t.test('MQTT 5 PUBLISH', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);

  await t.test(
    'publisher properties reach a v5 subscriber unchanged, user properties in order [MQTT-3.3.2-17] [MQTT-3.3.2-18]; the topic alias is not forwarded',
    async (t) => {
      const { client: sub } = await connect5(t, port, 'props-sub');
      t.same(await subscribe5(sub, [{ topic: 'props/#', qos: 1 }]), [1]);
      // With routing workers, the properties cross from the publisher's worker to the subscriber's.
      const { client: pub } = await connect5Elsewhere(t, tb, 'props-sub', 'props-pub');
      const properties: Properties = {
        payloadFormatIndicator: true,
        contentType: 'application/json; charset=utf-8',
        responseTopic: 'props/reply/here',
        correlationData: Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x00]),
        userProperties: [
          ['first', '1'],
          ['dup', 'a'],
          ['middle', 'ü ✓'],
          ['dup', 'b'],
          ['dup', 'a'],
          ['last', ''],
        ],
        topicAlias: 3,
      };
      for (const qos of [0, 1] as const) {
        await publish5(pub, `props/q${qos}`, `{"qos":${qos}}`, qos, { properties });
        const got = await receive(sub);
        t.equal(got.topic, `props/q${qos}`, `QoS ${qos}: on its topic`);
        t.equal(text(got), `{"qos":${qos}}`);
        t.same(
          passedOn(got.properties),
          passedOn(properties),
          `QoS ${qos}: payload format indicator, content type, response topic, correlation data and user properties as sent`,
        );
        t.equal(got.properties?.topicAlias, undefined, `QoS ${qos}: the publisher's topic alias is not forwarded`);
        t.equal(got.properties?.messageExpiryInterval, undefined, `QoS ${qos}: no expiry interval was sent`);
        t.equal(got.properties?.subscriptionIdentifiers, undefined, `QoS ${qos}: no subscription identifier`);
      }
      // A message without properties arrives without them (no leftovers from the one before).
      await publish5(pub, 'props/plain', 'plain', 1);
      const plain = await receive(sub);
      t.equal(text(plain), 'plain');
      t.same(passedOn(plain.properties), passedOn(undefined), 'no properties');
      // An explicit 0 payload format indicator is passed on as sent too [MQTT-3.3.2-4]; the expiry
      // interval of a message delivered at once is what is left of it [MQTT-3.3.2-6].
      await publish5(pub, 'props/expiring', 'bytes', 1, {
        properties: { payloadFormatIndicator: false, messageExpiryInterval: 30 },
      });
      const expiring = await receive(sub);
      t.equal(expiring.properties?.payloadFormatIndicator, false, 'payload format indicator 0 as sent');
      const left = expiring.properties?.messageExpiryInterval;
      t.ok(left !== undefined && left > 0 && left <= 30, `message expiry interval passed on: 0 < ${left} <= 30`);
    },
  );

  await t.test(
    'request/response between two MQTT.js v5 clients: the response topic and correlation data carry the answer back (MQTT 5 section 4.10)',
    async (t) => {
      const connect = (clientId: string): Promise<MqttClient> => openMqttjs5(t, port, clientId);
      const responder = await connect('rr-responder');
      // With routing workers, request and answer cross between the two clients' workers.
      const { client: requester } = await onAnotherWorker(tb, 'rr-responder', 'rr-requester', connect, (c) =>
        c.endAsync(true),
      );
      let failed: (e: Error) => void = () => {};
      const failure = new Promise<never>((_, reject) => {
        failed = reject;
      });
      // Handled here too: it may reject before the race below is awaited.
      failure.catch(() => {});
      responder.on('message', (topic, payload, packet: IPublishPacket) => {
        if (topic !== 'rr/service/double') return;
        const responseTopic = packet.properties?.responseTopic;
        if (responseTopic === undefined) {
          failed(new Error(`the request arrived without its response topic: ${JSON.stringify(packet.properties)}`));
          return;
        }
        const answer = String(Number(payload.toString()) * 2);
        void responder.publishAsync(responseTopic, answer, {
          qos: 1,
          properties: { correlationData: packet.properties?.correlationData },
        });
      });
      await responder.subscribeAsync('rr/service/double', { qos: 1 });
      await requester.subscribeAsync('rr/reply/requester', { qos: 1 });

      const answers: Array<{ topic: string; payload: string; correlation: string | undefined }> = [];
      const two = new Promise<void>((resolve) => {
        requester.on('message', (topic, payload, packet: IPublishPacket) => {
          answers.push({
            topic,
            payload: payload.toString(),
            correlation: packet.properties?.correlationData?.toString(),
          });
          if (answers.length === 2) resolve();
        });
      });
      for (const [n, id] of [
        ['21', 'request-1'],
        ['50', 'request-2'],
      ] as const) {
        await requester.publishAsync('rr/service/double', n, {
          qos: 1,
          properties: { responseTopic: 'rr/reply/requester', correlationData: Buffer.from(id) },
        });
      }
      await Promise.race([two, failure]);
      const byCorrelation = Object.fromEntries(answers.map((a) => [a.correlation, a]));
      t.same(byCorrelation['request-1'], { topic: 'rr/reply/requester', payload: '42', correlation: 'request-1' });
      t.same(byCorrelation['request-2'], { topic: 'rr/reply/requester', payload: '100', correlation: 'request-2' });
    },
  );

  await t.test(
    'mixed 3.1.1 and 5.0 subscribers on one topic: each gets the PUBLISH of its own protocol level',
    async (t) => {
      const old = await connect4(t, port, 'mixed-v4-sub');
      old.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mixed/t', qos: 1 }] });
      t.same((await old.expect('suback')).granted, [1]);
      const { client: neu } = await connect5(t, port, 'mixed-v5-sub');
      await subscribe5(neu, [{ topic: 'mixed/t', qos: 1 }]);

      const { client: pub5 } = await connect5Elsewhere(t, tb, 'mixed-v5-sub', 'mixed-v5-pub');
      const properties: Properties = { contentType: 'text/plain', userProperties: [['k', 'v']] };
      for (const qos of [0, 1] as const) {
        await publish5(pub5, 'mixed/t', `from v5 at ${qos}`, qos, { properties });
        const v4 = await receive(old);
        t.equal(v4.topic, 'mixed/t');
        t.equal(
          text(v4),
          `from v5 at ${qos}`,
          `QoS ${qos}: the 3.1.1 PUBLISH decodes with the 3.1.1 codec, payload exact`,
        );
        t.equal(v4.qos, qos);
        t.equal(v4.properties, undefined, 'no properties in 3.1.1');
        const v5 = await receive(neu);
        t.equal(text(v5), `from v5 at ${qos}`);
        t.equal(v5.properties?.contentType, 'text/plain', `QoS ${qos}: the v5 subscriber gets the properties`);
        t.same(v5.properties?.userProperties, [['k', 'v']]);
      }

      // And the other way: a 3.1.1 publisher's message reaches the v5 subscriber without properties.
      const pub4 = await connect4(t, port, 'mixed-v4-pub');
      await publish(pub4, 'mixed/t', 'from v4', 1);
      t.equal(text(await receive(old)), 'from v4');
      const fromOld = await receive(neu);
      t.equal(text(fromOld), 'from v4');
      t.equal(fromOld.qos, 1);
      t.same(passedOn(fromOld.properties), passedOn(undefined), 'nothing invented for a 3.1.1 publish');
    },
  );

  await t.test(
    'message expiry: what expired while the session was offline is not delivered, the rest carries the time left [MQTT-3.3.2-5] [MQTT-3.3.2-6]; an expired retained message is not sent',
    async (t) => {
      const id = 'exp-sub';
      const persistent = { clean: true, properties: { sessionExpiryInterval: 3600 } };
      const { client: first } = await connect5(t, port, id, persistent);
      await subscribe5(first, [{ topic: 'exp/q/#', qos: 1 }]);
      // With routing workers, the messages cross from the publisher's worker to the session's.
      const { client: pub, clientId: pubId } = await connect5Elsewhere(t, tb, id, 'exp-pub');
      await first.disconnect();
      await serverClosed(tb, id);

      const before = (await tb.stats()).counters.messagesDropped.expired ?? 0;
      await publish5(pub, 'exp/q/short', 'short', 1, { properties: { messageExpiryInterval: 1 } });
      await publish5(pub, 'exp/q/long', 'long', 1, { properties: { messageExpiryInterval: 60 } });
      await publish5(pub, 'exp/q/none', 'none', 1);
      await publish5(pub, 'exp/r/short', 'retained short', 1, {
        retain: true,
        properties: { messageExpiryInterval: 1 },
      });
      await publish5(pub, 'exp/r/long', 'retained long', 1, {
        retain: true,
        properties: { messageExpiryInterval: 60 },
      });
      // Every worker has routed them (queued for the offline session, retained stored).
      await settled(pub);
      // Time passing is what is tested: the 1 s expiry intervals run out.
      await setTimeout(2100);

      const { client: back, connack } = await connect5(t, port, id, { ...persistent, clean: false });
      t.equal(connack.sessionPresent, true, 'the session was kept');
      await publish5(pub, 'exp/q/marker', 'marker', 1);
      const got = await receiveUntil(back, 'exp/q/marker');
      t.same(payloads(got), ['long', 'none', 'marker'], 'the expired message is not delivered [MQTT-3.3.2-5]');
      const long = got[0] as PublishPacket;
      const left = long.properties?.messageExpiryInterval;
      t.ok(
        left !== undefined && left > 0 && left < 60,
        `the expiry interval is the time left: 0 < ${left} < 60 [MQTT-3.3.2-6]`,
      );
      t.equal(got[1]?.properties?.messageExpiryInterval, undefined, 'a message without one gets none');
      const after = (await tb.stats()).counters.messagesDropped.expired ?? 0;
      t.ok(after - before >= 1, `the expired message is counted (${after - before})`);

      // With routing workers, this subscriber's worker holds a copy of the retained message the
      // publisher's worker forwarded.
      const { client: late } = await connect5Elsewhere(t, tb, pubId, 'exp-late');
      t.same(await subscribe5(late, [{ topic: 'exp/r/+', qos: 1 }]), [1]);
      const retained = (await untilPingresp(late)).filter((p): p is PublishPacket => p.cmd === 'publish');
      t.same(payloads(retained), ['retained long'], 'the expired retained message is not sent [MQTT-3.3.2-5]');
      const r = retained[0];
      t.equal(r?.retain, true);
      const rLeft = r?.properties?.messageExpiryInterval;
      t.ok(rLeft !== undefined && rLeft > 0 && rLeft < 60, `the retained copy carries the time left (${rLeft})`);
      if (r?.messageId !== undefined) late.send({ cmd: 'puback', messageId: r.messageId });
      // Leave no retained message for the other tests of this broker.
      await publish5(pub, 'exp/r/long', '', 1, { retain: true });
    },
  );

  await t.test(
    'topic alias from the client: set with a topic, then used with an empty topic [MQTT-3.3.2-12]; above the maximum is DISCONNECT 0x94 [MQTT-3.3.2-9]; unset is DISCONNECT 0x82',
    async (t) => {
      const { client: sub } = await connect5(t, port, 'alias-in-sub');
      await subscribe5(sub, [{ topic: 'alias/#', qos: 1 }]);
      const { client: pub, connack } = await connect5(t, port, 'alias-in-pub');
      const max = connack.properties?.topicAliasMaximum ?? 0;
      t.ok(max > 0, `CONNACK announces a topic alias maximum (${max})`);

      await publish5(pub, 'alias/t', 'one', 1, { properties: { topicAlias: 1 } });
      await publish5(pub, '', 'two', 1, { properties: { topicAlias: 1 } });
      await publish5(pub, '', 'three', 0, { properties: { topicAlias: 1 } });
      // Set again: the alias now stands for another topic.
      await publish5(pub, 'alias/u', 'four', 1, { properties: { topicAlias: 1 } });
      await publish5(pub, '', 'five', 1, { properties: { topicAlias: 1 } });
      // The highest alias announced is allowed.
      await publish5(pub, 'alias/t', 'six', 1, { properties: { topicAlias: max } });
      await publish5(pub, '', 'seven', 1, { properties: { topicAlias: max } });
      const got: PublishPacket[] = [];
      for (let i = 0; i < 7; i++) got.push(await receive(sub));
      t.same(
        got.map((p) => [p.topic, text(p)]),
        [
          ['alias/t', 'one'],
          ['alias/t', 'two'],
          ['alias/t', 'three'],
          ['alias/u', 'four'],
          ['alias/u', 'five'],
          ['alias/t', 'six'],
          ['alias/t', 'seven'],
        ],
        'an empty topic with an alias is delivered on the topic the alias was set to',
      );
      t.ok(
        got.every((p) => p.properties?.topicAlias === undefined),
        'the subscriber allowed no topic aliases: none is sent to it',
      );

      // Above the maximum announced in CONNACK.
      pub.send({
        cmd: 'publish',
        topic: 'alias/over',
        payload: Buffer.from('over'),
        qos: 1,
        messageId: 77,
        retain: false,
        dup: false,
        properties: { topicAlias: max + 1 },
      });
      const over = await pub.expect('disconnect');
      t.equal(over.reasonCode, 0x94, 'DISCONNECT 0x94 (topic alias invalid)');
      await pub.waitClosed();
      t.pass('and the connection is closed');

      // An empty topic with an alias this connection never set.
      const { client: unset } = await connect5(t, port, 'alias-in-unset');
      unset.send({
        cmd: 'publish',
        topic: '',
        payload: Buffer.from('where'),
        qos: 0,
        retain: false,
        dup: false,
        properties: { topicAlias: 2 },
      });
      const never = await unset.expect('disconnect');
      t.equal(never.reasonCode, 0x82, 'DISCONNECT 0x82 (protocol error)');
      await unset.waitClosed();

      // Neither was delivered.
      const { client: marker } = await connect5(t, port, 'alias-in-marker');
      await publish5(marker, 'alias/marker', 'marker', 1);
      t.same(payloads(await receiveUntil(sub, 'alias/marker')), ['marker'], 'the refused publishes were not routed');
    },
  );

  await t.test(
    'topic alias to the client: within its topic alias maximum the first PUBLISH on a topic sets an alias, later ones use it with an empty topic [MQTT-3.3.2-10] [MQTT-3.3.2-11]',
    async (t) => {
      const { client: sub } = await connect5(t, port, 'alias-out-sub', { properties: { topicAliasMaximum: 2 } });
      await subscribe5(sub, [{ topic: 'oalias/#', qos: 1 }]);
      const { client: pub } = await connect5(t, port, 'alias-out-pub');
      const sent = [
        ['oalias/a', 1],
        ['oalias/a', 0],
        ['oalias/b', 0],
        ['oalias/b', 1],
        ['oalias/c', 1],
        ['oalias/c', 0],
        ['oalias/a', 1],
        ['oalias/b', 0],
      ] as const;
      for (const [i, [topic, qos]] of sent.entries()) await publish5(pub, topic, `m${i}`, qos);
      const got: PublishPacket[] = [];
      for (let i = 0; i < sent.length; i++) got.push(await receive(sub));
      t.same(
        payloads(got),
        sent.map((_, i) => `m${i}`),
        'every message arrives, in order',
      );
      const alias = (i: number) => got[i]?.properties?.topicAlias;
      const a = alias(0);
      const b = alias(2);
      t.ok(a !== undefined && a >= 1 && a <= 2, `oalias/a gets an alias within the maximum (${a})`);
      t.ok(b !== undefined && b >= 1 && b <= 2 && b !== a, `oalias/b gets the other alias (${b})`);
      t.same(
        got.map((p, i) => [p.topic, alias(i)]),
        [
          ['oalias/a', a],
          ['', a],
          ['oalias/b', b],
          ['', b],
          ['oalias/c', undefined],
          ['oalias/c', undefined],
          ['', a],
          ['', b],
        ],
        'set with the topic once, then the alias alone; the third topic gets none (the maximum is 2)',
      );
    },
  );

  await t.test(
    'topic aliases live as long as the connection [MQTT-3.3.2-7]: after a reconnect, a resent PUBLISH and the next new one carry their topic again',
    async (t) => {
      const connect = { clean: false, properties: { sessionExpiryInterval: 300, topicAliasMaximum: 2 } };
      const { client: first } = await connect5(t, port, 'alias-reconn', connect);
      await subscribe5(first, [{ topic: 'ralias/t', qos: 1 }]);
      const { client: pub } = await connect5Elsewhere(t, tb, 'alias-reconn', 'alias-reconn-pub');
      await publish5(pub, 'ralias/t', 'one', 1);
      await publish5(pub, 'ralias/t', 'two', 1);
      const one = await receive(first);
      t.same([one.topic, text(one)], ['ralias/t', 'one'], 'the first sets the alias with its topic');
      const alias = one.properties?.topicAlias;
      t.ok(alias !== undefined, `an alias was set (${alias})`);
      // The second goes by the alias alone, and is left unacknowledged.
      const two = await receive(first, false);
      t.same([two.topic, two.properties?.topicAlias, text(two)], ['', alias, 'two'], 'the second by the alias alone');
      first.destroy();
      await first.waitClosed();
      await serverClosed(tb, 'alias-reconn');

      const { client: again, connack } = await connect5(t, port, 'alias-reconn', connect);
      t.equal(connack.sessionPresent, true);
      const resent = await receive(again);
      t.equal(text(resent), 'two');
      t.equal(resent.dup, true, 'resent with DUP=1');
      t.equal(resent.topic, 'ralias/t', 'with its topic: the alias of the old connection means nothing now');
      await publish5(pub, 'ralias/t', 'three', 1);
      await publish5(pub, 'ralias/t', 'four', 1);
      const later = [await receive(again), await receive(again)];
      t.same(payloads(later), ['three', 'four']);
      // Every alias used alone on this connection was set, with its topic, on this connection.
      const setHere = new Map<number, string>();
      for (const p of [resent, ...later]) {
        const a = p.properties?.topicAlias;
        if (a === undefined) t.equal(p.topic, 'ralias/t');
        else if (p.topic !== '') setHere.set(a, p.topic);
        else t.equal(setHere.get(a), 'ralias/t', `alias ${a} used alone was set on this connection first`);
      }
      t.equal(later[1]?.topic, '', 'and once set, the alias is used alone again');
    },
  );

  await t.test(
    'topic aliases both ways between MQTT.js v5 clients: the publisher’s aliases are resolved, the subscriber is sent aliases of its own, every message arrives on its topic',
    async (t) => {
      const open = (clientId: string, options: mqtt.IClientOptions): Promise<MqttClient> =>
        openMqttjs5(t, port, clientId, options);
      // The subscriber allows two aliases; MQTT.js resolves the ones it is sent.
      const sub = await open('mjs-alias-sub', { properties: { topicAliasMaximum: 2 } });
      const wire: Array<[string, number | undefined]> = [];
      sub.on('packetreceive', (p) => {
        if (p.cmd === 'publish') wire.push([p.topic, p.properties?.topicAlias]);
      });
      const got: Array<[string, string]> = [];
      let all: () => void = () => {};
      const arrived = new Promise<void>((resolve) => {
        all = resolve;
      });
      await sub.subscribeAsync('mjs-alias/#', { qos: 1 });
      // With routing workers, the aliased publishes cross to the subscriber's worker.
      const { client: pub } = await onAnotherWorker(
        tb,
        'mjs-alias-sub',
        'mjs-alias-pub',
        (clientId) => open(clientId, { autoAssignTopicAlias: true }),
        (c) => c.endAsync(true),
      );
      const sentWire: Array<[string, number | undefined]> = [];
      pub.on('packetsend', (p) => {
        if (p.cmd === 'publish') sentWire.push([p.topic, p.properties?.topicAlias]);
      });
      const sent = ['a', 'b', 'a', 'b', 'a', 'b'].map((leaf, i) => [`mjs-alias/${leaf}`, `m${i}`] as const);
      sub.on('message', (topic, payload) => {
        got.push([topic, payload.toString()]);
        if (got.length === sent.length) all();
      });
      for (const [topic, payload] of sent) await pub.publishAsync(topic, payload, { qos: 1 });
      await arrived;
      t.same(got, sent, 'every message on its own topic, in order');
      t.ok(
        sentWire.filter(([topic, alias]) => topic === '' && alias !== undefined).length >= 4,
        `the publisher sent most by alias alone (${JSON.stringify(sentWire)})`,
      );
      const aliased = wire.filter(([topic, alias]) => topic === '' && alias !== undefined);
      t.equal(aliased.length, 4, `the broker sent the repeats by alias alone (${JSON.stringify(wire)})`);
      t.ok(
        wire.every(([, alias]) => alias !== undefined && alias >= 1 && alias <= 2),
        'within the subscriber’s topic alias maximum',
      );
    },
  );

  await t.test(
    'maximum packet size of the client: a larger PUBLISH is not sent to it, and it is dropped, not held [MQTT-3.1.2-24] [MQTT-3.1.2-25]',
    async (t) => {
      // Receive maximum 1 too: a QoS 1 message that stayed in flight would stop everything after it.
      const { client: sub } = await connect5(t, port, 'mps-sub', {
        properties: { maximumPacketSize: 200, receiveMaximum: 1 },
      });
      await subscribe5(sub, [{ topic: 'mps/#', qos: 1 }]);
      const { client: pub } = await connect5(t, port, 'mps-pub');
      const tooLarge = async () => (await tb.stats()).counters.messagesDropped['too-large-for-client'] ?? 0;
      const before = await tooLarge();

      await publish5(pub, 'mps/big', Buffer.alloc(500, 0x61), 0);
      await publish5(pub, 'mps/small', 'small at 0', 0);
      t.same(payloads(await receiveUntil(sub, 'mps/small')), ['small at 0'], 'QoS 0: the 500-byte payload is not sent');

      await publish5(pub, 'mps/big', Buffer.alloc(500, 0x62), 1);
      await publish5(pub, 'mps/fits', Buffer.alloc(150, 0x63), 1);
      await publish5(pub, 'mps/small', 'small at 1', 1);
      const got = await receiveUntil(sub, 'mps/small');
      t.same(
        got.map((p) => [p.topic, p.payload.length, p.qos]),
        [
          ['mps/fits', 150, 1],
          ['mps/small', 10, 1],
        ],
        'QoS 1: the large one is dropped and the window moves on; a 150-byte payload still fits',
      );
      t.equal((await tooLarge()) - before, 2, 'both drops are counted (messages dropped: too-large-for-client)');
    },
  );

  await t.test(
    'receive maximum of the client: no more QoS 1 PUBLISHes unacknowledged than it allows; each PUBACK lets one more through [MQTT-3.3.4-9]',
    async (t) => {
      const { client: sub } = await connect5(t, port, 'rmax-sub', { properties: { receiveMaximum: 2 } });
      await subscribe5(sub, [{ topic: 'rmax/#', qos: 1 }]);
      const { client: pub } = await connect5(t, port, 'rmax-pub');
      for (let i = 0; i < 5; i++) await publish5(pub, 'rmax/t', String(i), 1);
      // QoS 0 is not limited by the receive maximum: sent after the five, it arrives at once.
      await publish5(pub, 'rmax/marker', 'marker', 0);

      const first: PublishPacket[] = [];
      for (let p = await receive(sub, false); ; p = await receive(sub, false)) {
        first.push(p);
        if (p.topic === 'rmax/marker') break;
      }
      t.same(payloads(first), ['0', '1', 'marker'], 'two QoS 1 PUBLISHes, then the QoS 0 marker: the third was held');
      const ids = first.slice(0, 2).map((p) => p.messageId as number);

      sub.send({ cmd: 'puback', messageId: ids[0] as number });
      const next = await untilPingresp(sub);
      t.same(payloads(next), ['2'], 'one PUBACK, one more PUBLISH');
      const third = next[0] as PublishPacket;

      sub.send({ cmd: 'puback', messageId: ids[1] as number });
      sub.send({ cmd: 'puback', messageId: third.messageId as number });
      const rest = await untilPingresp(sub);
      t.same(payloads(rest), ['3', '4'], 'the rest follows, in order');
      for (const p of rest) sub.send({ cmd: 'puback', messageId: (p as PublishPacket).messageId as number });
    },
  );
});

t.test(
  'receive maximum of the broker: CONNACK announces it; one QoS 2 PUBLISH more than it unacknowledged is DISCONNECT 0x93 [MQTT-3.3.4-7] [MQTT-3.3.4-8]',
  async (t) => {
    const tb = await startBroker({ receiveMaximum: 2 });
    t.teardown(tb.stop);
    const qos2 = (messageId: number) =>
      ({
        cmd: 'publish',
        topic: 'inmax/t',
        payload: Buffer.from(`m${messageId}`),
        qos: 2,
        messageId,
        retain: false,
        dup: false,
      }) as const;

    const { client, connack } = await connect5(t, tb.port, 'inmax-pub');
    t.equal(connack.properties?.receiveMaximum, 2, 'CONNACK carries receiveMaximum 2');
    client.send(qos2(1));
    client.send(qos2(2));
    client.send(qos2(3));
    t.equal((await client.expect('pubrec')).messageId, 1);
    t.equal((await client.expect('pubrec')).messageId, 2);
    const disconnect = await client.expect('disconnect');
    t.equal(disconnect.reasonCode, 0x93, 'DISCONNECT 0x93 (receive maximum exceeded)');
    await client.waitClosed();
    t.pass('and the connection is closed');

    // Within the maximum, a released id makes room again.
    const { client: polite } = await connect5(t, tb.port, 'inmax-polite');
    polite.send(qos2(1));
    polite.send(qos2(2));
    t.equal((await polite.expect('pubrec')).messageId, 1);
    t.equal((await polite.expect('pubrec')).messageId, 2);
    polite.send({ cmd: 'pubrel', messageId: 1 });
    t.equal((await polite.expect('pubcomp')).messageId, 1);
    polite.send(qos2(3));
    t.equal((await polite.expect('pubrec')).messageId, 3, 'after PUBCOMP the next QoS 2 PUBLISH is taken');
    // A resent id already in flight is not a new message.
    polite.send({ ...qos2(3), dup: true });
    t.equal((await polite.expect('pubrec')).messageId, 3, 'a resent id is PUBRECed again, not counted twice');
    t.equal((await untilPingresp(polite)).length, 0, 'still connected');
  },
);

t.test('PUBACK 0x87 for a publish the ACL refuses; a 3.1.1 client gets a plain PUBACK', async (t) => {
  const dir = tempDir(t);
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, '# anonymous clients\ntopic readwrite acl5/open/#\ntopic read acl5/closed/#\n');
  const tb = await startBroker({ aclFile });
  t.teardown(tb.stop);
  const { port } = tb;
  const denied = async () => (await tb.stats()).counters.aclDenied.publish ?? 0;

  const { client: watcher } = await connect5(t, port, 'acl5-watcher');
  t.same(
    await subscribe5(watcher, [
      { topic: 'acl5/open/#', qos: 1 },
      { topic: 'acl5/closed/#', qos: 1 },
    ]),
    [1, 1],
  );
  const before = await denied();

  const { client: pub5 } = await connect5(t, port, 'acl5-pub5');
  const refused1 = await publish5(pub5, 'acl5/closed/a', 'no', 1);
  t.equal(refused1?.cmd, 'puback');
  t.equal(refused1?.reasonCode, 0x87, 'QoS 1: PUBACK 0x87 (not authorized), MQTT 5 section 3.4.2.1');
  const refused2 = await publish5(pub5, 'acl5/closed/b', 'no', 2);
  t.equal(refused2?.cmd, 'pubrec');
  t.equal(refused2?.reasonCode, 0x87, 'QoS 2: PUBREC 0x87, and the flow ends there');
  await publish5(pub5, 'acl5/closed/c', 'no', 0);
  const allowed = await publish5(pub5, 'acl5/open/v5', 'yes', 1);
  t.equal(allowed?.reasonCode ?? 0, 0, 'an allowed publish gets PUBACK success');
  t.same(payloads(await receiveUntil(watcher, 'acl5/open/v5')), ['yes'], 'no refused publish was delivered');

  const pub4 = await connect4(t, port, 'acl5-pub4');
  pub4.send({
    cmd: 'publish',
    topic: 'acl5/closed/d',
    payload: Buffer.from('no'),
    qos: 1,
    messageId: 9,
    retain: false,
    dup: false,
  });
  const puback = await pub4.expect('puback');
  t.equal(puback.messageId, 9);
  t.equal(puback.reasonCode, undefined, '3.1.1: a plain PUBACK (3.1.1 cannot say no)');
  await publish(pub4, 'acl5/open/marker', 'marker', 1);
  t.same(payloads(await receiveUntil(watcher, 'acl5/open/marker')), ['marker'], 'and it was dropped');
  t.equal((await denied()) - before, 4, 'every refusal is counted');
});
