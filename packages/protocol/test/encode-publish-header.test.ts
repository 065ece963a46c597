/**
 * encodePublishHeader: the bytes of a PUBLISH up to its payload, for a gathered write (header
 * then payload, no copy of the payload). Header + payload must be exactly what encode() and
 * the fixtures give, for every PUBLISH fixture in 3.1, 3.1.1 and 5.0.
 */
import t from 'tap';
import {
  EncodeError,
  encode,
  encodePublishHeader,
  PacketDecoder,
  type PublishPacket,
  publishIdOffset,
  setDup,
  setPacketId,
} from '../src/index.js';
import { fromHex } from './fixtures/hex.js';
import { type ValidRow, validPackets } from './fixtures/valid-packets.js';

type PublishRow = ValidRow & { packet: PublishPacket };

const publishRows = validPackets.filter((row): row is PublishRow => row.packet.cmd === 'publish');
const hex = (b: Buffer): string => b.toString('hex');

t.test('header + payload is what encode() writes', async (t) => {
  t.ok(publishRows.length > 10, 'fixtures have PUBLISH rows in every version');
  for (const row of publishRows) {
    const { packet, version } = row;
    t.test(`v${version} ${row.name}`, async (t) => {
      const header = encodePublishHeader(packet, version);
      const whole = encode(packet, version);
      t.equal(header.length, whole.length - packet.payload.length, 'the header stops where the payload starts');
      t.equal(hex(Buffer.concat([header, packet.payload])), hex(whole), 'same bytes as encode()');
      t.equal(hex(Buffer.concat([header, packet.payload])), hex(fromHex(row.hex)), 'same bytes as the fixture');
      if (packet.qos > 0) {
        t.equal(header.readUInt16BE(publishIdOffset(header)), packet.messageId, 'publishIdOffset finds the id');
      }
    });
  }
});

t.test('a header whose remaining length needs 3 bytes decodes with its payload', async (t) => {
  t.plan(2);
  const packet: PublishPacket = {
    cmd: 'publish',
    topic: 'big',
    payload: Buffer.alloc(70_000, 0x61),
    qos: 1,
    messageId: 9,
    retain: false,
    dup: false,
  };
  const header = encodePublishHeader(packet, 4);
  t.equal(header.length, 1 + 3 + 5 + 2, 'first byte, 3-byte remaining length, topic, packet id');
  t.strictSame(PacketDecoder.decodeAll(Buffer.concat([header, packet.payload])), [packet]);
});

t.test('without a messageId the id is written as 0, to be patched per recipient', async (t) => {
  for (const row of publishRows.filter((r) => r.packet.qos > 0)) {
    const { packet, version } = row;
    t.test(`v${version} ${row.name}`, async (t) => {
      t.plan(2);
      const { messageId: _, ...withoutId } = packet;
      const header = encodePublishHeader(withoutId, version);
      const at = publishIdOffset(header);
      t.equal(header.readUInt16BE(at), 0, 'id written as 0');
      setPacketId(header, at, 0x1234);
      setDup(header, true);
      t.equal(
        hex(Buffer.concat([header, packet.payload])),
        hex(encode({ ...packet, messageId: 0x1234, dup: true }, version)),
        'patched id and DUP flag',
      );
    });
  }
});

t.test('a packet id outside 1..65535 is refused, as encode() refuses it', async (t) => {
  const base: PublishPacket = {
    cmd: 'publish',
    topic: 'a',
    payload: Buffer.alloc(1),
    qos: 1,
    retain: false,
    dup: false,
  };
  for (const messageId of [0, 65_536, 1.5]) {
    t.throws(() => encodePublishHeader({ ...base, messageId }, 4), EncodeError, `id ${messageId}`);
    t.throws(() => encode({ ...base, messageId }, 4), EncodeError, `encode() too, id ${messageId}`);
  }
  t.end();
});
