/**
 * The batch of forwarded publishes one member sends another: one batch per destination per
 * event-loop turn, posted to a worker thread with its buffer in the transfer list (issue 4) or
 * published to another node over Redis (issue 5). A raw binary layout, chosen over msgpack by
 * benchmarks/micro/member-codec.bench.mjs (figures in benchmarks/RESULTS.md, "Inter-member codec").
 *
 * Layout, integers little-endian:
 *
 *   batch    u8   version (1; any other value is refused, never guessed at)
 *            u32  record count
 *            the records back to back, nothing after the last
 *
 *   record   +0   u16  flags: bits 0-1 qos, bit 2 retain, bits 3-4 targetQos, bit 5 properties
 *                      present (so null and empty stay apart), bits 6/7/8 topic/origin/target is
 *                      ASCII, bits 9/10 topic/origin is the previous record's (its length is
 *                      then 0 and its bytes are not repeated), bits 11-15 zero
 *            +2   u16  topic length in bytes
 *            +4   u16  origin length
 *            +6   u16  target length
 *            +8   u32  payload length
 *            +12  u32  properties length (0 when absent)
 *            +16  f64  id (a non-negative safe integer)
 *            +24  f64  time (a non-negative safe integer)
 *            +32  topic (UTF-8), origin (UTF-8), target (UTF-8), payload, properties
 *
 * Every length of a record sits in its 32-byte fixed part, so one comparison checks that the
 * whole record is inside the batch before any of it is read. The ASCII bits come free from the
 * writer (utf8Write wrote one byte per UTF-16 unit) and let the reader make those strings with
 * latin1Slice, skipping UTF-8 decoding; they are the writer's word, not checked: a wrong bit
 * gives a wrong string, never a read out of bounds. Strings are written from JS strings, so
 * they are well-formed UTF-8 except that a lone surrogate (never in an MQTT topic or client id,
 * both checked by the protocol decoder) comes back as U+FFFD.
 */
import type { QoS } from '@tern/protocol';
import type { Forwarded } from './forwarded.js';

/** Bumped when the layout changes. */
const VERSION = 1;
const HEADER = 5;
const FIXED = 32;

const RETAIN = 1 << 2;
const HAS_PROPERTIES = 1 << 5;
const TOPIC_ASCII = 1 << 6;
const ORIGIN_ASCII = 1 << 7;
const TARGET_ASCII = 1 << 8;
const TOPIC_REPEATS = 1 << 9;
const ORIGIN_REPEATS = 1 << 10;
const RESERVED = 0xf800;

const U16_MAX = 0xffff;

/** Default size of a writer's scratch buffer; it grows as needed. */
const INITIAL_SIZE = 64 * 1024;

/** A batch that cannot be read (truncated, corrupted, or of an unknown version). */
export class BatchError extends Error {
  override readonly name = 'BatchError';
  readonly code = 'TERN_CLUSTER_BATCH_INVALID';
}

/**
 * Gathers forwarded publishes into one batch. Records are copied into a scratch buffer that
 * grows as needed and is reused; take() copies the batch out once, into a buffer of its own.
 */
export class PublishBatchWriter {
  private buf: Buffer;
  /** A view of buf for the numbers: V8 compiles DataView accesses to plain loads and stores. */
  private view: DataView;
  private pos = HEADER;
  private records = 0;
  private readonly initialSize: number;
  /** Topic and origin of the last record in this batch ('' for none): a repeat is not written again. */
  private lastTopic = '';
  private lastOrigin = '';

