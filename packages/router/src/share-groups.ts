/**
 * Shared subscriptions `$share/{ShareName}/{filter}` (MQTT 5 section 4.8.2, accepted from
 * 3.1.1 clients as other brokers do): the subscribers of one group (same share name, same
 * filter) share its messages, each message going to one of them. A ShareGroups holds the
 * groups of one place (a broker's sessions, a member's route table), indexed by their filter
 * so a publish finds its groups in one trie walk, and turns a round-robin cursor per group.
 */
import { SubscriptionIndex } from './subscription-index.js';

const SHARE_PREFIX = '$share/';

/** A shared subscription filter split into its share name and topic filter; null when not one. */
export interface SharedFilter {
  shareName: string;
  filter: string;
}

/**
 * Splits `$share/{ShareName}/{filter}`. Null for a filter that is not shared; 'invalid' for
 * a malformed one: an empty share name or one with a wildcard, or no filter [MQTT-4.8.2-1]
 * [MQTT-4.8.2-2].
 */
export function parseSharedFilter(full: string): SharedFilter | 'invalid' | null {
  if (!full.startsWith(SHARE_PREFIX)) return null;
  const slash = full.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return 'invalid';
  const shareName = full.slice(SHARE_PREFIX.length, slash);
  const filter = full.slice(slash + 1);
  if (shareName.length === 0 || shareName.includes('+') || shareName.includes('#') || filter.length === 0) {
    return 'invalid';
  }
  return { shareName, filter };
}

export function isSharedFilter(filter: string): boolean {
  return filter.startsWith(SHARE_PREFIX);
}

/** One group: its full `$share/...` filter and its members in the order they joined. */
export class ShareGroup<M> {
  readonly key: string;
  readonly filter: string;
  readonly memberKeys: string[] = [];
  readonly members: M[] = [];
  /** Where the round robin goes next. */
  cursor = 0;
  /** Scratch for the owner: the publish this group was last handled for. */
  stamp = 0;

  constructor(key: string, filter: string) {
    this.key = key;
    this.filter = filter;
  }

  /**
   * The next member in turn that `acceptable` takes (all when omitted), or undefined when
   * none does; with `fallback`, the first member passed over is returned instead of nothing.
   */
  next(acceptable?: (member: M) => boolean, fallback = false): M | undefined {
    const n = this.members.length;
    let first: M | undefined;
    for (let i = 0; i < n; i++) {
      const at = (this.cursor + i) % n;
      const member = this.members[at] as M;
      if (acceptable === undefined || acceptable(member)) {
        this.cursor = (at + 1) % n;
        return member;
      }
      if (first === undefined) first = member;
    }
    if (fallback && first !== undefined) this.cursor = (this.cursor + 1) % n;
    return fallback ? first : undefined;
  }
}

export class ShareGroups<M> {
  readonly #groups = new Map<string, ShareGroup<M>>();
  readonly #index = new SubscriptionIndex<ShareGroup<M>>();
  /** The visitor of the match in progress, called through one adapter made once. */
  #visit: ((group: ShareGroup<M>) => void) | null = null;
  readonly #collect = (_key: string, group: ShareGroup<M>): void => {
    (this.#visit as (group: ShareGroup<M>) => void)(group);
  };

  get size(): number {
    return this.#groups.size;
  }

  get(key: string): ShareGroup<M> | undefined {
    return this.#groups.get(key);
  }

  /**
   * Adds (or replaces) member `memberKey` of the group `full` (`$share/...`, already
   * validated). Returns true when the group is new.
   */
  add(full: string, shared: SharedFilter, memberKey: string, member: M): boolean {
    let group = this.#groups.get(full);
    const fresh = group === undefined;
    if (group === undefined) {
      group = new ShareGroup<M>(full, shared.filter);
      this.#groups.set(full, group);
      this.#index.add(shared.filter, full, group);
    }
    const at = group.memberKeys.indexOf(memberKey);
    if (at >= 0) {
      group.members[at] = member;
    } else {
      group.memberKeys.push(memberKey);
      group.members.push(member);
    }
    return fresh;
  }

  /** Removes a member. Returns true when it was the group's last (the group is gone). */
  remove(full: string, memberKey: string): boolean {
    const group = this.#groups.get(full);
    if (group === undefined) return false;
    const at = group.memberKeys.indexOf(memberKey);
    if (at < 0) return false;
    group.memberKeys.splice(at, 1);
    group.members.splice(at, 1);
    if (group.cursor > at) group.cursor--;
    if (group.members.length > 0) {
      if (group.cursor >= group.members.length) group.cursor = 0;
      return false;
    }
    this.#groups.delete(full);
    this.#index.remove(group.filter, full);
    return true;
  }

  /** Calls `visit` once for every group whose filter matches `topic`. */
  match(topic: string, visit: (group: ShareGroup<M>) => void): void {
    if (this.#groups.size === 0) return;
    this.#visit = visit;
    this.#index.match(topic, this.#collect);
    this.#visit = null;
  }
}
