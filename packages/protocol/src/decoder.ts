/**
 * The streaming decoder: bytes arrive in chunks of any size, whole packets come out.
 *
 * A packet that lies whole inside a chunk is decoded in place (its payload is a view of the
 * chunk, not a copy). Only a packet cut by a chunk boundary is copied, into one buffer sized
 * from its fixed header (up to EAGER_BODY_MAX; grown as bytes come beyond it), so at most one
 * partial packet is held at a time. The size limit is
 * checked from the fixed header before a byte of the body is buffered [MQTT-3.1.2-24].
 */
import { MAX_PACKET_SIZE, REQUIRED_FLAGS } from './constants.js';
import { decodeBody } from './decode.js';
import { ProtocolError } from './errors.js';
import type { ConnectPacket, Packet, ProtocolVersion } from './packets.js';
import { ByteReader } from './reader.js';

export interface DecoderOptions {
  /**
   * Largest whole packet (fixed header included) accepted, in bytes.
   * @default 268435460 (the protocol's own limit)
   */
  maxPacketSize?: number;
  /**
   * Protocol version of packets other than CONNECT. A decoded CONNECT sets it, so a
   * server-side decoder needs no setting; a client-side decoder is told.
   * @default 4
   */
  protocolVersion?: ProtocolVersion;
}

export type PacketHandler = (packet: Packet) => void;

/**
 * What a decoder hands its packets to, as an object: a connection passes itself, so the
 * decoder needs no closure per connection.
 */
export interface PacketSink {
  onPacket(packet: Packet): void;
}

/**
 * One reader for every decoder of a thread: a body is decoded whole, synchronously, before
 * its packet is handed on, so no two decodes ever share it. One per decoder would be ~250
 * bytes per idle connection, most of it the last chunk it kept alive.
 */
const sharedReader = new ByteReader();
const NO_BYTES = Buffer.alloc(0);

/**
 * Largest cut body allocated whole as soon as its fixed header is read, so it is copied once.
 * A longer one starts at this size (or twice what has arrived) and doubles as bytes come: a
 * header announcing 256 MiB makes the decoder hold at most 128 KiB until the bytes arrive.
 * 128 KiB covers the common large payloads (64 KiB sensor frames, image tiles) in one
 * allocation while bounding what a peer that sends only a header can make each connection
 * reserve (10,000 such connections: 1.25 GiB at most, for the connect timeout or keepalive).
 */
const EAGER_BODY_MAX = 128 * 1024;

/** Fixed-header states: the byte count of a header still being read from 1 to 5 bytes. */
const HEADER_MAX = 5;

export class PacketDecoder {
  protocolVersion: ProtocolVersion;
  maxPacketSize: number;

  /** Where packets go; its owner may point it elsewhere between packets. */
  sink: PacketSink;
  /** Wire length (fixed header included) of the packet being handed to onPacket: for byte counts. */
  packetLength = 0;
  /** A fixed header cut by a chunk boundary; made the first time one is (most connections never). */
  private header: Buffer | null = null;
  private headerLength = 0;
  /** Body of a packet cut by a chunk boundary, sized from its remaining length. */
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private bodyLength = 0;
  private bodyFirstByte = 0;

  constructor(onPacket: PacketHandler | PacketSink, options: DecoderOptions = {}) {
    this.sink = typeof onPacket === 'function' ? { onPacket } : onPacket;
    this.maxPacketSize = options.maxPacketSize ?? MAX_PACKET_SIZE;
    this.protocolVersion = options.protocolVersion ?? 4;
  }

  /** Largest body buffer allocated before its bytes arrive (see EAGER_BODY_MAX). */
  static readonly eagerBodyMax: number = EAGER_BODY_MAX;

  /** Bytes held for a packet not yet complete (0 between packets, and just after a fixed header). */
  get bufferedBytes(): number {
    return this.body === null ? this.headerLength : this.bodyFilled;
  }

  /**
   * Size of the buffer allocated for a cut body (0 when none is held): at most
   * max(eagerBodyMax, twice the bytes received), whatever length the header announced.
   */
  get bodyCapacity(): number {
    return this.body === null ? 0 : this.body.length;
  }

  /** True while a packet has started but not finished (its header or body is cut). */
  get inPacket(): boolean {
    return this.body !== null || this.headerLength > 0;
  }

