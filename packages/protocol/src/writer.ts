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

  binary(v: Buffer): void {
    this.u16(v.length);
    this.bytes(v);
  }

  bytes(v: Buffer): void {
    v.copy(this.buf, this.pos);
    this.pos += v.length;
  }
}
