/**
 * Bounded, deterministic fuzzing of PacketDecoder: random buffers, buffers shaped like
 * packets, mutations of valid packets (bit flips, truncation, corrupted lengths, inserted and
 * deleted bytes) and headers announcing more than the size limit. Each input is fed whole and
 * again in random chunks. Checked for every input:
 *  - the decoder throws nothing but ProtocolError, with a code from the Violations catalogue;
 *  - whole and chunked feeding agree (same packets, same error code, same bytes held);
 *  - memory is bounded: `bufferedBytes` is 0 between packets and otherwise never more than the
 *    bytes of the current packet fed so far, its announced size, or maxPacketSize;
 *  - a header announcing more than maxPacketSize throws before its body is held;
 *  - with no error, every whole frame came out as exactly one packet;
 *  - every packet that comes out re-encodes and decodes to the same packet.
 * Hangs are left to tap's timeout. Reproduce a failure with TERN_FUZZ_SEED=<seed in title>.
 */
import { inspect, isDeepStrictEqual } from 'node:util';
import t from 'tap';
import {
  type DecoderOptions,
  encode,
  type Packet,
  PacketDecoder,
  ProtocolError,
  type ProtocolVersion,
  Violations,
} from '../src/index.js';
import { canonical, hex, Rng, randomPacket, seedFrom } from './support/random-packets.js';

const BASE_SEED = seedFrom('TERN_FUZZ_SEED', 0xf022_0001);
const RANDOM_BUFFERS = 100_000;
const TOO_LARGE_HEADERS = 5_000;
const MUTATED_PACKETS = 10_000;
const MUTANTS_PER_PACKET = 3;
const MUTATED_STREAMS = 2_000;
const SMALL_LIMIT = 4096;
const PROTOCOL_MAX = 268_435_455 + 5;

const VERSIONS = [3, 4, 5] as const;

// ---------------------------------------------------------------------------------------
// An independent reading of the fixed headers, to know what the decoder may hold.
// ---------------------------------------------------------------------------------------

interface Frame {
  start: number;
  first: number;
  /** Offset after the remaining length, or -1 while the header is incomplete or malformed. */
  headerEnd: number;
  /** start + whole packet size, or -1 while the header is incomplete or malformed. */
  end: number;
  /** Four remaining-length bytes that all have the continuation bit. */
  malformed: boolean;
}

function framesOf(input: Buffer): Frame[] {
  const frames: Frame[] = [];
  let pos = 0;
  while (pos < input.length) {
    const first = input[pos] as number;
    let remaining = 0;
    let multiplier = 1;
    let i = pos + 1;
    let done = false;
    while (i < input.length && i - pos <= 4) {
      const b = input[i++] as number;
      remaining += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) {
        done = true;
        break;
      }
    }
    if (!done) {
      frames.push({ start: pos, first, headerEnd: -1, end: -1, malformed: i - pos > 4 });
      break;
    }
    frames.push({ start: pos, first, headerEnd: i, end: i + remaining, malformed: false });
    pos = i + remaining;
  }
  return frames;
}

/** Fixed header flags of table 2-2: PUBLISH carries dup/qos/retain, the rest fixed values. */
function firstByteAllowed(b: number): boolean {
  const type = b >> 4;
  if (type === 0) return false;
  if (type === 3) return true; // QoS 3 and DUP with QoS 0 are checked with the body
  return (b & 0x0f) === (type === 6 || type === 8 || type === 10 ? 2 : 0);
}

function randomFirstByte(rng: Rng): number {
  const type = rng.int(1, 15);
  if (type === 3) return 0x30 | rng.int(0, 15);
  return (type << 4) | (type === 6 || type === 8 || type === 10 ? 2 : 0);
}

function vbiBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    out.push(digit);
  } while (n > 0);
  return out;
}

// ---------------------------------------------------------------------------------------
// Feeding the decoder.
// ---------------------------------------------------------------------------------------

interface Outcome {
  packets: Array<[Packet, ProtocolVersion]>;
  error: unknown;
  /** Bytes fed before the push that threw (or all of them). */
  fedBeforeError: number;
  buffered: number;
}

