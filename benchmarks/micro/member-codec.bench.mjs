/**
 * Inter-member codec micro-benchmark: the batch of forwarded publishes one member sends another
 * (@tern/cluster, the built dist), raw binary layout against @msgpack/msgpack, and the cost of
 * the postMessage hop to a worker thread that carries it.
 *
 *   npm run bench:member                     (from the repository root: build, then run)
 *   node benchmarks/micro/member-codec.bench.mjs [--rounds 9] [--time 200] [--warmup 300]
 *        [--records 1000] [--case 16b|256b|16kib|one-publisher] [--json]
 *
 * Every case is one batch of --records forwarded publishes, QoS 1, no properties, to topics
 * like 'sensors/building-7/floor-3/temp' from clients like 'sensor-0042'. Cases (--case
 * matches a substring of the id): 16b, 256b, 16kib: payloads of that size, and consecutive
 * records differ in topic and origin (100 sensors in turn); 16b-one-publisher: one topic and
 * origin throughout (a burst from one client). Three measurements per case:
 *
 *   codec        in this thread. encode: append every record to a writer, then take() the batch
 *                (a buffer of its own, ready for a transfer list); decode: read the batch and
 *                visit every record (a new object each, payload a view into the batch).
 *                raw: PublishBatchWriter / readPublishBatch. msgpack: the alternative below,
 *                records as 10-element arrays rather than maps (no keys), encoded as one
 *                array by a reused Encoder (encode() returns a copy of its own), decoded by a
 *                reused Decoder (bin values come back as views) and checked field by field, as
 *                readPublishBatch checks its input.
 *   hop          the raw batch posted to a worker thread and echoed back: with the buffer in the
 *                transfer list both ways (moved) or without (structured clone copies it each way).
 *   end to end   encode here, post with transfer, decode in a worker (visiting every record),
 *                which answers with the record count; one batch at a time, so a batch's time is
 *                the whole cost of forwarding its records: both threads' work plus two hops.
 *
 * A sample runs whole batches until --time ms have passed. Each round takes one sample per side
 * (the side that goes first alternates), after --warmup ms per side; a full GC runs before every
 * sample. Reported: medians per side and the median and range of the per-round ratios (two
 * adjacent samples, the steadier figure on a busy machine). Before timing, each codec must
 * decode its batch back to the records it was given, in a buffer that owns its ArrayBuffer.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import process from 'node:process';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { BatchError, PublishBatchWriter, readPublishBatch } from '@tern/cluster';

// ---------------------------------------------------------------------------------------
// The benchmark's alternative: the same batch as msgpack
// ---------------------------------------------------------------------------------------

const require = createRequire(import.meta.url);

const MSGPACK_VERSION = 1;

/**
 * Records as 10-element arrays; like the raw layout, a topic or origin equal to the previous
 * record's is sent as nil, so both sides get the same shortcut.
 */
class MsgpackBatchWriter {
  encoder = new Encoder();
  rows = [];
  lastTopic = '';
  lastOrigin = '';

  append(f) {
    const topic = f.topic !== '' && f.topic === this.lastTopic ? null : f.topic;
    const origin = f.origin !== '' && f.origin === this.lastOrigin ? null : f.origin;
    this.rows.push([f.id, f.time, topic, f.payload, f.qos, f.retain, origin, f.properties, f.target, f.targetQos]);
    this.lastTopic = f.topic;
    this.lastOrigin = f.origin;
  }

  take() {
    const out = this.encoder.encode([MSGPACK_VERSION, this.rows]);
    this.rows = [];
    this.lastTopic = '';
    this.lastOrigin = '';
    return out;
  }
}

const decoder = new Decoder();
const isQos = (x) => x === 0 || x === 1 || x === 2;

