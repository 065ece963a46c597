import { PacketDecoder, type PublishPacket } from '@tern/protocol';
import t from 'tap';
import {
  carriedProperties,
  hasFlag,
  Message,
  NO_LOCAL,
  optionsQos,
  packOptions,
  RETAIN_AS_PUBLISHED,
  retainHandling,
  Session,
  subscriptionId,
  takeCarriedProperties,
} from '../src/index.js';
import { decodeSnapshot, encodeSnapshot } from '../src/snapshot.js';

const limits = { maxInflight: 32, maxQueued: 100, overflowPolicy: 'drop-oldest' as const };

t.test('subscription options pack into one number and back', async (t) => {
  const biggestId = 268_435_455;
  const packed = packOptions({
    qos: 2,
    noLocal: true,
    retainAsPublished: true,
    retainHandling: 2,
    subscriptionId: biggestId,
  });
  t.ok(packed > 2 ** 32, 'an identifier above 2^26 takes it past 32 bits');
  t.equal(optionsQos(packed), 2);
  t.ok(hasFlag(packed, NO_LOCAL));
  t.ok(hasFlag(packed, RETAIN_AS_PUBLISHED));
  t.equal(retainHandling(packed), 2);
  t.equal(subscriptionId(packed), biggestId);
  const plain = packOptions({ qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 });
  t.equal(plain, 1, 'a 3.1.1 subscription is its QoS');
});

t.test('a session counts the subscriptions that carry an identifier', async (t) => {
  const s = new Session('c', 0, limits);
  s.setSubscription('a', 1);
  t.equal(s.identifiedSubscriptions, 0);
  s.setSubscription('b', 1 + 64 * 5);
  s.setSubscription('b', 2 + 64 * 6);
  t.equal(s.identifiedSubscriptions, 1, 'replacing one does not count it twice');
  s.deleteSubscription('b');
  t.equal(s.identifiedSubscriptions, 0);
  s.receiveMaximum = 3;
  t.equal(s.window, 3, 'the client’s receive maximum narrows the window');
});

t.test('carried properties keep the expiry interval and the message’s own bytes', async (t) => {
  const m = new Message('t', Buffer.from('p'), 1, false, 'o');
  t.equal(carriedProperties(m), null, 'none for a 3.1.1 message');
  m.properties = Buffer.from([0x03, 0x00, 0x01, 0x78]);
  m.expiryInterval = 90;
  const back = new Message('t', Buffer.from('p'), 1, false, 'o');
  takeCarriedProperties(back, carriedProperties(m));
  t.equal(back.expiryInterval, 90);
  t.same(back.properties, m.properties);
});

t.test('expiry counts down from the message time', async (t) => {
  const m = new Message('t', Buffer.from('p'), 1, false, 'o');
  m.time = 1_000_000;
  m.expiryInterval = 10;
  t.equal(m.expired(1_005_000), false);
  t.equal(m.secondsLeft(1_005_000), 5);
  t.equal(m.expired(1_010_000), true);
  t.equal(m.expiresAt, 1_010_000);
});

t.test('the shared MQTT 5 template carries the message’s own properties', async (t) => {
  const m = new Message('v5/topic', Buffer.from('body'), 1, false, 'o');
  m.properties = Buffer.from([0x03, 0x00, 0x01, 0x78]);
  const template = m.template5(1, false);
  t.equal(m.template5(1, false), template, 'cached');
  const got: PublishPacket[] = [];
  new PacketDecoder((p) => got.push(p as PublishPacket), { protocolVersion: 5 }).push(
    (() => {
      const b = Buffer.from(template.bytes);
      b.writeUInt16BE(7, template.idOffset);
      return b;
    })(),
  );
  t.match(got[0], { topic: 'v5/topic', messageId: 7, properties: { contentType: 'x' } });
});

t.test('snapshots keep MQTT 5 fields', async (t) => {
  const s = new Session('snap', Number.POSITIVE_INFINITY, limits);
  s.setSubscription(
    'f/#',
    packOptions({ qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 9 }),
  );
  s.expiresAt = 123_456;
  const m = new Message('f/x', Buffer.from('q'), 1, false, 'o');
  m.time = 5;
  m.expiryInterval = 60;
  m.properties = Buffer.from([0x03, 0x00, 0x01, 0x78]);
  s.queue.push({ message: m, qos: 1, retain: false }, 'drop-oldest');
  const [back] = decodeSnapshot(encodeSnapshot({ sessions: [s], retained: [] }), limits).sessions;
  t.equal(back?.subscriptions.get('f/#'), s.subscriptions.get('f/#'));
  t.equal(back?.identifiedSubscriptions, 1);
  t.equal(back?.expiresAt, 123_456);
  const queued = back?.queue.peek()?.message;
  t.equal(queued?.expiryInterval, 60);
  t.equal(queued?.time, 5);
  t.same(queued?.properties, m.properties);
});