/** Chunk end offsets: one chunk, a few random cuts, or one byte at a time; maybe empty chunks. */
function randomCuts(rng: Rng, length: number): number[] {
  if (length > 1 && rng.chance(0.1)) return Array.from({ length }, (_, i) => i + 1);
  const cuts = new Set<number>([length]);
  const n = rng.int(1, Math.min(8, length));
  for (let i = 1; i < n; i++) cuts.add(rng.int(1, length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  if (rng.chance(0.1)) {
    const i = rng.int(0, sorted.length - 1);
    sorted.splice(i, 0, sorted[i] as number); // a repeated cut: an empty chunk
  }
  return sorted;
}

function feed(
  input: Buffer,
  cuts: readonly number[],
  options: DecoderOptions,
  afterPush: (d: PacketDecoder, fed: number) => void,
): Outcome {
  const packets: Array<[Packet, ProtocolVersion]> = [];
  const decoder: PacketDecoder = new PacketDecoder((p) => packets.push([p, decoder.protocolVersion]), options);
  let fed = 0;
  for (const cut of cuts) {
    try {
      decoder.push(input.subarray(fed, cut));
    } catch (error) {
      return { packets, error, fedBeforeError: fed, buffered: -1 };
    }
    fed = cut;
    afterPush(decoder, fed);
  }
  return { packets, error: undefined, fedBeforeError: fed, buffered: decoder.bufferedBytes };
}

const KNOWN_CODES = new Set<string>(Object.keys(Violations));

/** Null when `error` is an acceptable decoder failure, else why not. */
function badError(error: unknown): string | null {
  if (error === undefined) return null;
  if (!(error instanceof ProtocolError)) return `threw a non-ProtocolError: ${inspect(error)}`;
  if (!KNOWN_CODES.has(error.code)) return `unknown code ${error.code}`;
  const spec = Violations[error.code];
  if (error.specId !== spec.specId || error.reasonCode !== spec.reasonCode) {
    return `${error.code} carries ${error.specId}/${error.reasonCode}, catalogue says ${spec.specId}/${spec.reasonCode}`;
  }
  return null;
}

const codeOf = (error: unknown): string | undefined => (error instanceof ProtocolError ? error.code : undefined);

class Checker {
  readonly failures: string[] = [];
  inputs = 0;
  packetsOut = 0;
  readonly errorCodes = new Map<string, number>();

  fail(label: string, input: Buffer, message: string): void {
    if (this.failures.length < 10) {
      this.failures.push(`${label}: ${message}\n  input (${input.length} bytes): ${input.toString('hex', 0, 160)}`);
    } else this.failures.push('');
  }

  /** Feeds `input` whole and in chunks and checks every invariant. */
  check(rng: Rng, label: string, input: Buffer, options: Required<DecoderOptions>): void {
    this.inputs++;
    const max = options.maxPacketSize;
    const frames = framesOf(input);
    const boundError = (d: PacketDecoder, fed: number): string | null => {
      const held = d.bufferedBytes;
      const f = frames.find((fr) => fr.start < fed && (fr.end === -1 || fed < fr.end));
      if (f === undefined) return held === 0 ? null : `holds ${held} bytes between packets (after ${fed})`;
      if (held > fed - f.start) return `holds ${held} bytes, only ${fed - f.start} of this packet were fed`;
      if (f.headerEnd === -1 || fed < f.headerEnd) {
        // The size is not known yet: at most the type byte and 3 remaining length bytes.
        // (So a limit under 5 bytes can be passed by a header, never by more than that.)
        return held <= 4 ? null : `holds ${held} bytes of an incomplete fixed header`;
      }
      if (held > max) return `holds ${held} bytes, maxPacketSize is ${max}`;
      if (f.headerEnd !== -1 && fed >= f.headerEnd && f.end - f.start > max) {
        return `header at ${f.start} announced ${f.end - f.start} bytes > maxPacketSize ${max} and did not throw`;
      }
      return null;
    };
    let stepProblem: string | null = null;
    const afterPush = (d: PacketDecoder, fed: number): void => {
      stepProblem ??= boundError(d, fed);
    };

    const whole = feed(input, [input.length], options, afterPush);
    const split = feed(input, randomCuts(rng, input.length), options, afterPush);
    if (stepProblem !== null) this.fail(label, input, stepProblem);

    for (const o of [whole, split]) {
      const bad = badError(o.error);
      if (bad !== null) {
        this.fail(label, input, bad);
        return;
      }
    }
    const code = codeOf(whole.error);
    if (code !== undefined) this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    if (code !== codeOf(split.error)) {
      this.fail(label, input, `whole feed: ${code ?? 'no error'}, chunked feed: ${codeOf(split.error) ?? 'no error'}`);
    }
    const canon = (o: Outcome): Packet[] => o.packets.map(([p, v]) => canonical(p, v));
    if (!isDeepStrictEqual(canon(whole), canon(split))) {
      this.fail(
        label,
        input,
        `whole feed gave ${whole.packets.length} packets, chunked ${split.packets.length}, or different ones`,
      );
    }

    if (code === 'TERN_PROTO_PACKET_TOO_LARGE' && !frames.some((f) => f.end !== -1 && f.end - f.start > max)) {
      this.fail(label, input, 'PACKET_TOO_LARGE with no header announcing more than maxPacketSize');
    }
    if (whole.error === undefined) {
      if (whole.buffered !== split.buffered) {
        this.fail(label, input, `holds ${whole.buffered} bytes fed whole, ${split.buffered} fed in chunks`);
      }
      const complete = frames.filter((f) => f.end !== -1 && f.end <= input.length);
      if (whole.packets.length !== complete.length) {
        this.fail(label, input, `${complete.length} whole frames but ${whole.packets.length} packets`);
      }
      for (const f of frames) {
        if (!firstByteAllowed(f.first)) this.fail(label, input, `first byte 0x${f.first.toString(16)} accepted`);
        if (f.malformed) this.fail(label, input, 'a 5-byte remaining length accepted');
      }
    }

    // Whatever comes out must be a packet the encoder can write back, and the same one.
    for (const [p, v] of whole.packets) {
      this.packetsOut++;
      try {
        const again = PacketDecoder.decodeAll(encode(p, v), { protocolVersion: v });
        if (again.length !== 1 || !isDeepStrictEqual(canonical(again[0] as Packet, v), canonical(p, v))) {
          this.fail(label, input, `re-encoded ${p.cmd} decodes differently: ${inspect(again[0], { depth: 4 })}`);
        }
      } catch (e) {
        this.fail(label, input, `decoded ${inspect(p, { depth: 4 })} but re-encoding it throws ${String(e)}`);
      }
    }
  }

  report(t: Reporter, seed: number): void {
    t.same(
      this.failures.filter((f) => f !== ''),
      [],
      `no invariant broken (${this.failures.length} in all, first 10 shown; seed ${hex(seed)})`,
    );
    t.comment(
      `${this.inputs} inputs, ${this.packetsOut} packets decoded; errors: ${JSON.stringify(Object.fromEntries(this.errorCodes))}`,
    );
  }
}

/** The part of a tap test the checker reports to. */
interface Reporter {
  same(found: unknown, wanted: unknown, message: string): boolean;
  comment(...args: unknown[]): void;
}

/**
 * Limits: the protocol maximum, 4096, or tiny ones. The protocol maximum is the rarer choice
 * only for run time: under it a random header announcing megabytes makes the decoder allocate
 * the whole body buffer up front (Buffer.allocUnsafe of the announced size), which costs
 * about half a millisecond each in GC accounting.
 */
function randomOptions(rng: Rng): Required<DecoderOptions> {
  const r = rng.float();
  const maxPacketSize = r < 0.15 ? PROTOCOL_MAX : r < 0.8 ? SMALL_LIMIT : rng.int(2, 64);
  return { maxPacketSize, protocolVersion: rng.pick(VERSIONS) };
}

// ---------------------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------------------

/** 1..300 bytes: plain random, or one to three frames with plausible headers and random bodies. */
function randomBuffer(rng: Rng): Buffer {
  if (rng.chance(0.4)) return rng.bytes(rng.int(1, 300));
  const parts: Buffer[] = [];
  const frames = rng.int(1, 3);
  for (let i = 0; i < frames; i++) {
    const body = rng.bytes(rng.chance(0.2) ? 0 : rng.int(1, 90));
    const first = rng.chance(0.9) ? randomFirstByte(rng) : rng.int(0, 255);
    const r = rng.float();
    const length =
      r < 0.7
        ? vbiBytes(body.length)
        : r < 0.9
          ? vbiBytes(Math.max(0, body.length + rng.int(-3, 3)))
          : Array.from({ length: rng.int(1, 5) }, () => rng.int(0, 255));
    parts.push(Buffer.from([first, ...length]), body);
  }
  const all = Buffer.concat(parts);
  return all.subarray(0, Math.min(all.length, 300));
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x2b, 0x23, 0x2f, 0xc0, 0xed, 0xf4];

/** One to three mutations: bit flips, truncation, corrupted lengths, inserted/deleted/overwritten bytes. */
function mutate(rng: Rng, source: Buffer): Buffer {
  let b = Buffer.from(source);
  const ops = rng.int(1, 3);
  for (let k = 0; k < ops && b.length > 0; k++) {
    const at = rng.int(0, b.length - 1);
    switch (rng.int(0, 7)) {
      case 0: // bit flips
        for (let i = rng.int(1, 4); i > 0; i--) {
          const j = rng.int(0, b.length - 1);
          b[j] = (b[j] as number) ^ (1 << rng.int(0, 7));
        }
        break;
      case 1: // truncation
        b = b.subarray(0, rng.int(1, Math.max(1, b.length - 1)));
        break;
      case 2: // remaining length bytes overwritten
        for (let i = 1; i <= rng.int(1, 4) && i < b.length; i++) {
          b[i] = rng.chance(0.5) ? rng.pick([0x00, 0x7f, 0x80, 0xff]) : rng.int(0, 255);
        }
        break;
      case 3: {
        // remaining length rewritten (well-formed) to the real one plus or minus a little
        const f = framesOf(b)[0];
        if (f === undefined || f.headerEnd === -1) break;
        const rl = Math.max(0, f.end - f.headerEnd + rng.pick([-2, -1, 1, 2, 100, 16_384]));
        b = Buffer.concat([b.subarray(0, 1), Buffer.from(vbiBytes(rl)), b.subarray(f.headerEnd)]);
        break;
      }
      case 4: // a 16-bit length field (string, binary, id) somewhere in the body
        if (b.length > 3)
          b.writeUInt16BE(rng.pick([0, 1, 0xff, 0xffff, b.length, rng.int(0, 0xffff)]), rng.int(2, b.length - 2));
        break;
      case 5:
        b[at] = rng.pick(INTERESTING);
        break;
      case 6:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.int(0, 255)]), b.subarray(at)]);
        break;
      default:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
    }
  }
  return b.length > 0 ? b : Buffer.from([rng.int(0, 255)]);
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

