/**
 * Slows down guessing: after a failed login from an address, every further attempt from it
 * waits before it is checked, twice as long per recent failure up to a cap; one failure is
 * forgotten per quiet period. Other addresses are never slowed: the delay is a timer per
 * connection, and nothing else waits on it.
 */

export interface ThrottleSettings {
  /** Delay after one recent failure, ms; it doubles with each further one. @default 500 */
  baseMs: number;
  /** Longest delay, ms (well under the default connect timeout). @default 5000 */
  capMs: number;
  /** One failure is forgotten per this many ms without a new one. @default 30000 */
  decayMs: number;
  /** Addresses remembered at most; the least recently failed are forgotten first. @default 10000 */
  maxAddresses: number;
}

export const DEFAULT_THROTTLE: Readonly<ThrottleSettings> = Object.freeze({
  baseMs: 500,
  capMs: 5000,
  decayMs: 30_000,
  maxAddresses: 10_000,
});

interface Entry {
  failures: number;
  last: number;
}

export class AuthThrottle {
  readonly settings: ThrottleSettings;
  private readonly entries = new Map<string, Entry>();

  constructor(settings: Partial<ThrottleSettings> = {}) {
    this.settings = { ...DEFAULT_THROTTLE, ...settings };
  }

  /** Addresses with failures remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** Recent failures of `address` at `now`, after forgetting one per decay period. */
  failures(address: string, now: number): number {
    const entry = this.entries.get(address);
    if (entry === undefined) return 0;
    const left = entry.failures - Math.floor((now - entry.last) / this.settings.decayMs);
    if (left > 0) return left;
    this.entries.delete(address);
    return 0;
  }

  /** How long an attempt from `address` waits before it is checked, ms (0: at once). */
  delayMs(address: string, now: number): number {
    const failures = this.failures(address, now);
    if (failures === 0) return 0;
    const { baseMs, capMs } = this.settings;
    return Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30));
  }

  /** Records a failed attempt from `address`. */
  failed(address: string, now: number): void {
    const failures = this.failures(address, now) + 1;
    // Re-inserted, so the map's order is least recently failed first.
    this.entries.delete(address);
    this.entries.set(address, { failures, last: now });
    if (this.entries.size > this.settings.maxAddresses) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}

/** The address part of a socket's remote address, IPv4-mapped IPv6 written as IPv4. */
export function addressKey(remote: string | undefined): string | null {
  if (remote === undefined || remote.length === 0) return null;
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}
