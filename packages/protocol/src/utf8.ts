import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.js';

/**
 * Reads an MQTT UTF-8 string body from buf[start, end) and checks it is well-formed
 * [MQTT-1.5.3-1] and has no U+0000 [MQTT-1.5.3-2]. A 0x00 byte in UTF-8 can only be U+0000
 * (every byte of a multi-byte sequence is >= 0x80), so one scan finds both the null and
 * whether the string is plain ASCII, which needs no further check.
 */
export function readUtf8(buf: Buffer, start: number, end: number): string {
  let high = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i] as number;
    if (b === 0) throw new ProtocolError('TERN_PROTO_UTF8_NULL');
    high |= b;
  }
  if (high < 0x80) return buf.latin1Slice(start, end);
  if (!isUtf8(buf.subarray(start, end))) throw new ProtocolError('TERN_PROTO_UTF8_INVALID');
  return buf.utf8Slice(start, end);
}

declare module 'node:buffer' {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    utf8Slice(start: number, end: number): string;
    utf8Write(value: string, offset: number, length?: number): number;
  }
}