{
  const seed = (BASE_SEED + 1) >>> 0;
  t.test(`${RANDOM_BUFFERS} random buffers of 1..300 bytes, seed ${hex(seed)}`, async (t) => {
    const rng = new Rng(seed);
    const checker = new Checker();
    for (let i = 0; i < RANDOM_BUFFERS; i++) checker.check(rng, `random #${i}`, randomBuffer(rng), randomOptions(rng));
    checker.report(t, seed);
  });
}

{
  const seed = (BASE_SEED + 2) >>> 0;
  t.test(`${TOO_LARGE_HEADERS} headers announcing more than ${SMALL_LIMIT} bytes, seed ${hex(seed)}`, async (t) => {
    const rng = new Rng(seed);
    const checker = new Checker();
    let wrong = 0;
    const examples: string[] = [];
    for (let i = 0; i < TOO_LARGE_HEADERS; i++) {
      // Total sizes from just over the limit to the protocol maximum.
      const headerBytes = rng.int(2, 4); // remaining length of 2..4 bytes reaches past 4096
      const lo = headerBytes === 2 ? SMALL_LIMIT - 2 : headerBytes === 3 ? 16_384 : 2_097_152;
      const hi = headerBytes === 2 ? 16_383 : headerBytes === 3 ? 2_097_151 : 268_435_455;
      const remaining = i === 0 ? SMALL_LIMIT - 2 : rng.chance(0.2) ? rng.pick([lo, hi]) : rng.int(lo, hi);
      const first = randomFirstByte(rng);
      const input = Buffer.concat([Buffer.from([first, ...vbiBytes(remaining)]), rng.bytes(rng.int(0, 300))]);
      const options = { maxPacketSize: SMALL_LIMIT, protocolVersion: rng.pick(VERSIONS) };
      checker.check(rng, `too large #${i}`, input, options);
      // And directly: the push completing the header throws, nothing of the body is held.
      // (TOO_LARGE needs the whole header, and the push that threw started before its end.)
      const o = feed(input, randomCuts(rng, input.length), options, () => {});
      const headerEnd = 1 + vbiBytes(remaining).length;
      if (codeOf(o.error) !== 'TERN_PROTO_PACKET_TOO_LARGE' || o.fedBeforeError >= headerEnd) {
        wrong++;
        if (examples.length < 5)
          examples.push(`${input.toString('hex', 0, 8)}: ${String(o.error)} after ${o.fedBeforeError}`);
      }
    }
    t.same(examples, [], `${wrong} headers announcing > ${SMALL_LIMIT} bytes were not refused at once`);

    // The limit itself is allowed: a header announcing exactly maxPacketSize waits for its body.
    for (const first of [0x30, 0x32, 0x82, 0x10]) {
      const header = [first, ...vbiBytes(SMALL_LIMIT - 3)];
      const d = new PacketDecoder(() => {}, { maxPacketSize: SMALL_LIMIT });
      d.push(Buffer.from(header));
      d.push(Buffer.alloc(100, 0x61));
      t.ok(d.bufferedBytes <= 100, `0x${first.toString(16)} of exactly ${SMALL_LIMIT} bytes is buffered, not refused`);
      const over = new PacketDecoder(() => {}, { maxPacketSize: SMALL_LIMIT });
      t.throws(() => over.push(Buffer.from([first, ...vbiBytes(SMALL_LIMIT - 2)])), {
        code: 'TERN_PROTO_PACKET_TOO_LARGE',
      });
    }
    checker.report(t, seed);
  });
}