  /** @param initialSize bytes of scratch to start with. @default 65536 */
  constructor(initialSize = INITIAL_SIZE) {
    this.initialSize = Math.max(initialSize, HEADER + FIXED);
    this.buf = Buffer.allocUnsafeSlow(this.initialSize);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Records appended since the last take(). */
  get count(): number {
    return this.records;
  }

  /** Bytes take() would return now, header included. */
  get byteLength(): number {
    return this.pos;
  }

  /**
   * Copies one record into the batch. The record's bytes are copied now, so the caller may
   * reuse them. Throws RangeError (and leaves the batch as it was) for a record the layout
   * cannot carry: qos or targetQos outside 0..2, id or time not a non-negative safe integer,
   * a string over 65535 bytes.
   */
  append(f: Forwarded): void {
    const { id, time, topic, payload, origin, properties, target } = f;
    const qos = f.qos;
    const targetQos = f.targetQos;
    if (!(id >= 0 && Number.isSafeInteger(id) && time >= 0 && Number.isSafeInteger(time))) {
      throw new RangeError(`id ${id} and time ${time} must be non-negative safe integers`);
    }
    if (!(isQos(qos) && isQos(targetQos))) {
      throw new RangeError(`qos ${qos} and targetQos ${targetQos} must be 0, 1 or 2`);
    }
    const propertiesLength = properties === null ? 0 : properties.length;
    // A UTF-16 unit takes at most 3 bytes of UTF-8.
    this.reserve(FIXED + 3 * (topic.length + origin.length + target.length) + payload.length + propertiesLength);
    const b = this.buf;
    const start = this.pos;
    let p = start + FIXED;
    let flags = qos | (targetQos << 3);
    if (f.retain) flags |= RETAIN;
    if (properties !== null) flags |= HAS_PROPERTIES;

    // One publisher's burst, or one topic from many publishers, is common in a batch: a string
    // equal to the previous record's costs a comparison instead of a UTF-8 encode and decode.
    let topicLength = 0;
    if (topic.length !== 0 && topic === this.lastTopic) flags |= TOPIC_REPEATS;
    else if (topic.length !== 0) {
      topicLength = b.utf8Write(topic, p);
      if (topicLength === topic.length) flags |= TOPIC_ASCII;
      p += topicLength;
    }
    let originLength = 0;
    if (origin.length !== 0 && origin === this.lastOrigin) flags |= ORIGIN_REPEATS;
    else if (origin.length !== 0) {
      originLength = b.utf8Write(origin, p);
      if (originLength === origin.length) flags |= ORIGIN_ASCII;
      p += originLength;
    }
    let targetLength = 0;
    if (target.length !== 0) {
      targetLength = b.utf8Write(target, p);
      if (targetLength === target.length) flags |= TARGET_ASCII;
      p += targetLength;
    }
    if (topicLength > U16_MAX || originLength > U16_MAX || targetLength > U16_MAX) {
      throw new RangeError('topic, origin and target must each be at most 65535 bytes of UTF-8');
    }
    if (payload.length > 0) {
      b.set(payload, p);
      p += payload.length;
    }
    if (propertiesLength > 0) {
      b.set(properties as Uint8Array, p);
      p += propertiesLength;
    }

    const v = this.view;
    v.setUint16(start, flags, true);
    v.setUint16(start + 2, topicLength, true);
    v.setUint16(start + 4, originLength, true);
    v.setUint16(start + 6, targetLength, true);
    v.setUint32(start + 8, payload.length, true);
    v.setUint32(start + 12, propertiesLength, true);
    v.setFloat64(start + 16, id, true);
    v.setFloat64(start + 24, time, true);
    this.pos = p;
    this.records++;
    this.lastTopic = topic;
    this.lastOrigin = origin;
  }

  /**
   * Returns the batch and starts a new one. The result owns its whole ArrayBuffer (byteOffset
   * 0, byteLength === buffer.byteLength), so it can go in postMessage's transfer list. With
   * nothing appended it is an empty batch, which reads as no records.
   */
  take(): Uint8Array<ArrayBuffer> {
    const b = this.buf;
    const length = this.pos;
    b[0] = VERSION;
    this.view.setUint32(1, this.records, true);
    // allocUnsafeSlow: never a slice of Node's shared pool, so the ArrayBuffer is ours alone.
    const out = Buffer.allocUnsafeSlow(length);
    b.copy(out, 0, 0, length);
    this.pos = HEADER;
    this.records = 0;
    this.lastTopic = '';
    this.lastOrigin = '';
    // Give back the memory of a burst once batches are small again.
    if (b.length > 4 * this.initialSize && length < b.length >>> 3) {
      this.setBuffer(Buffer.allocUnsafeSlow(this.initialSize));
    }
    return out;
  }

  private reserve(n: number): void {
    const needed = this.pos + n;
    if (needed <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.setBuffer(grown);
  }

  private setBuffer(buf: Buffer): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

/**
 * Calls visit once per record of a batch, in order. Each record is a new object the visitor
 * may keep; its payload and properties are views into `bytes` (Buffers), not copies. Throws
 * BatchError when the batch is truncated, has bytes after its last record, or breaks the
 * layout; records before the fault have been visited by then.
 */
export function readPublishBatch(bytes: Uint8Array, visit: (f: Forwarded) => void): void {
  const cursor = openBatch(bytes);
  readRecords(cursor, cursor.count, visit);
  endOfBatch(cursor, cursor.p);
}

/**
 * Reads a batch one record at a time, for a reader that decodes records only as it needs them
 * (a moved session's queue, drained window by window). check() walks the whole batch first, so
 * a fault is found before any record is used, not halfway through.
 */
export class PublishBatchReader {
  private readonly cursor: BatchCursor;
  private taken: Forwarded | null = null;
  private readonly take = (record: Forwarded): void => {
    this.taken = record;
  };

  constructor(bytes: Uint8Array) {
    this.cursor = openBatch(bytes);
  }

  /** Records not read yet. */
  get remaining(): number {
    return this.cursor.count - this.cursor.index;
  }

  /**
   * Checks the layout of every record not read yet and that nothing follows the last, without
   * making any record. Throws BatchError.
   */
  check(): this {
    const c = this.cursor;
    let p = c.p;
    for (let i = c.index; i < c.count; i++) p = recordEnd(c.v, p, i, c.count, c.b.length);
    endOfBatch(c, p);
    return this;
  }

  /** The next record (a new object; payload and properties are views into the batch). */
  next(): Forwarded {
    const c = this.cursor;
    if (c.index >= c.count) throw new BatchError(`read past the last of ${c.count} records`);
    readRecords(c, 1, this.take);
    const record = this.taken as Forwarded;
    this.taken = null;
    return record;
  }
}

/** Where a reader is in a batch. */
interface BatchCursor {
  readonly b: Buffer;
  readonly v: DataView;
  readonly count: number;
  /** Records read so far, and the byte where the next one starts. */
  index: number;
  p: number;
  /** The last record's topic and origin, for records that repeat them. */
  topic: string;
  origin: string;
}

function openBatch(bytes: Uint8Array): BatchCursor {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < HEADER) throw new BatchError(`batch of ${b.length} bytes is shorter than its ${HEADER}-byte header`);
  if (b[0] !== VERSION) throw new BatchError(`unknown batch version ${b[0]}`);
  return { b, v, count: v.getUint32(1, true), index: 0, p: HEADER, topic: '', origin: '' };
}

function endOfBatch(c: BatchCursor, p: number): void {
  if (p !== c.b.length) throw new BatchError(`${c.b.length - p} bytes after the last of ${c.count} records`);
}

/** Visits the next `n` records (the caller knows they exist) and moves the cursor past them. */
function readRecords(c: BatchCursor, n: number, visit: (f: Forwarded) => void): void {
  const b = c.b;
  const v = c.v;
  const end = b.length;
  const count = c.count;
  let p = c.p;
  let topic = c.topic;
  let origin = c.origin;
  const last = c.index + n;
  for (let i = c.index; i < last; i++) {
    // Each field read once: the same checks as recordEnd, on values this loop uses anyway.
    if (end - p < FIXED) throw new BatchError(`record ${i} of ${count} is cut short at byte ${p}`);
    const flags = v.getUint16(p, true);
    const topicLength = v.getUint16(p + 2, true);
    const originLength = v.getUint16(p + 4, true);
    const targetLength = v.getUint16(p + 6, true);
    const payloadLength = v.getUint32(p + 8, true);
    const propertiesLength = v.getUint32(p + 12, true);
    const id = v.getFloat64(p + 16, true);
    const time = v.getFloat64(p + 24, true);
    checkFixed(flags, topicLength, originLength, propertiesLength, id, time, i);
    // Each term is below 2**32, so the sum is exact.
    const next = p + FIXED + topicLength + originLength + targetLength + payloadLength + propertiesLength;
    if (next > end) throw new BatchError(`record ${i} of ${count} runs past the end of the batch`);
    let q = p + FIXED;
    if ((flags & TOPIC_REPEATS) === 0) topic = text(b, q, topicLength, flags & TOPIC_ASCII);
    q += topicLength;
    if ((flags & ORIGIN_REPEATS) === 0) origin = text(b, q, originLength, flags & ORIGIN_ASCII);
    q += originLength;
    const target = text(b, q, targetLength, flags & TARGET_ASCII);
    q += targetLength;
    const payload = b.subarray(q, q + payloadLength);
    q += payloadLength;
    const properties = (flags & HAS_PROPERTIES) !== 0 ? b.subarray(q, next) : null;
    visit({
      id,
      time,
      topic,
      payload,
      qos: (flags & 3) as QoS,
      retain: (flags & RETAIN) !== 0,
      origin,
      properties,
      target,
      targetQos: ((flags >>> 3) & 3) as QoS,
    });
    p = next;
  }
  // Once per call, not per record: a visitor that throws leaves the cursor where the call began
  // (readPublishBatch then gives up on the batch; the reader's own visitor never throws).
  c.index = last;
  c.p = p;
  c.topic = topic;
  c.origin = origin;
}

/**
 * Where record `i` of `count`, starting at `p`, ends; throws BatchError unless its fixed part
 * is sound and the whole record lies inside the batch (`end`).
 */
function recordEnd(v: DataView, p: number, i: number, count: number, end: number): number {
  if (end - p < FIXED) throw new BatchError(`record ${i} of ${count} is cut short at byte ${p}`);
  const topicLength = v.getUint16(p + 2, true);
  const originLength = v.getUint16(p + 4, true);
  const propertiesLength = v.getUint32(p + 12, true);
  const flags = v.getUint16(p, true);
  checkFixed(
    flags,
    topicLength,
    originLength,
    propertiesLength,
    v.getFloat64(p + 16, true),
    v.getFloat64(p + 24, true),
    i,
  );
  // Each term is below 2**32, so the sum is exact.
  const next =
    p + FIXED + topicLength + originLength + v.getUint16(p + 6, true) + v.getUint32(p + 8, true) + propertiesLength;
  if (next > end) throw new BatchError(`record ${i} of ${count} runs past the end of the batch`);
  return next;
}

/** Throws BatchError unless the fixed part of record `i` (its flags, lengths, id and time) is sound. */
function checkFixed(
  flags: number,
  topicLength: number,
  originLength: number,
  propertiesLength: number,
  id: number,
  time: number,
  i: number,
): void {
  const qos = flags & 3;
  const targetQos = (flags >>> 3) & 3;
  if ((flags & RESERVED) !== 0 || qos === 3 || targetQos === 3) {
    throw new BatchError(`record ${i} has bad flags 0x${flags.toString(16)}`);
  }
  if ((flags & HAS_PROPERTIES) === 0 && propertiesLength !== 0) {
    throw new BatchError(`record ${i} has properties bytes but no properties flag`);
  }
  const topicRepeats = (flags & TOPIC_REPEATS) !== 0;
  const originRepeats = (flags & ORIGIN_REPEATS) !== 0;
  if ((topicRepeats && (i === 0 || topicLength !== 0)) || (originRepeats && (i === 0 || originLength !== 0))) {
    throw new BatchError(`record ${i} repeats a string it has no previous record for, or has its bytes too`);
  }
  if (!(id >= 0 && Number.isSafeInteger(id) && time >= 0 && Number.isSafeInteger(time))) {
    throw new BatchError(`record ${i} has a bad id or time`);
  }
}

function isQos(x: number): boolean {
  return x === 0 || x === 1 || x === 2;
}

function text(b: Buffer, start: number, length: number, ascii: number): string {
  if (length === 0) return '';
  return ascii !== 0 ? b.latin1Slice(start, start + length) : b.utf8Slice(start, start + length);
}

// Node's own string fast paths on Buffer, not in @types/node.
declare module 'node:buffer' {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    utf8Slice(start: number, end: number): string;
    utf8Write(value: string, offset: number, length?: number): number;
  }
}
