import { isSharedFilter, parseSharedFilter, type ShareGroup, ShareGroups } from './share-groups.js';
import { SubscriptionIndex } from './subscription-index.js';

/**
 * Which members (routing workers, later cluster nodes) want which topic filters: the table a
 * member consults to forward a publish once per interested member and never to one without a
 * matching subscription. Members are small integers; a member appears under a filter once,
 * however many of its sessions subscribe to it (the member counts those itself).
 */
export class RouteTable {
  readonly #index = new SubscriptionIndex<number>();
  /**
   * Shared subscription groups (`$share/...`) by member: a publish goes to one member of each
   * matching group, chosen by the sender, never to all of them.
   */
  readonly #shared = new ShareGroups<number>();
  readonly #byMember = new Map<number, Set<string>>();
  /** Per member: the match call that last found it, so a member is listed once per match. */
  #seen = new Int32Array(8);
  #stamp = 0;
  /** Reused by every match: no allocation per publish. */
  readonly #found: number[] = [];
  readonly #collect = (_key: string, member: number): void => {
    if (this.#seen[member] !== this.#stamp) {
      this.#seen[member] = this.#stamp;
      this.#found.push(member);
    }
  };

  /** (filter, member) pairs. */
  get size(): number {
    return this.#index.size;
  }

  /** Distinct filters wanted by any member. */
  get filterCount(): number {
    return this.#index.filterCount;
  }

  /** Records that `member` wants `filter`. Returns false if it already did. */
  add(filter: string, member: number): boolean {
    if (!Number.isInteger(member) || member < 0) throw new RangeError(`member must be a small non-negative integer`);
    if (member >= this.#seen.length) {
      const grown = new Int32Array(Math.max(member + 1, this.#seen.length * 2));
      grown.set(this.#seen);
      this.#seen = grown;
    }
    if (isSharedFilter(filter)) {
      const shared = parseSharedFilter(filter);
      if (shared === null || shared === 'invalid') return false;
      if (this.#byMember.get(member)?.has(filter) === true) return false;
      this.#shared.add(filter, shared, String(member), member);
    } else if (!this.#index.add(filter, String(member), member)) {
      return false;
    }
    let filters = this.#byMember.get(member);
    if (filters === undefined) {
      filters = new Set();
      this.#byMember.set(member, filters);
    }
    filters.add(filter);
    return true;
  }

  /** Records that `member` no longer wants `filter`. Returns false if it did not. */
  remove(filter: string, member: number): boolean {
    if (isSharedFilter(filter)) {
      if (this.#byMember.get(member)?.has(filter) !== true) return false;
      this.#shared.remove(filter, String(member));
    } else if (!this.#index.remove(filter, String(member))) {
      return false;
    }
    const filters = this.#byMember.get(member);
    filters?.delete(filter);
    if (filters?.size === 0) this.#byMember.delete(member);
    return true;
  }

  /** Forgets every filter of `member` (it restarted or left). Returns how many were removed. */
  removeMember(member: number): number {
    const filters = this.#byMember.get(member);
    if (filters === undefined) return 0;
    const key = String(member);
    for (const filter of filters) {
      if (isSharedFilter(filter)) this.#shared.remove(filter, key);
      else this.#index.remove(filter, key);
    }
    this.#byMember.delete(member);
    return filters.size;
  }

  /** The filters `member` wants now. */
  filtersOf(member: number): ReadonlySet<string> {
    return this.#byMember.get(member) ?? EMPTY;
  }

  /**
   * The members with at least one filter matching `topic`, each once. The array is reused:
   * it is valid until the next call.
   */
  match(topic: string): readonly number[] {
    this.#found.length = 0;
    this.#stamp = (this.#stamp + 1) | 0;
    if (this.#stamp === 0) {
      // Wrapped around: clear so an old stamp can never look current.
      this.#seen.fill(0);
      this.#stamp = 1;
    }
    this.#index.match(topic, this.#collect);
    return this.#found;
  }

  /** Whether any shared subscription group is routed (a publish then also asks matchShared). */
  get hasShared(): boolean {
    return this.#shared.size > 0;
  }

  /** The shared subscription group `key` (`$share/...`) with the members that have it. */
  sharedGroup(key: string): ShareGroup<number> | undefined {
    return this.#shared.get(key);
  }

  /** Every shared subscription group matching `topic`, with the members that have it. */
  matchShared(topic: string, visit: (group: ShareGroup<number>) => void): void {
    this.#shared.match(topic, visit);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
