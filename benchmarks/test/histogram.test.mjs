import { build } from 'hdr-histogram-js';
import t from 'tap';
import { Histogram } from '../macro/histogram.mjs';

const PERCENTILES = [0, 1, 25, 50, 90, 99, 99.9, 99.99, 100];

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function reference() {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 32 - 1, numberOfSignificantValueDigits: 3 });
}

t.test('known inputs: 1..1000 µs', async (t) => {
  const h = new Histogram();
  for (let us = 1; us <= 1000; us++) h.record(us);
  t.equal(h.count, 1000);
  t.equal(h.valueAt(50), 500);
  t.equal(h.valueAt(99), 990);
  t.equal(h.valueAt(99.9), 999);
  t.equal(h.valueAt(100), 1000);
  t.equal(h.valueAt(0), 1);
  const s = h.summary();
  t.same(
    { p50: s.p50, p90: s.p90, p99: s.p99, p999: s.p999, max: s.max, mean: s.mean, samples: s.samples },
    { p50: 0.5, p90: 0.9, p99: 0.99, p999: 0.999, max: 1, mean: 0.501, samples: 1000 },
  );
});

t.test('milliseconds in, whole microseconds kept; an empty histogram has no summary', async (t) => {
  const h = new Histogram();
  t.equal(h.summary(), null);
  t.equal(h.valueAt(50), 0);
  h.recordMs(0.2504);
  h.recordMs(-1);
  t.equal(h.max, 250);
  t.equal(h.min, 0);
});

t.test('above 2048 µs a value lands in a bucket at most 1/1024 wide', async (t) => {
  const h = new Histogram();
  const v = 123456789;
  h.record(v);
  const reported = h.valueAt(50);
  t.ok(reported >= v && reported - v <= v / 1024, `${reported} for ${v}`);
  t.equal(h.summary().max, v / 1000, 'max is exact');
});

t.test('values past 2^32 - 1 µs are clamped and counted', async (t) => {
  const h = new Histogram();
  h.record(2 ** 40);
  t.equal(h.clamped, 1);
  t.equal(h.max, 2 ** 32 - 1);
});

t.test('percentiles equal hdr-histogram-js on the same values', async (t) => {
  const next = random(8);
  for (let trial = 0; trial < 60; trial++) {
    const mine = new Histogram();
    const ref = reference();
    const n = 1 + Math.floor(next() * 3000);
    const scale = 10 ** Math.floor(next() * 9);
    for (let i = 0; i < n; i++) {
      const v = Math.floor(next() * next() * scale);
      mine.record(v);
      ref.recordValue(v);
    }
    for (const p of PERCENTILES) {
      const a = mine.valueAt(p);
      const b = ref.getValueAtPercentile(p);
      if (a !== b) t.fail(`trial ${trial}, p${p}: ${a} vs hdr-histogram-js ${b}`);
    }
    t.equal(ref.totalCount, mine.count);
  }
  t.pass('60 random sets compared');
});

t.test('add() merges counts; toHdr() hands the same counts to hdr-histogram-js', async (t) => {
  const next = random(42);
  const a = new Histogram();
  const b = new Histogram();
  const whole = new Histogram();
  for (let i = 0; i < 5000; i++) {
    const v = Math.floor(next() * 50000);
    (i % 2 ? a : b).record(v);
    whole.record(v);
  }
  a.add(b);
  t.equal(a.count, whole.count);
  t.equal(a.max, whole.max);
  for (const p of PERCENTILES) t.equal(a.valueAt(p), whole.valueAt(p), `p${p}`);
  const hdr = whole.toHdr(build);
  t.equal(hdr.totalCount, whole.count);
  for (const p of PERCENTILES) t.equal(hdr.getValueAtPercentile(p), whole.valueAt(p), `hdr p${p}`);
  a.reset();
  t.equal(a.count, 0);
  t.equal(a.summary(), null);
});
