/**
 * Codec micro-benchmark: Tern's codec (@tern/protocol, the built dist) against mqtt-packet,
 * measured in the same process, interleaved round by round, medians reported.
 *
 *   npm run bench:codec                      (from the repository root: build, then run)
 *   node benchmarks/micro/codec.bench.mjs [--rounds 9] [--time 80] [--warmup 250] [--no-gc]
 *        [--case publish-16b] [--op decode|stream|encode|gather] [--impl tern|mqtt-packet|floor]
 *        [--json | --json=FILE]
 *
 * Every case is one batch of packets (1000, or 128 for 64 KiB payloads). Operations:
 *   decode  the whole batch concatenated in one Buffer, pushed at once
 *           (Tern: new PacketDecoder(cb, { protocolVersion }).push(buf); mqtt-packet: parser.parse(buf))
 *   stream  the same Buffer cut into 1460-byte chunks (TCP segments), pushed chunk by chunk
 *   encode  the case's packet encoded into one Buffer per batch entry
 *           (Tern: encode(p, v); mqtt-packet: generate(p, opts)); the payload is copied
 *   gather  64 KiB PUBLISH only: the bytes handed to a writer as separate Buffers, payload by
 *           reference, for a gathered write (cork + writes, or writev), so the payload is never
 *           copied (Tern: encodePublishHeader(p, v), then the header and p.payload; mqtt-packet:
 *           writeToStream(p, sink, opts), as aedes sends). This is how a large payload should
 *           leave; below a few KiB, copying the payload costs less than a second write, and
 *           encode is the path. The sink keeps the chunks by reference, as a corked socket
 *           would; mqtt-packet hands it the topic as a string, which a real socket would still
 *           have to encode (not counted).
 * Both sides decode the same bytes and encode packet objects of the same shape; before timing,
 * both encoders (and both gather paths) must produce identical bytes and both decoders the same
 * fields.
 *
 * The third implementation, "floor", runs for the 64 KiB cases only: the least work any codec
 * must do there, with no parsing at all. stream: Buffer.allocUnsafe(body length) and one copy of
 * each body cut by a chunk boundary (a payload handed out as one Buffer must be contiguous);
 * encode: Buffer.allocUnsafe(packet length) and one copy of the payload. A second table gives
 * Tern / floor and mqtt-packet / floor (median of per-round ratios): a codec at about 1.0x of the
 * floor is bound by that allocation and copy, and mqtt-packet / floor bounds the ratio any
 * decoder or one-Buffer encoder can reach against mqtt-packet.
 *
 * A sample runs whole batches until --time ms have passed. Each round takes one sample per
 * side (A B, then B A in the next round, and so on), after --warmup ms per side. A full GC
 * runs before every sample (--no-gc turns it off), so each side pays for its own garbage.
 * Reported: median packets/s per side, ratio of the medians (Tern / mqtt-packet), and the
 * median and range of the per-round ratios (each from two adjacent samples, so less
 * sensitive to load from other processes). MB/s counts wire bytes, 1 MB = 10^6 bytes.
 * --case, --op and --impl filter (substring match on the case id; repeatable); the table goes
 * to stdout, progress to stderr; --json prints JSON instead, --json=FILE writes it too.
 */
import { Buffer } from 'node:buffer';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import process from 'node:process';
import v8 from 'node:v8';
import vm from 'node:vm';
import { encode, encodePublishHeader, PacketDecoder } from '@tern/protocol';
import mqtt from 'mqtt-packet';

