import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives back the memory a storm of connections leaves behind.
 *
 * A handshake's short-lived objects (the CONNECT, the claim's round trip to the supervisor)
 * often outlive two scavenges while thousands of handshakes are in flight, so V8 promotes
 * them into the old generation. There they stay as garbage until the next full collection,
 * and a routing worker that goes quiet after the storm may not run one for hours: measured
 * on 10,000 idle connections, about 1 KiB of dead objects per connection stayed resident.
 *
 * So once the connections opened and closed since the last trim reach `threshold`, and one
 * tick (`tickMs`) passes with fewer than `settleBelow` of them (the storm is over), one full
 * collection runs. Steady traffic never triggers it (the latency tail is left alone), nor
 * does a steady trickle of connections (it never settles).
 */
export class HeapTrim {
  /** Connection events (opened + closed) counted at the last trim. */
  private base = 0;
  /** Connection events counted at the last tick. */
  private lastCount = 0;
  private lastTickAt = 0;

  constructor(
    private readonly collect: () => void,
    private readonly threshold = 1000,
    private readonly settleBelow = 50,
    private readonly tickMs = 1000,
  ) {}

  /**
   * Looks at the running count of connection events; runs the collection when a storm has
   * just settled. Returns the events since the last trim when it did, else 0.
   */
  observe(events: number, now: number): number {
    if (now - this.lastTickAt < this.tickMs) return 0;
    this.lastTickAt = now;
    const settled = events - this.lastCount < this.settleBelow;
    this.lastCount = events;
    const since = events - this.base;
    if (!settled || since < this.threshold) return 0;
    this.base = events;
    this.collect();
    return since;
  }
}

/**
 * This thread's heap trim for `threshold` connection events (config heapTrimConnections): null
 * when the threshold is 0 or the process does not expose V8's collector (exposedCollector).
 */
export function heapTrimFor(threshold: number): HeapTrim | null {
  if (threshold === 0) return null;
  const collect = exposedCollector();
  return collect === null ? null : new HeapTrim(collect, threshold);
}

/**
 * A compacting full collection when the process exposes V8's collector (the `tern` command
 * turns on --expose-gc before its routing workers start), else null: an embedded broker never
 * collects on its own. Compacting, because a plain full collection frees the storm's garbage
 * but keeps every page that still holds one live object, and the storm left live connection
 * objects scattered over all of them: measured on 10,000 idle connections and 2 workers, the
 * compaction is what hands the pages back (about 1 KiB per connection more). V8 compacts all
 * pages only under a process-wide flag, so it is set for this one collection; another thread's
 * collection in that instant compacts too, which costs it time, never correctness.
 */
export function exposedCollector(): (() => void) | null {
  // A worker's context gets `gc` as a global; the main thread's was made before the flag, so
  // a new context is asked for it (the collection is the isolate's, whichever context calls).
  let gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function') gc = runInNewContext('typeof gc === "function" ? gc : undefined');
  if (typeof gc !== 'function') return null;
  const collect = gc as () => void;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
