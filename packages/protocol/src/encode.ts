/**
 * The encoder: a packet becomes one Buffer (or is written into the caller's, or, for a large
 * PUBLISH, becomes a header sent ahead of the payload it does not copy). Each packet's
 * length is computed first, so the bytes are written once, into a buffer of the exact size,
 * with no intermediate arrays. Fixed header bytes come from precomputed tables.
 */
import { TYPE_BY_CMD } from './constants.js';
import { EncodeError } from './errors.js';
import type {
  AckPacket,
  AuthPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.js';
import { propertiesBodyLength, writeProperties } from './properties.js';
import { ByteWriter, binaryLength, stringLength, topicLength, vbiLength } from './writer.js';

/** First byte of a PUBLISH for each (dup << 3 | qos << 1 | retain). */
export const PUBLISH_FIRST_BYTE: readonly number[] = Array.from({ length: 16 }, (_, flags) => 0x30 | flags);

/** Static packets with no variable part. */
export const PINGREQ_BYTES: Buffer = Buffer.from([0xc0, 0x00]);
export const PINGRESP_BYTES: Buffer = Buffer.from([0xd0, 0x00]);
export const DISCONNECT_BYTES: Buffer = Buffer.from([0xe0, 0x00]);

/**
 * Property list lengths computed by the length pass and used by the write pass of the same
 * encode call. Encoding is synchronous, so one slot per list is enough.
 */
let propsLen = 0;
let willPropsLen = 0;

/**
 * One writer for every encode call, pointed at the call's buffer. For the same reason as the
 * slots above one is enough, and a ByteWriter per call is an allocation V8 does not remove
 * (writePacket is too large to inline): reusing it made 16 B and 256 B PUBLISH encodes 1.2x to
 * 1.3x faster. release() drops the buffer so the writer does not keep it alive.
 */
const NO_BYTES = Buffer.alloc(0);
const writer = new ByteWriter(NO_BYTES, 0);

function writerAt(buf: Buffer, pos: number): ByteWriter {
  writer.buf = buf;
  writer.pos = pos;
  return writer;
}

function release(): void {
  writer.buf = NO_BYTES;
}

function propsBlock(props: ConnectPacket['properties'], version: ProtocolVersion): number {
  if (version !== 5) return 0;
  propsLen = propertiesBodyLength(props);
  return vbiLength(propsLen) + propsLen;
}

function checkId(id: number | undefined, cmd: string): number {
  if (id === undefined || id < 1 || id > 0xffff || !Number.isInteger(id)) {
    throw new EncodeError(`${cmd} needs a packet identifier in 1..65535, got ${id}`);
  }
  return id;
}

/** Remaining length (variable header + payload) of a packet. */
function bodyLength(p: Packet, v: ProtocolVersion): number {
  switch (p.cmd) {
    case 'connect':
      return connectLength(p, v);
    case 'connack':
      return 2 + propsBlock(p.properties, v);
    case 'publish':
      return publishLength(p, v);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return ackLength(p, v);
    case 'subscribe': {
      let n = 2 + propsBlock(p.properties, v);
      if (p.subscriptions.length === 0) throw new EncodeError('SUBSCRIBE needs at least one subscription');
      for (const s of p.subscriptions) n += stringLength(s.topic) + 1;
      return n;
    }
    case 'suback':
      return 2 + propsBlock(p.properties, v) + p.granted.length;
    case 'unsubscribe': {
      let n = 2 + propsBlock(p.properties, v);
      if (p.unsubscriptions.length === 0) throw new EncodeError('UNSUBSCRIBE needs at least one topic filter');
      for (const t of p.unsubscriptions) n += stringLength(t);
      return n;
    }
    case 'unsuback':
      return v === 5 ? 2 + propsBlock(p.properties, v) + (p.granted?.length ?? 0) : 2;
    case 'pingreq':
    case 'pingresp':
      return 0;
    case 'disconnect':
    case 'auth':
      return reasonAndPropsLength(p, v);
  }
}

function connectLength(p: ConnectPacket, v: ProtocolVersion): number {
  let n = stringLength(p.protocolId) + 1 + 1 + 2 + propsBlock(p.properties, v) + stringLength(p.clientId);
  if (p.will !== undefined) {
    if (v === 5) {
      willPropsLen = propertiesBodyLength(p.will.properties);
      n += vbiLength(willPropsLen) + willPropsLen;
    }
    n += stringLength(p.will.topic) + binaryLength(p.will.payload);
  }
  if (p.username !== undefined) n += stringLength(p.username);
  if (p.password !== undefined) n += binaryLength(p.password);
  return n;
}

function publishLength(p: PublishPacket, v: ProtocolVersion): number {
  return topicLength(p.topic) + (p.qos > 0 ? 2 : 0) + propsBlock(p.properties, v) + p.payload.length;
}

/** MQTT 5 acks leave out reason code and properties when the code is 0 and there are none. */
function ackLength(p: AckPacket<'puback' | 'pubrec' | 'pubrel' | 'pubcomp'>, v: ProtocolVersion): number {
  if (v !== 5) return 2;
  propsLen = propertiesBodyLength(p.properties);
  if (propsLen > 0) return 3 + vbiLength(propsLen) + propsLen;
  return (p.reasonCode ?? 0) !== 0 ? 3 : 2;
}

function reasonAndPropsLength(p: DisconnectPacket | AuthPacket, v: ProtocolVersion): number {
  if (v !== 5) {
    if (p.cmd === 'auth') throw new EncodeError('AUTH exists only in MQTT 5');
    return 0;
  }
  propsLen = propertiesBodyLength(p.properties);
  if (propsLen > 0) return 1 + vbiLength(propsLen) + propsLen;
  if ((p.reasonCode ?? 0) === 0) return 0;
  // DISCONNECT may stop after its reason code [MQTT-3.14.2.1]; AUTH may leave out reason code
  // and property length only together [MQTT-3.15.2.1], so a non-zero AUTH code carries both.
  return p.cmd === 'auth' ? 2 : 1;
}

function firstByte(p: Packet): number {
  switch (p.cmd) {
    case 'publish':
      return PUBLISH_FIRST_BYTE[(p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0)] as number;
    case 'pubrel':
    case 'subscribe':
    case 'unsubscribe':
      return (TYPE_BY_CMD[p.cmd] << 4) | 0x02;
    default:
      return TYPE_BY_CMD[p.cmd] << 4;
  }
}

/** Size in bytes of the encoded packet, fixed header included. */
export function encodedLength(packet: Packet, version: ProtocolVersion): number {
  const rl = bodyLength(packet, version);
  return 1 + vbiLength(rl) + rl;
}

/** Encodes a packet into a new Buffer of exactly its size. */
export function encode(packet: Packet, version: ProtocolVersion): Buffer {
  const rl = bodyLength(packet, version);
  const buf = Buffer.allocUnsafe(1 + vbiLength(rl) + rl);
  writePacket(packet, version, writerAt(buf, 0), rl);
  release();
  return buf;
}

/**
 * Encodes a packet into `target` at `offset`; returns the bytes written. Throws EncodeError
 * when the target is too small (nothing is written then).
 */
export function encodeInto(packet: Packet, version: ProtocolVersion, target: Buffer, offset = 0): number {
  const rl = bodyLength(packet, version);
  const total = 1 + vbiLength(rl) + rl;
  if (offset + total > target.length)
    throw new EncodeError(`target has room for ${target.length - offset} of ${total} bytes`);
  writePacket(packet, version, writerAt(target, offset), rl);
  release();
  return total;
}

function writePacket(p: Packet, v: ProtocolVersion, w: ByteWriter, rl: number): void {
  w.u8(firstByte(p));
  w.vbi(rl);
  switch (p.cmd) {
    case 'connect':
      writeConnect(p, v, w);
      return;
    case 'connack':
      w.u8(p.sessionPresent ? 1 : 0);
      w.u8(p.returnCode);
      if (v === 5) writeProperties(w, p.properties, propsLen);
      return;
    case 'publish':
      writePublishBody(p, v, w);
      return;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      w.u16(checkId(p.messageId, p.cmd));
      if (rl > 2) w.u8(p.reasonCode ?? 0);
      if (rl > 3) writeProperties(w, p.properties, propsLen);
      return;
    case 'subscribe':
      writeSubscribe(p, v, w);
      return;
    case 'suback':
      writeSuback(p, v, w);
      return;
    case 'unsubscribe':
      writeUnsubscribe(p, v, w);
      return;
    case 'unsuback':
      writeUnsuback(p, v, w);
      return;
    case 'pingreq':
    case 'pingresp':
      return;
    case 'disconnect':
    case 'auth':
      if (rl > 0) w.u8(p.reasonCode ?? 0);
      if (rl > 1) writeProperties(w, p.properties, propsLen);
      return;
  }
}

function writeConnect(p: ConnectPacket, v: ProtocolVersion, w: ByteWriter): void {
  w.utf8(p.protocolId);
  w.u8(p.protocolVersion);
  let flags = p.clean ? 0x02 : 0;
  if (p.will !== undefined) flags |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  w.u8(flags);
  w.u16(p.keepalive);
  if (v === 5) writeProperties(w, p.properties, propsLen);
  w.utf8(p.clientId);
  if (p.will !== undefined) {
    if (v === 5) writeProperties(w, p.will.properties, willPropsLen);
    w.utf8(p.will.topic);
    w.binary(p.will.payload);
  }
  if (p.username !== undefined) w.utf8(p.username);
  if (p.password !== undefined) w.binary(p.password);
}

function writePublishBody(p: PublishPacket, v: ProtocolVersion, w: ByteWriter): void {
  w.topic(p.topic);
  if (p.qos > 0) w.u16(checkId(p.messageId, 'PUBLISH'));
  if (v === 5) writeProperties(w, p.properties, propsLen);
  w.bytes(p.payload);
}

function writeSubscribe(p: SubscribePacket, v: ProtocolVersion, w: ByteWriter): void {
  w.u16(checkId(p.messageId, 'SUBSCRIBE'));
  if (v === 5) writeProperties(w, p.properties, propsLen);
  for (const s of p.subscriptions) {
    w.utf8(s.topic);
    let options = s.qos;
    if (v === 5) {
      if (s.noLocal) options |= 0x04;
      if (s.retainAsPublished) options |= 0x08;
      options |= (s.retainHandling ?? 0) << 4;
    }
    w.u8(options);
  }
}

function writeSuback(p: SubackPacket, v: ProtocolVersion, w: ByteWriter): void {
  w.u16(checkId(p.messageId, 'SUBACK'));
  if (v === 5) writeProperties(w, p.properties, propsLen);
  for (const g of p.granted) w.u8(g);
}

function writeUnsubscribe(p: UnsubscribePacket, v: ProtocolVersion, w: ByteWriter): void {
  w.u16(checkId(p.messageId, 'UNSUBSCRIBE'));
  if (v === 5) writeProperties(w, p.properties, propsLen);
  for (const t of p.unsubscriptions) w.utf8(t);
}

function writeUnsuback(p: UnsubackPacket, v: ProtocolVersion, w: ByteWriter): void {
  w.u16(checkId(p.messageId, 'UNSUBACK'));
  if (v !== 5) return;
  writeProperties(w, p.properties, propsLen);
  for (const g of p.granted ?? []) w.u8(g);
}

// ---------------------------------------------------------------------------------------
// PUBLISH encoded once, sent to many.
// ---------------------------------------------------------------------------------------

/** A PUBLISH encoded once; `idOffset` locates its packet id (-1 for QoS 0). */
export interface EncodedPublish {
  bytes: Buffer;
  idOffset: number;
}

/**
 * Encodes a PUBLISH whose bytes will be shared by many recipients. For QoS > 0 the packet id
 * is written as 0 (or `messageId` when given) and patched per recipient with setPacketId.
 */
export function encodePublishShared(packet: PublishPacket, version: ProtocolVersion): EncodedPublish {
  const rl = publishLength(packet, version);
  const headerLen = 1 + vbiLength(rl);
  const bytes = Buffer.allocUnsafe(headerLen + rl);
  const w = writerAt(bytes, 0);
  w.u8(firstByte(packet));
  w.vbi(rl);
  w.topic(packet.topic);
  let idOffset = -1;
  if (packet.qos > 0) {
    idOffset = w.pos;
    w.u16(packet.messageId ?? 0);
  }
  if (version === 5) writeProperties(w, packet.properties, propsLen);
  w.bytes(packet.payload);
  release();
  return { bytes, idOffset };
}

/**
 * The bytes of a PUBLISH up to its payload: fixed header (whose remaining length counts the
 * payload), topic name, packet id at QoS > 0 (0 when `messageId` is absent, to be patched
 * with setPacketId) and MQTT 5 properties. Sent followed by `packet.payload` (socket.cork()
 * and two writes, or one writev), a large payload reaches the socket without being copied:
 * header then payload are the bytes encode() gives. The payload goes by reference, so it must
 * not change until written. setPacketId, setDup and publishIdOffset work on these bytes as on
 * a whole packet.
 */
export function encodePublishHeader(packet: PublishPacket, version: ProtocolVersion): Buffer {
  const rl = publishLength(packet, version);
  const headerLen = 1 + vbiLength(rl) + rl - packet.payload.length;
  const bytes = Buffer.allocUnsafe(headerLen);
  const w = writerAt(bytes, 0);
  w.u8(firstByte(packet));
  w.vbi(rl);
  w.topic(packet.topic);
  if (packet.qos > 0) w.u16(packet.messageId === undefined ? 0 : checkId(packet.messageId, 'PUBLISH'));
  if (version === 5) writeProperties(w, packet.properties, propsLen);
  release();
  return bytes;
}

/**
 * Writes a packet id into encoded PUBLISH bytes in place. Bytes already handed to a socket
 * must not be patched (the write may still be pending): copy them first.
 */
export function setPacketId(bytes: Buffer, idOffset: number, id: number): void {
  bytes[idOffset] = id >>> 8;
  bytes[idOffset + 1] = id & 0xff;
}

/** Sets or clears the DUP flag of encoded PUBLISH bytes in place [MQTT-3.3.1-1]. */
export function setDup(bytes: Buffer, dup: boolean): void {
  bytes[0] = dup ? (bytes[0] as number) | 0x08 : (bytes[0] as number) & ~0x08;
}

/** Offset of the packet id in encoded PUBLISH bytes of QoS > 0 (reads the topic length). */
export function publishIdOffset(bytes: Buffer): number {
  let i = 1;
  while (((bytes[i] as number) & 0x80) !== 0) i++;
  i++;
  return i + 2 + (((bytes[i] as number) << 8) | (bytes[i + 1] as number));
}

const ACK_FIRST_BYTE = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

/** The 4 bytes of a 3.1.1 (or reason-less MQTT 5) PUBACK/PUBREC/PUBREL/PUBCOMP. */
export function encodeAck(cmd: keyof typeof ACK_FIRST_BYTE, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = ACK_FIRST_BYTE[cmd];
  b[1] = 2;
  b[2] = messageId >>> 8;
  b[3] = messageId & 0xff;
  return b;
}