function readMsgpackBatch(bytes, visit) {
  let batch;
  try {
    batch = decoder.decode(bytes);
  } catch (err) {
    throw new BatchError(String(err));
  }
  if (!Array.isArray(batch) || batch.length !== 2 || batch[0] !== MSGPACK_VERSION || !Array.isArray(batch[1])) {
    throw new BatchError('not a batch');
  }
  const rows = batch[1];
  let topic = '';
  let origin = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Array.isArray(r) || r.length !== 10) throw new BatchError(`record ${i} is not a 10-element array`);
    const [id, time, rowTopic, payload, qos, retain, rowOrigin, properties, target, targetQos] = r;
    if (rowTopic !== null || i === 0) topic = rowTopic;
    if (rowOrigin !== null || i === 0) origin = rowOrigin;
    if (
      !(Number.isSafeInteger(id) && id >= 0 && Number.isSafeInteger(time) && time >= 0) ||
      typeof topic !== 'string' ||
      !(payload instanceof Uint8Array) ||
      !isQos(qos) ||
      typeof retain !== 'boolean' ||
      typeof origin !== 'string' ||
      !(properties === null || properties instanceof Uint8Array) ||
      typeof target !== 'string' ||
      !isQos(targetQos)
    ) {
      throw new BatchError(`record ${i} has a bad field`);
    }
    visit({ id, time, topic, payload, qos, retain, origin, properties, target, targetQos });
  }
}

const CODECS = {
  raw: { Writer: PublishBatchWriter, read: readPublishBatch },
  msgpack: { Writer: MsgpackBatchWriter, read: readMsgpackBatch },
};

// ---------------------------------------------------------------------------------------
// Worker side: echo, or decode and answer with the record count
// ---------------------------------------------------------------------------------------

function runWorker() {
  const { mode } = workerData;
  let records = 0;
  let sink = 0;
  const visit = (f) => {
    records++;
    sink += f.payload.length + f.topic.length;
  };
  parentPort.on('message', (bytes) => {
    if (mode === 'echo-transfer') parentPort.postMessage(bytes, [bytes.buffer]);
    else if (mode === 'echo-copy') parentPort.postMessage(bytes);
    else {
      records = 0;
      CODECS[mode].read(bytes, visit);
      parentPort.postMessage(sink < 0 ? -1 : records);
    }
  });
}

// ---------------------------------------------------------------------------------------
// Options, workload, measurement
// ---------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { rounds: 9, time: 200, warmup: 300, records: 1000, cases: [], json: false };
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (key === '--rounds') opts.rounds = Number(value());
    else if (key === '--time') opts.time = Number(value());
    else if (key === '--warmup') opts.warmup = Number(value());
    else if (key === '--records') opts.records = Number(value());
    else if (key === '--case') opts.cases.push(value());
    else if (key === '--json') opts.json = true;
    else {
      throw new Error(
        `unknown option ${argv[i]} (options: --rounds N --time MS --warmup MS --records N --case ID --json)`,
      );
    }
  }
  if (!(opts.rounds >= 1) || !(opts.time > 0) || !(opts.warmup >= 0) || !(opts.records >= 1)) {
    throw new Error('bad --rounds/--time/--warmup/--records');
  }
  return opts;
}

/**
 * many publishers: every record's topic and origin differ from the previous record's (100
 * sensors in turn), so every string is encoded and decoded. one publisher: one topic and
 * origin throughout (a burst from one client, or fan-in to one topic).
 */
const CASES = [
  { id: '16b', payload: 16, publishers: 100 },
  { id: '256b', payload: 256, publishers: 100 },
  { id: '16kib', payload: 16 * 1024, publishers: 100 },
  { id: '16b-one-publisher', payload: 16, publishers: 1 },
];

function makeRecords(n, c) {
  const time = Date.now();
  const records = [];
  for (let i = 0; i < n; i++) {
    const k = i % c.publishers;
    records.push({
      id: 3 * 2 ** 32 + i,
      time: time + i,
      topic: `sensors/building-${k % 10}/floor-${Math.floor(k / 10)}/temp`,
      payload: Buffer.alloc(c.payload, i & 0xff),
      qos: 1,
      retain: false,
      origin: `sensor-${String(k).padStart(4, '0')}`,
      properties: null,
      target: '',
      targetQos: 0,
    });
  }
  return records;
}

function encodeWith(writer, records) {
  for (let i = 0; i < records.length; i++) writer.append(records[i]);
  return writer.take();
}

function decodeAll(read, bytes) {
  const out = [];
  read(bytes, (f) => out.push(f));
  return out;
}

function sameRecords(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    for (const k of ['id', 'time', 'topic', 'qos', 'retain', 'origin', 'target', 'targetQos']) {
      if (x[k] !== y[k]) return false;
    }
    if (!Buffer.from(x.payload).equals(y.payload) || (x.properties === null) !== (y.properties === null)) return false;
  }
  return true;
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
let sink = 0;

/** Batches per second of a synchronous operation, over about `ms` milliseconds. */
function sample(run, ms) {
  gc();
  let batches = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  do {
    run();
    batches++;
    now = process.hrtime.bigint();
  } while (now < limit);
  return batches / (Number(now - start) / 1e9);
}

