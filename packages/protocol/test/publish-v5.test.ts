import t from 'tap';
import { encode, encodePropertiesBody, encodePublishV5, type Packet, PacketDecoder } from '../src/index.js';

function decodeOne(bytes: Buffer): Packet {
  const out: Packet[] = [];
  const decoder = new PacketDecoder((p) => out.push(p), { protocolVersion: 5 });
  decoder.push(bytes);
  if (out.length !== 1) throw new Error(`decoded ${out.length} packets`);
  return out[0] as Packet;
}

const own = encodePropertiesBody({
  contentType: 'text/plain',
  correlationData: Buffer.from([9, 8]),
  userProperties: [
    ['a', '1'],
    ['a', '2'],
  ],
});

t.test('per-recipient properties in front of the message’s own, as the decoder reads them', async (t) => {
  const { bytes, idOffset } = encodePublishV5(
    {
      topic: 'v5/t',
      qos: 1,
      retain: true,
      messageId: 0x1234,
      payload: Buffer.from('hello'),
      ownProperties: own,
      extras: { messageExpiryInterval: 42, topicAlias: 3, subscriptionIdentifiers: [7, 300000] },
    },
    false,
  );
  t.equal(bytes.readUInt16BE(idOffset), 0x1234, 'idOffset points at the packet id');
  const p = decodeOne(bytes);
  t.match(p, {
    cmd: 'publish',
    topic: 'v5/t',
    qos: 1,
    retain: true,
    messageId: 0x1234,
    properties: {
      messageExpiryInterval: 42,
      topicAlias: 3,
      subscriptionIdentifiers: [7, 300000],
      contentType: 'text/plain',
      correlationData: Buffer.from([9, 8]),
      userProperties: [
        ['a', '1'],
        ['a', '2'],
      ],
    },
  });
  t.equal((p as { payload: Buffer }).payload.toString(), 'hello');
});

t.test('an alias standing for the topic, and no properties at all', async (t) => {
  const aliased = decodeOne(
    encodePublishV5(
      {
        topic: '',
        qos: 0,
        retain: false,
        messageId: 0,
        payload: Buffer.alloc(0),
        ownProperties: null,
        extras: { messageExpiryInterval: 0, topicAlias: 1, subscriptionIdentifiers: null },
      },
      false,
    ).bytes,
  );
  t.match(aliased, { topic: '', properties: { topicAlias: 1 } });
  const bare = encodePublishV5(
    { topic: 'x', qos: 2, retain: false, messageId: 5, payload: Buffer.from('p'), ownProperties: null, extras: null },
    false,
  ).bytes;
  t.same(
    bare,
    encode(
      { cmd: 'publish', topic: 'x', qos: 2, retain: false, dup: false, messageId: 5, payload: Buffer.from('p') },
      5,
    ),
  );
});

t.test('head only: the payload follows by reference', async (t) => {
  const payload = Buffer.alloc(100, 1);
  const whole = encodePublishV5(
    { topic: 'h', qos: 1, retain: false, messageId: 1, payload, ownProperties: own, extras: null },
    false,
  ).bytes;
  const head = encodePublishV5(
    { topic: 'h', qos: 1, retain: false, messageId: 1, payload, ownProperties: own, extras: null },
    true,
  ).bytes;
  t.same(Buffer.concat([head, payload]), whole);
});
