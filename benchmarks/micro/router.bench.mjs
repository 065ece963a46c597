/**
 * Router micro-benchmark: @tern/router (the built dist) against what aedes does, measured in
 * the same process, interleaved round by round, medians reported.
 *
 *   npm run build && node benchmarks/micro/router.bench.mjs [--rounds 7] [--time 200]
 *        [--only subscription|retained] [--json]
 *
 * subscription match  10,000 subscriptions (7,000 exact, 1,500 with '+', 1,000 ending in '#',
 *                     500 with several wildcards) over site/<s>/dev/<d>/<metric>; one batch
 *                     is 4,096 topic names. tern: SubscriptionIndex.match with one visitor
 *                     defined up front; qlobber: Qlobber.match with mqemitter's options (the
 *                     matcher aedes publishes through).
 * retained match      100,000 retained topics (every site/<s>/dev/<d>/<metric>); one lookup
 *                     per filter. tern: RetainedIndex.match; scan: a Map of topics tested one
 *                     by one with QlobberTrue.test, as aedes-persistence's memory store does.
 * heap                retained heap of each structure after a full GC, for scale.
 *
 * A sample runs whole batches until --time ms have passed; each round takes one sample per
 * side, the side that goes first alternates, and a full GC runs before every sample. Before
 * timing, both sides must report the same matches for every topic (or filter). Ratios are
 * tern / other per round (adjacent samples: the steadier number on a busy machine), given as
 * median and range.
 */
import os from 'node:os';
import process from 'node:process';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RetainedIndex, SubscriptionIndex } from '@tern/router';
import qlobber from 'qlobber';

const { Qlobber, QlobberTrue } = qlobber;

function parseArgs(argv) {
  const opts = { rounds: 7, time: 200, json: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (key === '--rounds') opts.rounds = Number(value());
    else if (key === '--time') opts.time = Number(value());
    else if (key === '--only') opts.only = value();
    else if (key === '--json') opts.json = true;
    else throw new Error(`unknown option ${argv[i]} (options: --rounds N --time MS --only WHICH --json)`);
  }
  if (!(opts.rounds >= 1) || !(opts.time > 0)) throw new Error('bad --rounds/--time');
  if (opts.only !== null && opts.only !== 'subscription' && opts.only !== 'retained') {
    throw new Error('--only takes subscription or retained');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

/** A full GC between samples; works without --expose-gc. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

/** mulberry32: the same workload on every run. */
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SITES = 100;
const DEVICES = 200;
const METRICS = ['temp', 'humidity', 'status', 'battery', 'rssi'];
const rnd = seededRandom(0x5eed);
const int = (n) => Math.floor(rnd() * n);
const metric = () => METRICS[int(METRICS.length)];

// ---------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------

function subscriptionFilters() {
  const filters = [];
  for (let i = 0; i < 7000; i++) filters.push(`site/${int(SITES)}/dev/${int(DEVICES)}/${metric()}`);
  for (let i = 0; i < 750; i++) filters.push(`site/${int(SITES)}/dev/+/${metric()}`);
  for (let i = 0; i < 750; i++) filters.push(`site/+/dev/${int(DEVICES)}/${metric()}`);
  for (let i = 0; i < 800; i++) filters.push(`site/${int(SITES)}/dev/${int(DEVICES)}/#`);
  for (let i = 0; i < 200; i++) filters.push(`site/${int(SITES)}/#`);
  for (let i = 0; i < 500; i++) filters.push(`+/+/dev/${int(DEVICES)}/+`);
  return filters;
}

const TOPIC_BATCH = 4096;
const publishTopics = Array.from({ length: TOPIC_BATCH }, () => `site/${int(SITES)}/dev/${int(DEVICES)}/${metric()}`);

const RETAINED_FILTERS = [
  'site/42/dev/17/temp',
  'site/42/dev/17/#',
  'site/+/dev/17/status',
  'site/42/dev/+/temp',
  'site/42/#',
  'site/+/dev/+/rssi',
];

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

function sample(run, ms) {
  gc();
  let ops = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  do {
    const r = run();
    sink += r.matches;
    ops += r.ops;
    now = process.hrtime.bigint();
  } while (now < limit);
  if (sink < 0) throw new Error('unreachable');
  return ops / (Number(now - start) / 1e9);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Runs every side `rounds` times, alternating which side goes first; returns median ops/s. */
function measure(sides) {
  const names = Object.keys(sides);
  const rates = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) sample(sides[n], Math.min(opts.time, 100)); // warm-up
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) rates[n].push(sample(sides[n], opts.time));
  }
  const out = Object.fromEntries(
    names.map((n) => {
      const xs = rates[n];
      const m = median(xs);
      return [n, { opsPerSec: m, spread: (Math.max(...xs) - Math.min(...xs)) / m }];
    }),
  );
  // First side over second within each round: two adjacent samples, so this is steadier than
  // the ratio of the medians when the machine is busy.
  const perRound = rates[names[0]].map((x, r) => x / rates[names[1]][r]);
  out.ratio = { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound) };
  return out;
}

/** Heap retained by what `build` returns, after full GCs. */
function heapOf(build) {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = build();
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (kept === null) throw new Error('unreachable');
  return after - before;
}

// ---------------------------------------------------------------------------------------
// Subscription match
// ---------------------------------------------------------------------------------------

function buildTern(filters) {
  const index = new SubscriptionIndex();
  for (let i = 0; i < filters.length; i++) index.add(filters[i], `c${i}`, 1);
  return index;
}

