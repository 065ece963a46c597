/**
 * The encode-once path for fan-out (encodePublishShared, setPacketId, setDup, publishIdOffset)
 * and the precomputed acks (encodeAck) must write the same bytes as encode() does for the same
 * packet, and as the fixtures say.
 */
import t from 'tap';
import {
  encode,
  encodeAck,
  encodePublishShared,
  type ProtocolVersion,
  type PublishPacket,
  publishIdOffset,
  setDup,
  setPacketId,
} from '../src/index.js';
import { fromHex } from './fixtures/hex.js';
import { type ValidRow, validPackets } from './fixtures/valid-packets.js';

type PublishRow = ValidRow & { packet: PublishPacket };

const isPublishRow = (row: ValidRow): row is PublishRow => row.packet.cmd === 'publish';
const publishRows = validPackets.filter(isPublishRow).filter((row) => row.version !== 3);

const hex = (b: Buffer): string => b.toString('hex');

t.test('encodePublishShared writes what encode() writes', async (t) => {
  for (const row of publishRows) {
    const { packet, version } = row;
    t.test(`v${version} ${row.name}`, async (t) => {
      const shared = encodePublishShared(packet, version);
      t.equal(hex(shared.bytes), hex(encode(packet, version)), 'same bytes as encode()');
      t.equal(hex(shared.bytes), hex(fromHex(row.hex)), 'same bytes as the fixture');
      if (packet.qos === 0) {
        t.equal(shared.idOffset, -1, 'no packet id at QoS 0');
        return;
      }
      t.equal(publishIdOffset(shared.bytes), shared.idOffset, 'publishIdOffset finds the id');
      t.equal(shared.bytes.readUInt16BE(shared.idOffset), packet.messageId, 'the id is at idOffset');
    });
  }
});

t.test('one shared encoding, patched per recipient', async (t) => {
  for (const row of publishRows.filter((r) => r.packet.qos > 0)) {
    const { packet, version } = row;
    t.test(`v${version} ${row.name}`, async (t) => {
      const { messageId: _, ...withoutId } = packet;
      const shared = encodePublishShared(withoutId, version);
      t.equal(shared.bytes.readUInt16BE(shared.idOffset), 0, 'id written as 0 until patched');
      for (const id of [1, 0x1234, 0xffff]) {
        const copy = Buffer.from(shared.bytes);
        setPacketId(copy, shared.idOffset, id);
        t.equal(hex(copy), hex(encode({ ...packet, messageId: id }, version)), `id ${id}`);
        setDup(copy, true);
        t.equal(hex(copy), hex(encode({ ...packet, messageId: id, dup: true }, version)), `id ${id}, dup set`);
        setDup(copy, false);
        t.equal(hex(copy), hex(encode({ ...packet, messageId: id, dup: false }, version)), `id ${id}, dup cleared`);
      }
      t.equal(shared.bytes.readUInt16BE(shared.idOffset), 0, 'patching copies leaves the shared bytes alone');
    });
  }
});

t.test('encodeAck writes what encode() writes', async (t) => {
  const cmds = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;
  const versions: readonly ProtocolVersion[] = [3, 4, 5];
  for (const cmd of cmds) {
    t.test(cmd, async (t) => {
      for (const messageId of [1, 0x1234, 0xffff]) {
        for (const version of versions) {
          t.equal(
            hex(encodeAck(cmd, messageId)),
            hex(encode({ cmd, messageId }, version)),
            `v${version} id ${messageId}`,
          );
        }
      }
      for (const row of validPackets.filter((r) => r.packet.cmd === cmd && r.hex.replace(/\s/g, '').length === 8)) {
        const { messageId } = row.packet as { messageId: number };
        t.equal(hex(encodeAck(cmd, messageId)), hex(fromHex(row.hex)), `fixture v${row.version} ${row.name}`);
      }
    });
  }
});
