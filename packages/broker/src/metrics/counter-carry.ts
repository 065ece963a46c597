/**
 * Keeps exported counters monotonic while the workers that count them restart. A worker's
 * counters start again from zero when it restarts; Prometheus would read the drop as a reset
 * of the whole series. Instead the last value seen before the restart is carried into a base
 * that later values are added to: 100 before a restart and 5 after export as 105.
 */

interface Series {
  readonly counter: string;
  readonly label: string;
  /** Totals of earlier incarnations of the worker. */
  base: number;
  /** The value last reported by the current incarnation. */
  last: number;
}

interface WorkerSeries {
  incarnation: string;
  readonly series: Map<string, Series>;
}

export class CounterCarry {
  private readonly workers = new Map<string, WorkerSeries>();

  /**
   * Takes one raw counter value from a worker's snapshot. A new `incarnation` (the worker
   * restarted) carries every series of that worker into its base first. A value below the last
   * one within an incarnation is taken as a restart too, so totals never fall.
   */
  record(worker: string, incarnation: string, counter: string, label: string, raw: number): void {
    let w = this.workers.get(worker);
    if (w === undefined) {
      w = { incarnation, series: new Map() };
      this.workers.set(worker, w);
    } else if (w.incarnation !== incarnation) {
      for (const s of w.series.values()) {
        s.base += s.last;
        s.last = 0;
      }
      w.incarnation = incarnation;
    }
    const key = `${counter}\u0000${label}`;
    let s = w.series.get(key);
    if (s === undefined) {
      s = { counter, label, base: 0, last: 0 };
      w.series.set(key, s);
    }
    if (raw < s.last) s.base += s.last;
    s.last = raw;
  }

  /**
   * Every series ever recorded with its monotonic total, including those of workers that have
   * stopped reporting: their counts stay part of the node's totals.
   */
  forEach(fn: (worker: string, counter: string, label: string, total: number) => void): void {
    for (const [worker, w] of this.workers) {
      for (const s of w.series.values()) fn(worker, s.counter, s.label, s.base + s.last);
    }
  }

  /** The monotonic total of one series (0 if never recorded). */
  total(worker: string, counter: string, label = ''): number {
    const s = this.workers.get(worker)?.series.get(`${counter}\u0000${label}`);
    return s === undefined ? 0 : s.base + s.last;
  }
}