const hrtime = process.hrtime;
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { rounds: 9, time: 80, warmup: 250, cases: [], ops: [], impls: [], json: null, gc: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [key, inline] = arg.split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (key) {
      case '--rounds':
        opts.rounds = Number(value());
        break;
      case '--time':
        opts.time = Number(value());
        break;
      case '--warmup':
        opts.warmup = Number(value());
        break;
      case '--case':
        opts.cases.push(value().toLowerCase());
        break;
      case '--op':
        opts.ops.push(value());
        break;
      case '--impl':
        opts.impls.push(value());
        break;
      case '--no-gc':
        opts.gc = false;
        break;
      case '--json':
        opts.json = inline ?? '-';
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]}*/\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg} (try --help)`);
    }
  }
  if (!(opts.rounds >= 1) || !(opts.time > 0) || !(opts.warmup >= 0)) throw new Error('bad --rounds/--time/--warmup');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (line) => process.stderr.write(`${line}\n`);

/** A full GC between samples; works without --expose-gc. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

const TOPIC = 'sensors/building-7/floor-3/room-12/temperature';
const BATCH = 1000;
const BATCH_LARGE = 128;
const SEGMENT = 1460;
const TARGET = 3;

function payloadOf(size) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = 0x20 + (i % 95);
  return b;
}

/** Each factory is called once per side, so the two libraries never share an object. */
function publish(size, qos, properties) {
  const payload = payloadOf(size);
  return () => {
    const p = { cmd: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false };
    if (qos > 0) p.messageId = 4242;
    if (properties !== undefined) p.properties = { ...properties };
    return p;
  };
}

function subscribe() {
  return {
    cmd: 'subscribe',
    messageId: 17,
    subscriptions: [
      { topic: 'sensors/+/temperature', qos: 1 },
      { topic: 'alerts/#', qos: 2 },
      { topic: 'devices/tern-bench-client-0001/cmd', qos: 0 },
    ],
  };
}

function connect() {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    clientId: 'tern-bench-client-0001',
    will: {
      topic: 'clients/tern-bench-client-0001/status',
      payload: Buffer.from('offline'),
      qos: 1,
      retain: true,
    },
    username: 'bench-user',
    password: Buffer.from('bench-password-0001'),
  };
}

const V5_PROPS = { messageExpiryInterval: 3600, contentType: 'application/json' };

const CASES = [
  { id: 'publish-16b-qos0', label: 'PUBLISH 16 B QoS 0', v: 4, make: publish(16, 0), publish: true },
  { id: 'publish-16b-qos1', label: 'PUBLISH 16 B QoS 1', v: 4, make: publish(16, 1), publish: true },
  { id: 'publish-256b-qos0', label: 'PUBLISH 256 B QoS 0', v: 4, make: publish(256, 0), publish: true },
  { id: 'publish-256b-qos1', label: 'PUBLISH 256 B QoS 1', v: 4, make: publish(256, 1), publish: true },
  { id: 'publish-64k-qos0', label: 'PUBLISH 64 KiB QoS 0', v: 4, make: publish(65536, 0), publish: true, large: true },
  { id: 'publish-64k-qos1', label: 'PUBLISH 64 KiB QoS 1', v: 4, make: publish(65536, 1), publish: true, large: true },
  { id: 'subscribe-3', label: 'SUBSCRIBE 3 filters', v: 4, make: subscribe, publish: false },
  { id: 'connect-full', label: 'CONNECT will+user+pass', v: 4, make: connect, publish: false },
  {
    id: 'publish-256b-qos1-v5',
    label: 'PUBLISH 256 B QoS 1 v5 +2 props',
    v: 5,
    make: publish(256, 1, V5_PROPS),
    publish: true,
  },
];

const OPS = ['decode', 'stream', 'encode', 'gather'];
const IMPLS = ['tern', 'mqtt-packet', 'floor'];

/** Whether `impl` runs `op` on case `c`: gather and the floor run for the 64 KiB cases only. */
function supports(impl, op, c) {
  if (op === 'gather') return c.large === true && impl !== 'floor';
  if (impl === 'floor') return c.large === true && (op === 'stream' || op === 'encode');
  return true;
}

// ---------------------------------------------------------------------------------------
// Runners: each returns a function that processes one batch and returns a checksum.
// ---------------------------------------------------------------------------------------

function segments(buf, size) {
  const out = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, Math.min(i + size, buf.length)));
  return out;
}

function ternDecoder(v, count) {
  let seen = 0;
  let sink = 0;
  const decoder = new PacketDecoder(
    (p) => {
      seen++;
      sink += p.cmd.length;
    },
    { protocolVersion: v },
  );
  const done = () => {
    if (seen !== count) throw new Error(`tern: decoded ${seen} packets, expected ${count}`);
    seen = 0;
    return sink;
  };
  return { decoder, done };
}

function mqttParser(v, count) {
  let seen = 0;
  let sink = 0;
  const parser = mqtt.parser({ protocolVersion: v });
  parser.on('packet', (p) => {
    seen++;
    sink += p.cmd.length;
  });
  parser.on('error', (err) => {
    throw err;
  });
  const done = () => {
    if (seen !== count) throw new Error(`mqtt-packet: decoded ${seen} packets, expected ${count}`);
    seen = 0;
    return sink;
  };
  return { parser, done };
}

/**
 * Stands for a corked socket or a writev call: keeps one packet's chunks by reference. Reset
 * before each packet; no cork method, so writeToStream schedules no uncork.
 */
class Sink {
  constructor() {
    this.chunks = new Array(16);
    this.count = 0;
  }

  write(chunk) {
    this.chunks[this.count++] = chunk;
    return true;
  }

  destroy(err) {
    throw err ?? new Error('sink destroyed');
  }

  /** The chunks written since the last reset, as one Buffer (strings as UTF-8). */
  bytes() {
    return Buffer.concat(this.chunks.slice(0, this.count).map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  }
}

const RUNNERS = {
  tern: {
    decode: (c) => {
      const { decoder, done } = ternDecoder(c.v, c.count);
      return () => {
        decoder.push(c.wire);
        return done();
      };
    },
    stream: (c) => {
      const { decoder, done } = ternDecoder(c.v, c.count);
      const chunks = c.chunks;
      return () => {
        for (let i = 0; i < chunks.length; i++) decoder.push(chunks[i]);
        return done();
      };
    },
    encode: (c) => {
      const packet = c.make();
      const v = c.v;
      const n = c.count;
      return () => {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const b = encode(packet, v);
          sum += b.length + b[b.length - 1];
        }
        return sum;
      };
    },
    gather: (c) => {
      const packet = c.make();
      const v = c.v;
      const n = c.count;
      const sink = new Sink();
      return () => {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          sink.count = 0;
          const header = encodePublishHeader(packet, v);
          sink.write(header);
          sink.write(packet.payload);
          sum += sink.count + header.length + header[header.length - 1];
        }
        return sum;
      };
    },
  },
  'mqtt-packet': {
    decode: (c) => {
      const { parser, done } = mqttParser(c.v, c.count);
      return () => {
        parser.parse(c.wire);
        return done();
      };
    },
    stream: (c) => {
      const { parser, done } = mqttParser(c.v, c.count);
      const chunks = c.chunks;
      return () => {
        for (let i = 0; i < chunks.length; i++) parser.parse(chunks[i]);
        return done();
      };
    },
    encode: (c) => {
      const packet = c.make();
      const genOpts = { protocolVersion: c.v };
      const n = c.count;
      return () => {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const b = mqtt.generate(packet, genOpts);
          sum += b.length + b[b.length - 1];
        }
        return sum;
      };
    },
    gather: (c) => {
      const packet = c.make();
      const genOpts = { protocolVersion: c.v };
      const n = c.count;
      const sink = new Sink();
      return () => {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          sink.count = 0;
          mqtt.writeToStream(packet, sink, genOpts);
          const first = sink.chunks[0];
          sum += sink.count + first.length + first[first.length - 1];
        }
        return sum;
      };
    },
  },
  floor: {
    stream: (c) => {
      const chunks = c.chunks;
      const spans = c.cutBodies;
      return () => {
        let sum = 0;
        for (let s = 0; s < spans.length; s += 2) {
          const start = spans[s];
          const end = spans[s + 1];
          const body = Buffer.allocUnsafe(end - start);
          let k = Math.floor(start / SEGMENT);
          let pos = start;
          while (pos < end) {
            const base = k * SEGMENT;
            const chunk = chunks[k++];
            const from = pos - base;
            const to = Math.min(chunk.length, end - base);
            body.set(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to), pos - start);
            pos = base + to;
          }
          sum += body[body.length - 1];
        }
        return sum;
      };
    },
    encode: (c) => {
      const payload = c.make().payload;
      const total = c.packetBytes;
      const at = total - payload.length;
      const n = c.count;
      return () => {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const b = Buffer.allocUnsafe(total);
          b.set(payload, at);
          sum += b.length + b[b.length - 1];
        }
        return sum;
      };
    },
  },
};

// ---------------------------------------------------------------------------------------
// Preparation and sanity checks: same bytes out of both encoders, same packets out of both decoders.
// ---------------------------------------------------------------------------------------

function prepare(c) {
  const reference = mqtt.generate(c.make(), { protocolVersion: c.v });
  const ours = encode(c.make(), c.v);
  if (!reference.equals(ours)) {
    throw new Error(`${c.id}: encoders disagree\n tern ${ours.toString('hex')}\n mqtt ${reference.toString('hex')}`);
  }
  if (c.large) {
    const ternSink = new Sink();
    const header = encodePublishHeader(c.make(), c.v);
    ternSink.write(header);
    ternSink.write(c.make().payload);
    const mqttSink = new Sink();
    mqtt.writeToStream(c.make(), mqttSink, { protocolVersion: c.v });
    for (const [name, sink] of [
      ['tern encodePublishHeader + payload', ternSink],
      ['mqtt-packet writeToStream', mqttSink],
    ]) {
      if (!sink.bytes().equals(reference)) throw new Error(`${c.id}: ${name} differs from generate()`);
    }
  }
  const count = c.make().payload?.length >= 65536 ? BATCH_LARGE : BATCH;
  const wire = Buffer.concat(Array.from({ length: count }, () => reference));
  const prepared = {
    ...c,
    count,
    packetBytes: reference.length,
    wire,
    chunks: segments(wire, SEGMENT),
    cutBodies: cutBodies(reference, count),
  };
  const ternOut = PacketDecoder.decodeAll(wire, { protocolVersion: c.v });
  const mqttOut = [];
  const parser = mqtt.parser({ protocolVersion: c.v });
  parser.on('packet', (p) => mqttOut.push(p));
  parser.on('error', (err) => {
    throw err;
  });
  parser.parse(wire);
  if (ternOut.length !== count || mqttOut.length !== count) {
    throw new Error(`${c.id}: decoded tern ${ternOut.length}, mqtt-packet ${mqttOut.length}, expected ${count}`);
  }
  const [a, b] = [summary(ternOut[count - 1]), summary(mqttOut[count - 1])];
  if (a !== b) throw new Error(`${c.id}: decoders disagree\n tern ${a}\n mqtt ${b}`);
  return prepared;
}

/**
 * [start, end) wire offsets, flattened, of every packet body of the batch that crosses a
 * chunk boundary: the bodies any decoder handing out one contiguous payload must copy.
 */
function cutBodies(packet, count) {
  let headerLength = 2;
  while (packet[headerLength - 1] & 0x80) headerLength++;
  const spans = [];
  for (let i = 0; i < count; i++) {
    const start = i * packet.length + headerLength;
    const end = (i + 1) * packet.length;
    if (Math.floor(start / SEGMENT) !== Math.floor((end - 1) / SEGMENT)) spans.push(start, end);
  }
  return spans;
}

/** The fields both libraries decode the same way, as one comparable string. */
function summary(p) {
  switch (p.cmd) {
    case 'publish':
      return JSON.stringify([p.topic, p.qos, p.messageId, p.payload.toString('hex'), p.properties ?? null]);
    case 'subscribe':
      return JSON.stringify([p.messageId, p.subscriptions.map((s) => [s.topic, s.qos])]);
    case 'connect':
      return JSON.stringify([
        p.clientId,
        p.keepalive,
        p.clean,
        p.will.topic,
        p.will.payload.toString(),
        p.will.qos,
        p.will.retain,
        p.username,
        p.password.toString(),
      ]);
    default:
      return p.cmd;
  }
}

// ---------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------

let blackhole = 0;

/** Runs whole batches until `ms` have passed; returns batches per second. */
function sample(run, ms) {
  if (opts.gc) gc();
  const budget = BigInt(Math.round(ms * 1e6));
  let batches = 0;
  const t0 = hrtime.bigint();
  let elapsed;
  do {
    blackhole = (blackhole + run()) | 0;
    batches++;
    elapsed = hrtime.bigint() - t0;
  } while (elapsed < budget);
  return (batches * 1e9) / Number(elapsed);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Largest distance of a sample from the median, relative to the median. */
function spread(xs) {
  const m = median(xs);
  return Math.max(...xs.map((x) => Math.abs(x - m) / m));
}

function measure(c, op, impls) {
  const runs = impls.map((impl) => RUNNERS[impl][op](c));
  for (const run of runs) sample(run, opts.warmup);
  const rates = impls.map(() => []);
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? impls.map((_, i) => i) : impls.map((_, i) => impls.length - 1 - i);
    for (const i of order) rates[i].push(sample(runs[i], opts.time) * c.count);
  }
  /** Per-round ratios a / b: median and range, or undefined when either side did not run. */
  const paired = (a, b) => {
    const [ia, ib] = [impls.indexOf(a), impls.indexOf(b)];
    if (ia < 0 || ib < 0) return undefined;
    const xs = rates[ia].map((x, round) => x / rates[ib][round]);
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const result = { paired: paired('tern', 'mqtt-packet') };
  if (impls.includes('floor')) {
    result.floorPaired = { tern: paired('tern', 'floor'), 'mqtt-packet': paired('mqtt-packet', 'floor') };
  }
  impls.forEach((impl, i) => {
    const pps = median(rates[i]);
    result[impl] = {
      packetsPerSec: pps,
      mbPerSec: (pps * c.packetBytes) / 1e6,
      spread: spread(rates[i]),
      samples: rates[i],
    };
  });
  return result;
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

function fmtRate(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

function fmtMB(x) {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

/** 'yes' when both the ratio of medians and the median of per-round ratios reach 3, 'no' when neither does. */
function verdict(r) {
  if (r.ratio === null || r.paired === undefined) return '-';
  const hits = Number(r.ratio >= TARGET) + Number(r.paired.median >= TARGET);
  return hits === 2 ? 'yes' : hits === 0 ? 'no' : 'borderline';
}

function table(rows) {
  const out = [
    '| Case | Op | B/pkt | Tern pkt/s | Tern MB/s | mqtt-packet pkt/s | mqtt-packet MB/s | Tern / mqtt-packet | Per-round ratio: median (min–max) | ≥ 3x |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
  ];
  for (const r of rows) {
    const t = r.tern;
    const m = r['mqtt-packet'];
    const cells = [
      r.label,
      r.op,
      String(r.packetBytes),
      t ? fmtRate(t.packetsPerSec) : '-',
      t ? fmtMB(t.mbPerSec) : '-',
      m ? fmtRate(m.packetsPerSec) : '-',
      m ? fmtMB(m.mbPerSec) : '-',
      r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
      r.paired ? `${r.paired.median.toFixed(2)}x (${r.paired.min.toFixed(2)}–${r.paired.max.toFixed(2)})` : '-',
      verdict(r),
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

function floorTable(rows) {
  const cell = (x) => (x === undefined ? '-' : `${x.median.toFixed(2)}x (${x.min.toFixed(2)}–${x.max.toFixed(2)})`);
  const out = [
    '| Case | Op | Floor pkt/s | Floor MB/s | Tern / floor | mqtt-packet / floor |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const f = r.floor;
    const cells = [r.label, r.op, fmtRate(f.packetsPerSec), fmtMB(f.mbPerSec)];
    cells.push(cell(r.floorPaired.tern), cell(r.floorPaired['mqtt-packet']));
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

function environment() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    mqttPacket: require('mqtt-packet/package.json').version,
    cpu,
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

const selectedCases = CASES.filter((c) => opts.cases.length === 0 || opts.cases.some((f) => c.id.includes(f)));
const selectedOps = OPS.filter((op) => opts.ops.length === 0 || opts.ops.includes(op));
const selectedImpls = IMPLS.filter((impl) => opts.impls.length === 0 || opts.impls.includes(impl));
if (selectedCases.length === 0 || selectedOps.length === 0 || selectedImpls.length === 0) {
  throw new Error('nothing selected: check --case, --op and --impl');
}

const env = environment();
log(`codec bench: node ${env.node}, mqtt-packet ${env.mqttPacket}, ${env.cpus} x ${env.cpu}`);
log(`rounds ${opts.rounds}, ${opts.time} ms per sample, ${opts.warmup} ms warm-up, ${selectedImpls.join(' vs ')}`);

const started = process.hrtime.bigint();
const rows = [];
for (const c of selectedCases) {
  const prepared = prepare(c);
  for (const op of selectedOps) {
    const impls = selectedImpls.filter((impl) => supports(impl, op, c));
    if (impls.length === 0) continue;
    const result = measure(prepared, op, impls);
    const t = result.tern?.packetsPerSec;
    const m = result['mqtt-packet']?.packetsPerSec;
    const ratio = t !== undefined && m !== undefined ? t / m : null;
    const row = {
      id: c.id,
      label: c.label,
      op,
      version: c.v,
      target: c.publish,
      packetBytes: prepared.packetBytes,
      ...result,
      ratio,
    };
    rows.push(row);
    log(
      `  ${c.id.padEnd(22)} ${op.padEnd(6)} ` +
        impls.map((impl) => `${impl} ${fmtRate(result[impl].packetsPerSec)}pkt/s`).join('  ') +
        (ratio === null ? '' : `  ratio ${ratio.toFixed(2)}x`),
    );
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
log(`done in ${seconds.toFixed(1)} s (checksum ${blackhole})`);

const doc = {
  environment: env,
  settings: {
    rounds: opts.rounds,
    sampleMs: opts.time,
    warmupMs: opts.warmup,
    batch: BATCH,
    batchLarge: BATCH_LARGE,
    segment: SEGMENT,
  },
  rows,
};
if (opts.json === '-') {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
} else {
  const compared = rows.filter((r) => r.tern !== undefined || r['mqtt-packet'] !== undefined);
  if (compared.length > 0) process.stdout.write(`${table(compared)}\n`);
  const floored = rows.filter((r) => r.floor !== undefined);
  if (floored.length > 0) {
    process.stdout.write(`\nCopy floor (Buffer.allocUnsafe + one copy, no parsing; per-round ratios):\n\n`);
    process.stdout.write(`${floorTable(floored)}\n`);
  }
  const misses = rows.filter((r) => r.target && r.ratio !== null && verdict(r) !== 'yes');
  if (misses.length > 0) {
    process.stdout.write(
      `\nPUBLISH rows not clearly at ${TARGET}x: ${misses.map((r) => `${r.id} ${r.op}`).join(', ')}\n`,
    );
  }
  if (opts.json !== null) {
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    log(`wrote ${opts.json}`);
  }
}
