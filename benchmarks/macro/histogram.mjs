/**
 * Latency histogram with HdrHistogram's bucket layout (3 significant digits, unit 1 µs, values up
 * to 2^32 - 1 µs, about 71 minutes), written for the load tool's hot path: `record` is a few
 * integer operations and one increment (about 15 ns here, against about 100 ns for
 * hdr-histogram-js's `recordValue`, which would take a third of the tool's receive budget at
 * 3 M deliveries/s). The layout and the percentile rule are HdrHistogram's, so percentiles equal
 * those of hdr-histogram-js for the same values (benchmarks/test/histogram.test.mjs checks it),
 * and `toHdr()` hands the counts to hdr-histogram-js for its log formats.
 *
 * Layout: values below 2048 µs have a bucket each; above, each power of two [2^k, 2^(k+1)) is cut
 * into 1024 equal buckets, so a reported value is at most 1/1024 (0.1%) above the true one.
 */

/** log2 of the sub-buckets per power of two above the linear range (1024). */
const HALF_MAGNITUDE = 10;
const SUB_BUCKETS = 2 << HALF_MAGNITUDE;
const MAX_EXPONENT = 21;
const LENGTH = (MAX_EXPONENT + 1) * (1 << HALF_MAGNITUDE) + (1 << HALF_MAGNITUDE);
/** Largest value kept as is; larger ones are clamped to it (and counted in `clamped`). */
export const HIGHEST_US = 2 ** 32 - 1;

/** Index of the bucket holding integer `v` (0 <= v < 2^32). */
function indexOf(v) {
  const b = 32 - HALF_MAGNITUDE - 1 - Math.clz32(v | (SUB_BUCKETS - 1));
  return b === 0 ? v : (b << HALF_MAGNITUDE) + Math.floor(v / 2 ** b);
}

/** Smallest value of bucket `i`. */
function lowestOf(i) {
  if (i < SUB_BUCKETS) return i;
  const b = (i >> HALF_MAGNITUDE) - 1;
  return (i - (b << HALF_MAGNITUDE)) * 2 ** b;
}

/** Largest value of bucket `i` (HdrHistogram's highestEquivalentValue). */
function highestOf(i) {
  if (i < SUB_BUCKETS) return i;
  const b = (i >> HALF_MAGNITUDE) - 1;
  return (i - (b << HALF_MAGNITUDE) + 1) * 2 ** b - 1;
}

/** Java's Math.ulp for a positive double, as HdrHistogram's percentile rule uses it. */
function ulp(x) {
  if (x === 0) return Number.MIN_VALUE;
  return 2 ** (Math.floor(Math.log2(x)) - 52);
}

export class Histogram {
  constructor() {
    this.counts = new Float64Array(LENGTH);
    this.count = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = 0;
    this.sum = 0;
    this.clamped = 0;
  }

  /** Records a latency in milliseconds (rounded to whole microseconds, negatives as 0). */
  recordMs(ms) {
    this.record(ms > 0 ? Math.round(ms * 1000) : 0);
  }

  /** Records an integer value in microseconds. */
  record(us) {
    if (us > HIGHEST_US) {
      us = HIGHEST_US;
      this.clamped++;
    }
    this.counts[indexOf(us)]++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
    if (us < this.min) this.min = us;
  }

  /** Adds another histogram's counts to this one. */
  add(other) {
    const a = this.counts;
    const b = other.counts;
    for (let i = 0; i < LENGTH; i++) a[i] += b[i];
    this.count += other.count;
    this.sum += other.sum;
    this.clamped += other.clamped;
    if (other.max > this.max) this.max = other.max;
    if (other.min < this.min) this.min = other.min;
  }

  reset() {
    this.counts.fill(0);
    this.count = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = 0;
    this.sum = 0;
    this.clamped = 0;
  }

  /**
   * Value at `percentile` (0..100) in µs, by HdrHistogram's rule: the highest value of the first
   * bucket at which the running count reaches ceil(percentile% of the count); 0 when empty.
   */
  valueAt(percentile) {
    if (this.count === 0) return 0;
    const p = Math.min(percentile, 100);
    const fp = (p / 100) * this.count;
    const target = Math.max(Math.ceil(fp - ulp(fp)), 1);
    let running = 0;
    const c = this.counts;
    for (let i = 0; i < LENGTH; i++) {
      running += c[i];
      if (running >= target) return p === 0 ? lowestOf(i) : highestOf(i);
    }
    return 0;
  }

  /** p50/p90/p99/p99.9 (bucket values), exact max and mean, in milliseconds; null when empty. */
  summary() {
    if (this.count === 0) return null;
    const ms = (us) => Math.round(us) / 1000;
    return {
      p50: ms(this.valueAt(50)),
      p90: ms(this.valueAt(90)),
      p99: ms(this.valueAt(99)),
      p999: ms(this.valueAt(99.9)),
      max: ms(this.max),
      mean: ms(this.sum / this.count),
      samples: this.count,
    };
  }

  /**
   * The same counts in an hdr-histogram-js histogram (for its log and base64 formats), built
   * with `build` from that package: one recordValueWithCount per non-empty bucket.
   */
  toHdr(build) {
    const h = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: 3,
    });
    const c = this.counts;
    for (let i = 0; i < LENGTH; i++) if (c[i] > 0) h.recordValueWithCount(lowestOf(i), c[i]);
    return h;
  }
}