function buildQlobber(filters) {
  // mqemitter's options: the matcher aedes routes every publish through.
  const q = new Qlobber({ match_empty_levels: true, separator: '/', wildcard_one: '+', wildcard_some: '#' });
  for (let i = 0; i < filters.length; i++) q.add(filters[i], `c${i}`);
  return q;
}

let visited = 0;
function countVisit() {
  visited++;
}

function subscriptionBench() {
  const filters = subscriptionFilters();
  const tern = buildTern(filters);
  const q = buildQlobber(filters);

  let total = 0;
  for (const topic of publishTopics) {
    const seen = [];
    tern.match(topic, (key) => seen.push(key));
    const theirs = q.match(topic);
    if (seen.sort().join() !== [...theirs].sort().join()) {
      throw new Error(`subscription match: tern and qlobber disagree on ${topic}`);
    }
    total += seen.length;
  }

  const topics = publishTopics;
  const sides = {
    tern: () => {
      visited = 0;
      for (let i = 0; i < topics.length; i++) tern.match(topics[i], countVisit);
      return { ops: topics.length, matches: visited };
    },
    qlobber: () => {
      let n = 0;
      for (let i = 0; i < topics.length; i++) n += q.match(topics[i]).length;
      return { ops: topics.length, matches: n };
    },
  };
  const result = measure(sides);
  return {
    subscriptions: filters.length,
    topics: topics.length,
    matchesPerPublish: total / topics.length,
    result,
    heap: { tern: heapOf(() => buildTern(filters)), qlobber: heapOf(() => buildQlobber(filters)) },
  };
}

// ---------------------------------------------------------------------------------------
// Retained match
// ---------------------------------------------------------------------------------------

function retainedTopics() {
  const topics = [];
  for (let s = 0; s < SITES; s++) {
    for (let d = 0; d < DEVICES; d++) for (const m of METRICS) topics.push(`site/${s}/dev/${d}/${m}`);
  }
  return topics;
}

function buildRetained(topics) {
  const index = new RetainedIndex();
  for (const topic of topics) index.set(topic, topic);
  return index;
}

function buildMap(topics) {
  const map = new Map();
  for (const topic of topics) map.set(topic, topic);
  return map;
}

/** aedes-persistence's memory store: every retained topic tested against the pattern. */
function scanMatch(map, filter) {
  const q = new QlobberTrue({ wildcard_one: '+', wildcard_some: '#', separator: '/' });
  q.add(filter);
  let n = 0;
  for (const [topic] of map) if (q.test(topic)) n++;
  return n;
}

function retainedBench() {
  const topics = retainedTopics();
  const index = buildRetained(topics);
  const map = buildMap(topics);
  const rows = [];
  for (const filter of RETAINED_FILTERS) {
    const seen = [];
    index.match(filter, (topic) => seen.push(topic));
    const hits = scanMatch(map, filter);
    if (seen.length !== hits) throw new Error(`retained match: ${filter}: tern ${seen.length}, scan ${hits}`);
    const sides = {
      tern: () => {
        visited = 0;
        index.match(filter, countVisit);
        return { ops: 1, matches: visited };
      },
      scan: () => ({ ops: 1, matches: scanMatch(map, filter) }),
    };
    rows.push({ filter, hits, result: measure(sides) });
  }
  return {
    topics: topics.length,
    rows,
    heap: { tern: heapOf(() => buildRetained(topics)), map: heapOf(() => buildMap(topics)) },
  };
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

const fmt = (x) =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${x.toFixed(1)} `;
const pct = (x) => `${(x * 100).toFixed(0)}%`;
const mb = (x) => `${(x / 1048576).toFixed(1)} MB`;
const times = (x) => (x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`);
const ratio = (r) => `${times(r.median)} (${times(r.min)} to ${times(r.max)})`;

const sub = opts.only === 'retained' ? null : subscriptionBench();
const ret = opts.only === 'subscription' ? null : retainedBench();

if (opts.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, subscription: sub, retained: ret }, null, 2)}\n`);
} else {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const lines = [];
  lines.push(`node ${process.version}, ${cpu} (${os.cpus().length} cpus), ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`${opts.rounds} rounds x ${opts.time} ms per side, medians; spread = (max - min) / median`);
  if (sub !== null) {
    lines.push('');
    lines.push(
      `Subscription match: ${sub.subscriptions} subscriptions, ${sub.topics} topics per batch, ` +
        `${sub.matchesPerPublish.toFixed(2)} matches per publish`,
    );
    lines.push('');
    lines.push('| impl | publishes/s | ns/publish | spread | heap |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const name of ['tern', 'qlobber']) {
      const r = sub.result[name];
      lines.push(
        `| ${name} | ${fmt(r.opsPerSec)} | ${(1e9 / r.opsPerSec).toFixed(0)} | ${pct(r.spread)} | ${mb(sub.heap[name])} |`,
      );
    }
    lines.push('');
    lines.push(`tern / qlobber, per-round ratio: median ${ratio(sub.result.ratio)}`);
  }
  if (ret !== null) {
    lines.push('');
    lines.push(
      `Retained match: ${ret.topics} retained topics (heap: tern ${mb(ret.heap.tern)}, Map ${mb(ret.heap.map)})`,
    );
    lines.push('');
    lines.push('| filter | hits | tern lookups/s | spread | scan lookups/s | spread | tern / scan, per round |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const { filter, hits, result } of ret.rows) {
      const { tern, scan } = result;
      lines.push(
        `| \`${filter}\` | ${hits} | ${fmt(tern.opsPerSec)} | ${pct(tern.spread)} | ${fmt(scan.opsPerSec)} | ` +
          `${pct(scan.spread)} | ${ratio(result.ratio)} |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
