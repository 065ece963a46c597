import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.js';
import { readUtf8 } from './utf8.js';

/** Byte classes for topicName(), OR-ed over a topic's bytes. */
const NUL = 1;
const WILDCARD = 2;
const NON_ASCII = 4;
const TOPIC_BYTE_CLASS = new Uint8Array(256);
TOPIC_BYTE_CLASS[0x00] = NUL;
TOPIC_BYTE_CLASS[0x23] = WILDCARD; // '#'
TOPIC_BYTE_CLASS[0x2b] = WILDCARD; // '+'
TOPIC_BYTE_CLASS.fill(NON_ASCII, 0x80);

/**
 * A cursor over one packet body. One instance is reused for every packet a decoder reads,
 * so decoding allocates only the values it returns. Every read checks the body's end and
 * throws TERN_PROTO_TRUNCATED rather than reading the next packet's bytes.
 */
export class ByteReader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** Set by topicName(): the topic read holds '+' or '#'. */
  wildcard = false;

  reset(buf: Buffer, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError('TERN_PROTO_TRUNCATED');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return ((b[p] as number) << 8) | (b[p + 1] as number);
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Variable byte integer: at most 4 bytes [MQTT-1.5.5]. */
  vbi(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw new ProtocolError('TERN_PROTO_REMAINING_LENGTH', 'variable byte integer longer than 4 bytes');
  }

  utf8(): string {
    const len = this.u16();
    this.need(len);
    const start = this.pos;
    this.pos = start + len;
    return readUtf8(this.buf, start, start + len);
  }

  /**
   * A PUBLISH topic name: what utf8() reads and checks [MQTT-1.5.3-1] [MQTT-1.5.3-2], and in
   * the same pass over the bytes whether it holds a wildcard (left in `wildcard` for the
   * caller: [MQTT-3.3.2-2] is checked after the properties, whose topic alias decides whether
   * an empty name is allowed). '+', '#' and U+0000 are ASCII, and every byte of a multi-byte
   * UTF-8 sequence is >= 0x80, so a byte scan finds them exactly.
   */
  topicName(): string {
    const len = this.u16();
    this.need(len);
    const buf = this.buf;
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    let seen = 0;
    for (let i = start; i < end; i++) seen |= TOPIC_BYTE_CLASS[buf[i] as number] as number;
    if ((seen & NUL) !== 0) throw new ProtocolError('TERN_PROTO_UTF8_NULL');
    this.wildcard = (seen & WILDCARD) !== 0;
    if ((seen & NON_ASCII) === 0) return buf.latin1Slice(start, end);
    if (!isUtf8(buf.subarray(start, end))) throw new ProtocolError('TERN_PROTO_UTF8_INVALID');
    return buf.utf8Slice(start, end);
  }

  /** Binary data: a view into the packet, not a copy. */
  binary(): Buffer {
    const len = this.u16();
    this.need(len);
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** The rest of the body (a PUBLISH payload): a view, not a copy. */
  rest(): Buffer {
    const start = this.pos;
    this.pos = this.end;
    return this.buf.subarray(start, this.end);
  }

  expectEnd(): void {
    if (this.pos !== this.end) throw new ProtocolError('TERN_PROTO_TRAILING_BYTES');
  }
}
