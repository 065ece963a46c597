import { EncodeError } from './errors.js';

/** Bytes a variable byte integer of this value takes on the wire. */
export function vbiLength(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  if (value < 268_435_456) return 4;
  throw new EncodeError(`value ${value} does not fit a variable byte integer`);
}

/** Wire length of an MQTT string (2-byte length prefix + UTF-8 bytes). */
export function stringLength(value: string): number {
  const n = Buffer.byteLength(value, 'utf8');
  if (n > 0xffff) throw new EncodeError('string longer than 65535 bytes');
  return n + 2;
}

/**
 * The last PUBLISH topic measured by topicLength(), with its UTF-8 bytes once it repeats.
 * Buffer.byteLength and utf8Write are each a call into C++ that costs more than copying a
 * 50-byte topic; a sender usually repeats a topic (a device's telemetry, one message encoded
 * for each recipient), and with its bytes kept a repeated topic costs a string comparison and
 * a memcpy. A topic seen once takes the plain path (byteLength, then utf8Write into the
 * packet) and pays only the comparison; its bytes are kept on its first repeat. Topics over
 * TOPIC_CACHE_CHARS UTF-16 units (each at most 3 bytes) are not kept. Encoding is synchronous,
 * so one slot shared by all callers is safe.
 */
const TOPIC_CACHE_CHARS = 256;
const topicScratch = Buffer.allocUnsafe(TOPIC_CACHE_CHARS * 3);
let cachedTopic = '';
let cachedTopicLength = 0;
/** The kept bytes (a view of topicScratch), or null while the cached topic has not repeated. */
let cachedTopicBytes: Buffer | null = null;

/** Wire length of a PUBLISH topic (2-byte length prefix + UTF-8 bytes); see ByteWriter.topic. */
export function topicLength(topic: string): number {
  if (topic === cachedTopic) {
    if (cachedTopicBytes === null) {
      topicScratch.utf8Write(topic, 0);
      cachedTopicBytes = topicScratch.subarray(0, cachedTopicLength);
    }
    return cachedTopicLength + 2;
  }
  const n = stringLength(topic);
  if (topic.length <= TOPIC_CACHE_CHARS) {
    cachedTopic = topic;
    cachedTopicLength = n - 2;
    cachedTopicBytes = null;
  }
  return n;
}

export function binaryLength(value: Buffer): number {
  if (value.length > 0xffff) throw new EncodeError('binary data longer than 65535 bytes');
  return value.length + 2;
}

/** A cursor writing into one pre-sized buffer. No bounds checks: lengths are computed first. */
export class ByteWriter {
  buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    const b = this.buf;
    b[this.pos++] = v >>> 8;
    b[this.pos++] = v & 0xff;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  vbi(v: number): void {
    const b = this.buf;
    do {
      let digit = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) digit |= 0x80;
      b[this.pos++] = digit;
    } while (v > 0);
  }

  utf8(v: string): void {
    const p = this.pos;
    const n = this.buf.utf8Write(v, p + 2);
    this.buf[p] = n >>> 8;
    this.buf[p + 1] = n & 0xff;
    this.pos = p + 2 + n;
  }

  /** A PUBLISH topic just measured by topicLength(): copied from its kept bytes when it has them. */
  topic(v: string): void {
    const kept = cachedTopicBytes;
    if (kept === null || v !== cachedTopic) {
      this.utf8(v);
      return;
    }
    const b = this.buf;
    const p = this.pos;
    const n = kept.length;
    b[p] = n >>> 8;
    b[p + 1] = n & 0xff;
    b.set(kept, p + 2);
    this.pos = p + 2 + n;
  }

  binary(v: Buffer): void {
    this.u16(v.length);
    this.bytes(v);
  }

  bytes(v: Buffer): void {
    // Uint8Array#set: a plain memcpy, without Buffer#copy's argument checks.
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
}
