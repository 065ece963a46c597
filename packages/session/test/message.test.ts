import { PacketDecoder, type PublishPacket, setPacketId } from '@tern/protocol';
import t from 'tap';
import { LARGE_PAYLOAD, Message, type PublishTemplate } from '../src/index.js';

/** What a sender does with a shared template: copy it and patch in a packet id. */
function withId(shared: PublishTemplate, id: number): Buffer {
  const bytes = Buffer.from(shared.bytes);
  setPacketId(bytes, shared.idOffset, id);
  return bytes;
}

function decodeOne(bytes: Buffer): PublishPacket {
  let packet: PublishPacket | null = null;
  new PacketDecoder((p) => {
    packet = p as PublishPacket;
  }).push(bytes);
  if (packet === null) throw new Error('no packet');
  return packet;
}

t.test('keepQueued lets go of the socket chunk: the payload becomes a view of the shared bytes', async (t) => {
  // A "socket chunk" holding more than the message.
  const chunk = Buffer.alloc(4096, 0xee);
  chunk.write('hello', 100);
  const payload = chunk.subarray(100, 105);
  const message = new Message('a/b', payload, 1, false, 'pub');
  message.keepQueued(1);
  t.equal(message.payload.toString(), 'hello');
  t.not(message.payload.buffer, chunk.buffer, 'no longer pins the chunk');
  const shared = message.template(1, false);
  t.equal(message.payload.buffer, shared.bytes.buffer, 'shares the encoded PUBLISH');
  chunk.fill(0);
  const decoded = decodeOne(withId(shared, 7));
  t.equal(decoded.topic, 'a/b');
  t.equal(decoded.qos, 1);
  t.equal(decoded.payload.toString(), 'hello', 'the encoded bytes do not depend on the chunk');
  message.keepQueued(2);
  t.equal(message.payload.toString(), 'hello', 'a second keep changes nothing');
});

t.test('an empty payload survives keepQueued', async (t) => {
  const message = new Message('x', Buffer.alloc(0), 2, false, 'pub');
  message.keepQueued(2);
  t.equal(message.payload.length, 0);
  t.equal(decodeOne(withId(message.template(2, false), 9)).payload.length, 0);
});

t.test('a large payload is kept once and sent by reference after a shared head', async (t) => {
  const chunk = Buffer.alloc(LARGE_PAYLOAD + 100, 0x62);
  const payload = chunk.subarray(10, 10 + LARGE_PAYLOAD);
  const message = new Message('big/one', payload, 1, false, 'pub');
  message.keepQueued(1);
  t.not(message.payload.buffer, chunk.buffer, 'no longer pins the chunk');
  const t1 = message.template(1, false);
  t.equal(t1.payload, message.payload, 'the payload goes by reference');
  t.equal(t1.bytes.length < 100, true, 'the head is small');
  t.equal(t1.idOffset, t1.bytes.length - 2, 'the packet id ends the head');
  const whole = Buffer.concat([withId(t1, 5), t1.payload as Buffer]);
  const decoded = decodeOne(whole);
  t.same([decoded.topic, decoded.messageId, decoded.payload.length], ['big/one', 5, LARGE_PAYLOAD]);
  const t0 = message.template(0, true);
  const retained = decodeOne(Buffer.concat([t0.bytes, t0.payload as Buffer]));
  t.same([retained.qos, retained.retain], [0, true], 'a retained QoS 0 shape');
  t.equal(t0.idOffset, -1);
});
