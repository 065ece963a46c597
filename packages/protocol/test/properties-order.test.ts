/**
 * MQTT 5 property lists are written in ascending identifier order whatever order the
 * object's keys were added in (encoding walks only the keys present, in their PROPERTY_SPECS
 * order). Keys set to undefined, and keys that are no property, write nothing.
 */
import t from 'tap';
import { encode, type Packet, PacketDecoder, type Properties } from '../src/index.js';

/** One value of each PUBLISH property, keys in ascending id order. */
const inOrder: Properties = {
  payloadFormatIndicator: true,
  messageExpiryInterval: 60,
  contentType: 'text/plain',
  responseTopic: 'r/t',
  correlationData: Buffer.from([1, 2]),
  subscriptionIdentifiers: [5, 300],
  topicAlias: 4,
  userProperties: [
    ['k', 'v'],
    ['k', 'w'],
  ],
};

const publish = (properties: Properties): Packet => ({
  cmd: 'publish',
  topic: 'a/b',
  payload: Buffer.from('x'),
  qos: 1,
  messageId: 1,
  retain: false,
  dup: false,
  properties,
});

t.test('the bytes do not depend on key order', async (t) => {
  t.plan(3);
  const want = encode(publish(inOrder), 5);
  const reversed = Object.fromEntries(Object.entries(inOrder).reverse()) as Properties;
  t.not(Object.keys(reversed)[0], Object.keys(inOrder)[0], 'the keys really are in another order');
  t.equal(encode(publish(reversed), 5).toString('hex'), want.toString('hex'));
  t.strictSame(PacketDecoder.decodeAll(want, { protocolVersion: 5 }), [publish(inOrder)]);
});

t.test('keys added in descending id order are written ascending', async (t) => {
  t.plan(1);
  const bytes = encode(publish({ contentType: 'c', messageExpiryInterval: 60 }), 5);
  // 32 12 | 0003 612f62 | 0001 | 09: 03 0001 63 after 02 0000003c | 78
  t.equal(bytes.toString('hex'), '3212' + '0003612f62' + '0001' + '09' + '020000003c' + '03000163' + '78');
});

t.test('undefined values and keys that are no property write nothing', async (t) => {
  t.plan(2);
  const want = encode(publish({ contentType: 'c' }), 5).toString('hex');
  t.equal(encode(publish({ messageExpiryInterval: undefined, contentType: 'c' }), 5).toString('hex'), want);
  const extra = { contentType: 'c', notAProperty: 1 } as unknown as Properties;
  t.equal(encode(publish(extra), 5).toString('hex'), want);
});