  /**
   * Feeds one chunk; calls the handler for every packet it completes, in order.
   * Throws ProtocolError on a violation; the connection must then be closed and this
   * decoder dropped (its state is undefined after an error).
   */
  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    if (this.body !== null) {
      pos = this.fillBody(chunk);
      if (this.body !== null) return;
    } else if (this.headerLength > 0) {
      pos = this.fillHeader(chunk);
      if (pos < 0) return;
    }
    while (pos < len) {
      const first = chunk[pos] as number;
      checkFirstByte(first);
      let remaining = 0;
      let multiplier = 1;
      let i = pos + 1;
      let complete = false;
      while (i < len) {
        const b = chunk[i++] as number;
        remaining += (b & 0x7f) * multiplier;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        if (i - pos > 4) throw new ProtocolError('TERN_PROTO_REMAINING_LENGTH');
        multiplier *= 128;
      }
      if (!complete) {
        this.header ??= Buffer.alloc(HEADER_MAX);
        chunk.copy(this.header, 0, pos, len);
        this.headerLength = len - pos;
        return;
      }
      this.checkSize(i - pos + remaining);
      const end = i + remaining;
      if (end <= len) {
        this.emit(first, chunk, i, end);
        pos = end;
      } else {
        this.startBody(first, remaining, chunk, i);
        return;
      }
    }
  }

  /** Decodes every whole packet in `chunk` and returns them; for tests and tools. */
  static decodeAll(chunk: Buffer, options?: DecoderOptions): Packet[] {
    const out: Packet[] = [];
    const d = new PacketDecoder((p) => out.push(p), options);
    d.push(chunk);
    // A body may be pending with none of its bytes in yet (input ended right after a header).
    if (d.inPacket) {
      throw new ProtocolError('TERN_PROTO_TRUNCATED', 'input ends inside a packet');
    }
    return out;
  }

  private checkSize(total: number): void {
    if (total > this.maxPacketSize) {
      throw new ProtocolError('TERN_PROTO_PACKET_TOO_LARGE', `${total} > ${this.maxPacketSize}`);
    }
  }

  /** Continues a fixed header cut by the last chunk. Returns the body's start, or -1 if still cut. */
  private fillHeader(chunk: Buffer): number {
    const h = this.header as Buffer;
    let pos = 0;
    while (pos < chunk.length) {
      const b = chunk[pos++] as number;
      h[this.headerLength++] = b;
      if ((b & 0x80) === 0) {
        let remaining = 0;
        let multiplier = 1;
        for (let k = 1; k < this.headerLength; k++) {
          remaining += ((h[k] as number) & 0x7f) * multiplier;
          multiplier *= 128;
        }
        const first = h[0] as number;
        this.checkSize(this.headerLength + remaining);
        this.headerLength = 0;
        if (chunk.length - pos >= remaining) {
          this.emit(first, chunk, pos, pos + remaining);
          return pos + remaining;
        }
        this.startBody(first, remaining, chunk, pos);
        return -1;
      }
      if (this.headerLength === HEADER_MAX) throw new ProtocolError('TERN_PROTO_REMAINING_LENGTH');
    }
    return -1;
  }

  /**
   * Starts holding a cut packet body: whole when it is at most EAGER_BODY_MAX, otherwise a
   * buffer of EAGER_BODY_MAX (or twice what has arrived) that doubles as bytes come, so past
   * that size memory follows the bytes a peer actually sent, not the length its header claims.
   */
  private startBody(first: number, remaining: number, chunk: Buffer, from: number): void {
    const have = chunk.length - from;
    const body = Buffer.allocUnsafe(Math.min(remaining, Math.max(have * 2, EAGER_BODY_MAX)));
    if (have > 0) body.set(from === 0 ? chunk : chunk.subarray(from), 0);
    this.body = body;
    this.bodyLength = remaining;
    this.bodyFilled = have;
    this.bodyFirstByte = first;
  }

  /** Continues a body cut by the last chunk. Returns how many bytes of `chunk` it took. */
  private fillBody(chunk: Buffer): number {
    let body = this.body as Buffer;
    const take = Math.min(this.bodyLength - this.bodyFilled, chunk.length);
    const needed = this.bodyFilled + take;
    if (needed > body.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(needed, body.length * 2)));
      body.copy(grown, 0, 0, this.bodyFilled);
      body = grown;
      this.body = grown;
    }
    // Uint8Array#set of the whole chunk (the usual case) skips Buffer#copy's argument checks
    // and the view it would make.
    body.set(take === chunk.length ? chunk : chunk.subarray(0, take), this.bodyFilled);
    this.bodyFilled = needed;
    if (needed === this.bodyLength) {
      this.body = null;
      this.bodyFilled = 0;
      this.emit(this.bodyFirstByte, body, 0, needed);
    }
    return take;
  }

  private emit(first: number, buf: Buffer, start: number, end: number): void {
    const type = first >> 4;
    const bodyLength = end - start;
    this.packetLength =
      1 + (bodyLength < 128 ? 1 : bodyLength < 16_384 ? 2 : bodyLength < 2_097_152 ? 3 : 4) + bodyLength;
    const r = sharedReader;
    r.reset(buf, start, end);
    const packet = decodeBody(type, first & 0x0f, r, this.protocolVersion);
    // The packet keeps the views it needs; the reader must not keep the chunk alive (after a
    // throw it does until the next decode: one chunk per thread).
    r.buf = NO_BYTES;
    if (type === 1) this.protocolVersion = (packet as ConnectPacket).protocolVersion;
    this.sink.onPacket(packet);
  }
}

/** Type and flags are checked on the first byte, before any of the body is read or held. */
function checkFirstByte(first: number): void {
  const type = first >> 4;
  if (type === 0) throw new ProtocolError('TERN_PROTO_PACKET_TYPE', 'type 0 is reserved');
  const required = REQUIRED_FLAGS[type] as number;
  // [MQTT-2.2.2-1] [MQTT-2.2.2-2]: flags are fixed for every type but PUBLISH.
  if (required >= 0 && (first & 0x0f) !== required) {
    throw new ProtocolError('TERN_PROTO_RESERVED_FLAGS', `type ${type} flags 0x${(first & 0x0f).toString(16)}`);
  }
}
