/**
 * A stored message's bytes, the same in every store that keeps messages as bytes, and what a
 * gateway hands a worker when a session resumes: a small binary layout that reads without a
 * general-purpose decoder (a long queue is read back at every resume on another node).
 *
 *   u8   flags: bits 0-1 QoS, bit 2 retain, bit 3 properties present
 *   f64  time (LE)
 *   u16  topic length (LE), then the topic (UTF-8)
 *   u16  origin length (LE), then the origin client id (UTF-8)
 *   if bit 3: u32 properties length (LE), then the MQTT 5 property bytes
 *   the payload, to the end
 *
 * Bodies written before properties existed have bit 3 clear and read with properties null. The
 * flag, not a zero length, marks "none": an empty property list stays empty, not null.
 *
 * The message id is not inside: stores keep it as the body's key.
 */
import type { QoS } from '@tern/protocol';
import { type StoredMessage, StoreError } from './session-store.js';

const FIXED = 1 + 8 + 2 + 2;
const RETAIN = 4;
const HAS_PROPERTIES = 8;

export function encodeStoredMessage(m: StoredMessage): Buffer {
  const topicLength = Buffer.byteLength(m.topic);
  const originLength = Buffer.byteLength(m.origin);
  const properties = m.properties ?? null;
  const propertiesSize = properties === null ? 0 : 4 + properties.byteLength;
  const out = Buffer.allocUnsafe(FIXED + topicLength + originLength + propertiesSize + m.payload.byteLength);
  out[0] = (m.qos & 3) | (m.retain ? RETAIN : 0) | (properties === null ? 0 : HAS_PROPERTIES);
  out.writeDoubleLE(m.time, 1);
  out.writeUInt16LE(topicLength, 9);
  let p = 11 + out.write(m.topic, 11, topicLength, 'utf8');
  out.writeUInt16LE(originLength, p);
  p += 2;
  p += out.write(m.origin, p, originLength, 'utf8');
  if (properties !== null) {
    out.writeUInt32LE(properties.byteLength, p);
    out.set(properties, p + 4);
    p += propertiesSize;
  }
  out.set(m.payload, p);
  return out;
}

/** How a reader makes a string of bytes (slot 0: topics, 1: origins); may reuse one it made. */
export type ReadString = (b: Buffer, start: number, end: number, slot: 0 | 1) => string;

const readFresh: ReadString = (b, start, end) => b.toString('utf8', start, end);

/**
 * Reads a body back; the payload and properties are views of `body`. Throws StoreError for a
 * broken body.
 */
export function decodeStoredMessage(id: number, body: Uint8Array, readString: ReadString = readFresh): StoredMessage {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < FIXED) throw new StoreError(`stored message ${id} is ${b.length} bytes: too short`);
  const flags = b[0] as number;
  const topicEnd = 11 + b.readUInt16LE(9);
  if (topicEnd + 2 > b.length) throw new StoreError(`stored message ${id}: topic runs past its end`);
  const originEnd = topicEnd + 2 + b.readUInt16LE(topicEnd);
  if (originEnd > b.length) throw new StoreError(`stored message ${id}: origin runs past its end`);
  let payloadStart = originEnd;
  let properties: Buffer | null = null;
  if ((flags & HAS_PROPERTIES) !== 0) {
    if (originEnd + 4 > b.length) throw new StoreError(`stored message ${id}: properties run past its end`);
    payloadStart = originEnd + 4 + b.readUInt32LE(originEnd);
    if (payloadStart > b.length) throw new StoreError(`stored message ${id}: properties run past its end`);
    properties = b.subarray(originEnd + 4, payloadStart);
  }
  return {
    id,
    topic: readString(b, 11, topicEnd, 0),
    origin: readString(b, topicEnd + 2, originEnd, 1),
    payload: b.subarray(payloadStart),
    qos: (flags & 3) as QoS,
    retain: (flags & RETAIN) !== 0,
    time: b.readDoubleLE(1),
    properties,
  };
}