{
  const seed = (BASE_SEED + 3) >>> 0;
  t.test(`${MUTATED_PACKETS * MUTANTS_PER_PACKET} mutations of valid packets, seed ${hex(seed)}`, async (t) => {
    const rng = new Rng(seed);
    const checker = new Checker();
    for (let i = 0; i < MUTATED_PACKETS; i++) {
      const v = rng.pick(VERSIONS);
      const bytes = encode(randomPacket(rng, v, undefined, { large: false }), v);
      // Unmutated first: it must come out whole.
      checker.check(rng, `valid #${i}`, bytes, { maxPacketSize: PROTOCOL_MAX, protocolVersion: v });
      for (let m = 0; m < MUTANTS_PER_PACKET; m++) {
        const options = rng.chance(0.8)
          ? { maxPacketSize: rng.chance(0.5) ? PROTOCOL_MAX : SMALL_LIMIT, protocolVersion: v }
          : randomOptions(rng);
        checker.check(rng, `mutant #${i}.${m} (v${v})`, mutate(rng, bytes), options);
      }
    }
    t.ok(checker.packetsOut >= MUTATED_PACKETS, `${checker.packetsOut} packets came out`);
    checker.report(t, seed);
  });
}

{
  const seed = (BASE_SEED + 4) >>> 0;
  t.test(`${MUTATED_STREAMS} mutated streams of 2..6 packets, seed ${hex(seed)}`, async (t) => {
    const rng = new Rng(seed);
    const checker = new Checker();
    for (let i = 0; i < MUTATED_STREAMS; i++) {
      const v = rng.pick(VERSIONS);
      const packets: Buffer[] = [];
      // Sometimes a CONNECT first, which sets the version for the rest.
      if (rng.chance(0.3)) packets.push(encode(randomPacket(rng, v, 'connect', { large: false }), v));
      for (let n = rng.int(2, 5); n > 0; n--)
        packets.push(encode(randomPacket(rng, v, undefined, { large: false }), v));
      const stream = Buffer.concat(packets);
      const options = {
        maxPacketSize: rng.chance(0.5) ? PROTOCOL_MAX : SMALL_LIMIT,
        protocolVersion: rng.pick(VERSIONS),
      };
      checker.check(rng, `stream #${i}`, rng.chance(0.2) ? stream : mutate(rng, stream), options);
    }
    checker.report(t, seed);
  });
}
