/**
 * Limit state that belongs to the whole node rather than to one routing worker: whether the
 * process is above memoryHighWaterMark, and when the node last logged a limit that bites in
 * floods (maxConnections, connectTimeoutMs). It lives in shared memory, so every worker reads
 * the same memory state and a flood spread over workers still logs one line, not one per
 * worker. A broker alone makes a private copy.
 */
import type { Logger } from './logger.js';

/** Index of the memory flag: 1 while above the mark. */
const MEMORY_HIGH = 0;
/** Per flood-prone limit: [second of the last line, hits since that line]. */
const LOG_SLOTS = { 'max-connections': 1, 'connect-timeout': 3 } as const;
const SLOT_COUNT = 5;
export type FloodLimit = keyof typeof LOG_SLOTS;

/** Seconds are counted from here so they fit an Int32 for another century. */
const EPOCH_MS = Date.UTC(2024, 0, 1);
/** At most one line per limit per this many seconds, with the hits in between counted in it. */
const LOG_INTERVAL_S = 60;
/**
 * Memory must fall this far under the mark before the node serves normally again: without
 * the gap, a process hovering at the mark would flip (and log) twice a second.
 */
const RESUME_SHARE = 0.9;
/** How often the mark is checked, ms (a coarse timer: reading RSS per message would cost). */
export const MEMORY_CHECK_INTERVAL_MS = 500;

export class NodeLimitState {
  /** The shared slots (handed to every routing worker in its workerData). */
  readonly shared: Int32Array;

  constructor(shared: Int32Array = new Int32Array(new SharedArrayBuffer(SLOT_COUNT * 4))) {
    this.shared = shared;
  }

  /**
   * True while the node is above memoryHighWaterMark. A plain read, not Atomics: it is on the
   * QoS 0 delivery path, and a flag seen one message late does no harm.
   */
  get memoryHigh(): boolean {
    return this.shared[MEMORY_HIGH] !== 0;
  }

  /**
   * Counts one hit of `limit` node-wide. Returns 0 when no line is due, else the hits since
   * the last line (this one included): the first hit logs, then at most one line a minute.
   */
  lineDue(limit: FloodLimit, nowMs: number): number {
    const shared = this.shared;
    const at = LOG_SLOTS[limit];
    Atomics.add(shared, at + 1, 1);
    // +1: 0 means "never logged".
    const now = Math.floor((nowMs - EPOCH_MS) / 1000) + 1;
    const last = Atomics.load(shared, at);
    if (last !== 0 && now - last < LOG_INTERVAL_S) return 0;
    // Two workers hitting it at once: only the one that moves the stamp logs.
    if (Atomics.compareExchange(shared, at, last, now) !== last) return 0;
    return Atomics.exchange(shared, at + 1, 0);
  }

  /**
   * Compares the process's resident memory with `limit` (bytes; 0 = off) and moves the
   * node's state, with one line when the high-water state starts and one when it ends. RSS,
   * not the heap: socket buffers and payloads live outside the JavaScript heap, and RSS is
   * one figure for every thread of the process.
   */
  checkMemory(limit: number, log: Logger): void {
    const high = this.memoryHigh;
    if (limit === 0) {
      if (high) this.endHighWater(log, { limit, rss: process.memoryUsage.rss() });
      return;
    }
    const rss = process.memoryUsage.rss();
    if (!high && rss > limit) {
      Atomics.store(this.shared, MEMORY_HIGH, 1);
      log.warn(
        { rss, limit },
        'memory high-water mark reached: refusing new connections (CONNACK 0x03) and shedding QoS 0 deliveries',
      );
    } else if (high && rss < limit * RESUME_SHARE) {
      this.endHighWater(log, { rss, limit });
    }
  }

  private endHighWater(log: Logger, fields: { rss: number; limit: number }): void {
    Atomics.store(this.shared, MEMORY_HIGH, 0);
    log.info(fields, 'memory high-water mark cleared: accepting connections and delivering QoS 0 again');
  }
}