/** The same for an operation that returns a promise, one at a time. */
async function sampleAsync(run, ms) {
  gc();
  let batches = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  do {
    await run();
    batches++;
    now = process.hrtime.bigint();
  } while (now < limit);
  return batches / (Number(now - start) / 1e9);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function range(xs) {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/**
 * Runs each side (a function of the round returning a time per batch in seconds) --rounds
 * times, alternating which goes first; returns the samples per side.
 */
async function rounds(sides) {
  const names = Object.keys(sides);
  for (const n of names) await sides[n](opts.warmup);
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) out[n].push(await sides[n](opts.time));
  }
  return out;
}

/** A worker running this file in `mode`, and a function sending it one batch and awaiting the reply. */
async function startWorker(mode) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { mode } });
  await new Promise((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  worker.on('error', (err) => {
    console.error(err);
    process.exit(1);
  });
  let resolveReply = null;
  worker.on('message', (m) => {
    const r = resolveReply;
    resolveReply = null;
    r(m);
  });
  const send = (bytes, transfer) =>
    new Promise((resolve) => {
      resolveReply = resolve;
      worker.postMessage(bytes, transfer ? [bytes.buffer] : undefined);
    });
  return { worker, send };
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

let opts;

function fmt(x, digits = 0) {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const ratioText = (r) => `${r.median.toFixed(2)}x (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  return [
    line(header),
    `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`,
    ...rows.map(line),
  ].join('\n');
}

async function main() {
  opts = parseArgs(process.argv.slice(2));
  const log = (s) => process.stderr.write(`${s}\n`);
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    msgpack: require('@msgpack/msgpack/package.json').version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  log(`member codec bench: node ${env.node}, ${env.cpus} x ${env.cpu}, load ${env.loadavg.join(' ')}`);
  log(`rounds ${opts.rounds}, ${opts.time} ms per sample, ${opts.records} records per batch`);

  const workers = {};
  for (const mode of ['echo-transfer', 'echo-copy', 'raw', 'msgpack']) workers[mode] = await startWorker(mode);

  const results = [];
  const cases = CASES.filter((c) => opts.cases.length === 0 || opts.cases.some((id) => c.id.includes(id)));
  for (const c of cases) {
    const records = makeRecords(opts.records, c);
    const n = records.length;
    const writers = { raw: new PublishBatchWriter(), msgpack: new MsgpackBatchWriter() };
    const batches = { raw: encodeWith(writers.raw, records), msgpack: encodeWith(writers.msgpack, records) };
    for (const name of ['raw', 'msgpack']) {
      const b = batches[name];
      if (b.byteOffset !== 0 || b.byteLength !== b.buffer.byteLength) throw new Error(`${name}: not transferable`);
      if (!sameRecords(decodeAll(CODECS[name].read, b), records)) throw new Error(`${name}: round trip differs`);
    }
    log(`${c.id}: raw batch ${batches.raw.byteLength} B, msgpack ${batches.msgpack.byteLength} B`);

    // Codec, in this thread.
    const visit = (f) => {
      sink += f.payload.length + f.topic.length;
    };
    const codecSides = {};
    for (const name of ['raw', 'msgpack']) {
      const { read } = CODECS[name];
      const writer = writers[name];
      const bytes = batches[name];
      codecSides[`${name} encode`] = async (ms) => 1 / sample(() => encodeWith(writer, records), ms);
      codecSides[`${name} decode`] = async (ms) => 1 / sample(() => read(bytes, visit), ms);
    }
    const codec = await rounds(codecSides);
    const total = (name) => codec[`${name} encode`].map((e, r) => e + codec[`${name} decode`][r]);

    // The hop: echo through a worker, moved or copied.
    let moving = new Uint8Array(batches.raw);
    const copied = new Uint8Array(batches.raw);
    const hop = await rounds({
      transfer: async (ms) =>
        1 /
        (await sampleAsync(async () => {
          moving = await workers['echo-transfer'].send(moving, true);
        }, ms)),
      copy: async (ms) => 1 / (await sampleAsync(() => workers['echo-copy'].send(copied, false), ms)),
    });

    // End to end: encode here, move to a worker, decode there, count back.
    const endToEnd = await rounds(
      Object.fromEntries(
        ['raw', 'msgpack'].map((name) => {
          const writer = writers[name];
          const w = workers[name];
          return [
            name,
            async (ms) =>
              1 /
              (await sampleAsync(async () => {
                const got = await w.send(encodeWith(writer, records), true);
                if (got !== n) throw new Error(`${name}: worker read ${got} of ${n} records`);
              }, ms)),
          ];
        }),
      ),
    );

    const perRecordNs = (xs) => (median(xs) * 1e9) / n;
    results.push({
      case: c,
      bytes: { raw: batches.raw.byteLength, msgpack: batches.msgpack.byteLength },
      codec: {
        rawEncode: perRecordNs(codec['raw encode']),
        rawDecode: perRecordNs(codec['raw decode']),
        msgpackEncode: perRecordNs(codec['msgpack encode']),
        msgpackDecode: perRecordNs(codec['msgpack decode']),
        raw: perRecordNs(total('raw')),
        msgpack: perRecordNs(total('msgpack')),
        ratio: range(total('msgpack').map((m, r) => m / total('raw')[r])),
      },
      hop: {
        transferUs: median(hop.transfer) * 1e6,
        copyUs: median(hop.copy) * 1e6,
        ratio: range(hop.copy.map((c, r) => c / hop.transfer[r])),
      },
      endToEnd: {
        rawUs: median(endToEnd.raw) * 1e6,
        msgpackUs: median(endToEnd.msgpack) * 1e6,
        ratio: range(endToEnd.msgpack.map((m, r) => m / endToEnd.raw[r])),
      },
      samples: { codec, hop, endToEnd },
    });
  }
  for (const w of Object.values(workers)) await w.worker.terminate();
  if (sink < 0) throw new Error('unreachable');

  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ env, opts, results }, null, 2)}\n`);
    return;
  }
  const n = opts.records;
  const size = (b) =>
    b >= 1024 * 1024 ? `${fmt(b / 1024 / 1024, 1)} MiB` : b >= 1024 ? `${fmt(b / 1024, 1)} KiB` : `${b} B`;
  const label = (c) => `${size(c.payload)}, ${c.publishers === 1 ? 'one publisher' : `${c.publishers} publishers`}`;
  const out = [];
  out.push(`Codec, ns per record (batches of ${n}; encode = append + take, decode = read + visit):\n`);
  out.push(
    table(
      [
        'case',
        'raw B/rec',
        'msgpack B/rec',
        'raw enc',
        'raw dec',
        'raw enc+dec',
        'msgpack enc',
        'msgpack dec',
        'msgpack enc+dec',
        'msgpack / raw, per round',
      ],
      results.map((r) => [
        label(r.case),
        fmt(r.bytes.raw / n, 1),
        fmt(r.bytes.msgpack / n, 1),
        fmt(r.codec.rawEncode),
        fmt(r.codec.rawDecode),
        fmt(r.codec.raw),
        fmt(r.codec.msgpackEncode),
        fmt(r.codec.msgpackDecode),
        fmt(r.codec.msgpack),
        ratioText(r.codec.ratio),
      ]),
    ),
  );
  out.push(`\npostMessage hop, raw batch of ${n} records to a worker thread and back:\n`);
  out.push(
    table(
      ['case', 'batch', 'transfer µs/round trip', 'ns/rec/hop', 'copy µs/round trip', 'ns/rec/hop', 'copy / transfer'],
      results.map((r) => [
        label(r.case),
        size(r.bytes.raw),
        fmt(r.hop.transferUs, 1),
        fmt((r.hop.transferUs * 1000) / n / 2, 1),
        fmt(r.hop.copyUs, 1),
        fmt((r.hop.copyUs * 1000) / n / 2, 1),
        ratioText(r.hop.ratio),
      ]),
    ),
  );
  out.push(`\nEnd to end: encode, post with transfer, decode in a worker, count back; one batch at a time:\n`);
  out.push(
    table(
      ['case', 'raw µs/batch', 'raw ns/rec', 'msgpack µs/batch', 'msgpack ns/rec', 'msgpack / raw, per round'],
      results.map((r) => [
        label(r.case),
        fmt(r.endToEnd.rawUs, 1),
        fmt((r.endToEnd.rawUs * 1000) / n),
        fmt(r.endToEnd.msgpackUs, 1),
        fmt((r.endToEnd.msgpackUs * 1000) / n),
        ratioText(r.endToEnd.ratio),
      ]),
    ),
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

if (isMainThread) await main();
else runWorker();
