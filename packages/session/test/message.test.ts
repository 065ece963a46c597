import { type EncodedPublish, PacketDecoder, type PublishPacket, setPacketId } from '@tern/protocol';
import t from 'tap';
import { Message } from '../src/index.js';

/** What a sender does with a shared template: copy it and patch in a packet id. */
function withId(shared: EncodedPublish, id: number): Buffer {
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
  const shared = message.sharedBytes(1);
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
  t.equal(decodeOne(withId(message.sharedBytes(2), 9)).payload.length, 0);
});
