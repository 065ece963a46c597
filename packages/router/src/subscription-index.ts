import { HASH, PLUS, startsWithDollar } from './topic-levels.js';
import { WalkState } from './walk-state.js';

/** Above this many subscribers on one filter, key lookups go through a Map instead of a scan. */
const SLOT_MAP_THRESHOLD = 8;

/**
 * One level of a topic filter. Every field is assigned in the constructor, in one order,
 * so all nodes share a hidden class and `match` stays monomorphic.
 */
class FilterNode<T> {
  /** Literal child levels; null until the first one is added (most nodes are leaves). */
  children: Map<string, FilterNode<T>> | null;
  /** The '+' child. Kept out of `children` so matching needs no lookup to find it. */
  plus: FilterNode<T> | null;
  /** The '#' child; always a leaf because '#' is the last level of a filter [MQTT-4.7.1-2]. */
  hash: FilterNode<T> | null;
  readonly parent: FilterNode<T> | null;
  /** This node's own level ('+', '#' or literal): the key to unlink it from its parent. */
  readonly level: string;
  /** The whole filter that ends at this node, handed to visitors. */
  readonly filter: string;
  /** Subscriber keys and their values in parallel arrays: iteration in `match` allocates nothing. */
  keys: string[] | null;
  values: T[] | null;
  /** key -> index into `keys`, built once a filter has more than SLOT_MAP_THRESHOLD subscribers. */
  slots: Map<string, number> | null;

  constructor(parent: FilterNode<T> | null, level: string, filter: string) {
    this.children = null;
    this.plus = null;
    this.hash = null;
    this.parent = parent;
    this.level = level;
    this.filter = filter;
    this.keys = null;
    this.values = null;
    this.slots = null;
  }

  indexOf(key: string): number {
    const slots = this.slots;
    if (slots !== null) return slots.get(key) ?? -1;
    const keys = this.keys;
    if (keys === null) return -1;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return i;
    return -1;
  }

  isEmpty(): boolean {
    return this.keys === null && this.plus === null && this.hash === null && this.children === null;
  }
}

export type SubscriptionVisitor<T> = (key: string, value: T, filter: string) => void;

/**
 * Subscriptions by topic filter: a trie over filter levels with '+' and '#' as dedicated
 * children, holding per filter a map from subscriber key (a client id, a worker id, a node
 * id) to a value (subscription options, say).
 *
 * Filters are trusted: the caller validates them at SUBSCRIBE (`isValidTopicFilter` in
 * `@tern/protocol`) and answers bad ones with a SUBACK failure; `add` only refuses (RangeError)
 * a '#' before the last level, which would give the trie a shape `match` does not expect. A
 * level that is exactly '+' or '#' is a wildcard; any other level, including the empty one
 * ('a//b', '/a'), is literal.
 *
 * `match` costs O(levels x wildcard branches alive at each level), independent of the number
 * of subscriptions. It runs on a reused explicit stack and cuts each topic level out once,
 * when a branch first reaches it, instead of `topic.split('/')`: 15-30% less time per publish
 * on Node 20 (benchmarks/RESULTS.md, "Router (micro)"): no array per publish, and a level
 * that several '+' branches reach is cut and hashed once.
 */
export class SubscriptionIndex<T> {
  #root: FilterNode<T>;
  #pairs: number;
  #filters: number;
  #nodes: number;
  #walk: WalkState<FilterNode<T>>;

  constructor() {
    this.#root = new FilterNode<T>(null, '', '');
    this.#pairs = 0;
    this.#filters = 0;
    this.#nodes = 0;
    this.#walk = new WalkState();
  }

  /** Number of (filter, key) pairs. */
  get size(): number {
    return this.#pairs;
  }

  /** Number of distinct filters with at least one subscriber. */
  get filterCount(): number {
    return this.#filters;
  }

  /** Trie nodes alive, root excluded: 0 once everything is removed (proves pruning). */
  get nodeCount(): number {
    return this.#nodes;
  }

  /** Adds or replaces `key`'s subscription to `filter`. Returns true if it is new. */
  add(filter: string, key: string, value: T): boolean {
    const node = this.#nodeFor(filter);
    const i = node.indexOf(key);
    if (i !== -1) {
      node.values![i] = value;
      return false;
    }
    if (node.keys === null) {
      node.keys = [key];
      node.values = [value];
      this.#filters++;
    } else {
      const n = node.keys.push(key);
      node.values!.push(value);
      if (node.slots !== null) {
        node.slots.set(key, n - 1);
      } else if (n > SLOT_MAP_THRESHOLD) {
        const slots = new Map<string, number>();
        for (let j = 0; j < n; j++) slots.set(node.keys[j], j);
        node.slots = slots;
      }
    }
    this.#pairs++;
    return true;
  }

  /** Removes `key`'s subscription to `filter`, pruning nodes left empty. Returns false if absent. */
  remove(filter: string, key: string): boolean {
    const node = this.#find(filter);
    if (node === null) return false;
    const i = node.indexOf(key);
    if (i === -1) return false;
    const keys = node.keys!;
    const values = node.values!;
    const last = keys.length - 1;
    if (i !== last) {
      keys[i] = keys[last];
      values[i] = values[last];
      if (node.slots !== null) node.slots.set(keys[i], i);
    }
    keys.pop();
    values.pop();
    if (node.slots !== null) node.slots.delete(key);
    this.#pairs--;
    if (last === 0) {
      node.keys = null;
      node.values = null;
      node.slots = null;
      this.#filters--;
      this.#prune(node);
    }
    return true;
  }

  /** How many subscribers `filter` has (0 if none). */
  count(filter: string): number {
    const node = this.#find(filter);
    return node === null || node.keys === null ? 0 : node.keys.length;
  }

  has(filter: string, key: string): boolean {
    const node = this.#find(filter);
    return node !== null && node.indexOf(key) !== -1;
  }

  get(filter: string, key: string): T | undefined {
    const node = this.#find(filter);
    if (node === null) return undefined;
    const i = node.indexOf(key);
    return i === -1 ? undefined : node.values![i];
  }

  /**
   * Calls `visit(key, value, filter)` once for every (subscriber, filter) pair whose filter
   * matches `topic` (a topic name: no wildcards). A subscriber with several overlapping
   * filters is visited once per filter; merging them (highest QoS, one delivery) is the
   * caller's job. Visit order is unspecified.
   *
   * Do not add or remove subscriptions from inside `visit` (collect and apply afterwards):
   * it does not crash, but a pair may then be skipped or visited twice. Calling `match`
   * again from inside `visit` is fine.
   */
  match(topic: string, visit: SubscriptionVisitor<T>): void {
    let w = this.#walk;
    if (w.busy) w = new WalkState(); // called from inside a visitor: leave the outer walk alone
    w.busy = true;
    try {
      this.#match(topic, visit, w);
    } finally {
      w.busy = false;
    }
  }

  #match(topic: string, visit: SubscriptionVisitor<T>, w: WalkState<FilterNode<T>>): void {
    const dollar = startsWithDollar(topic);
    const nodes = w.nodes;
    const depths = w.depths;
    const levels = w.levels;
    w.begin();
    nodes[0] = this.#root;
    depths[0] = 0;
    let sp = 1;
    while (sp > 0) {
      sp--;
      const node = nodes[sp];
      const d = depths[sp];
      if (d === w.filled && !w.split(topic)) {
        // Every level of the topic is used up: filters ending here match, and so does a
        // '#' below, because 'a/#' also matches 'a' [MQTT-4.7.1-2].
        if (node.keys !== null) this.#visit(node, visit);
        if (node.hash !== null) this.#visit(node.hash, visit);
        continue;
      }
      // [MQTT-4.7.2-1] a wildcard in the first level never matches a '$' topic.
      const wild = d !== 0 || !dollar;
      if (wild && node.hash !== null) this.#visit(node.hash, visit);
      if (wild && node.plus !== null) {
        nodes[sp] = node.plus;
        depths[sp] = d + 1;
        sp++;
      }
      if (node.children !== null) {
        const child = node.children.get(levels[d]);
        if (child !== undefined) {
          nodes[sp] = child;
          depths[sp] = d + 1;
          sp++;
        }
      }
    }
  }

  /** Removes every subscription. */
  clear(): void {
    this.#root = new FilterNode<T>(null, '', '');
    this.#pairs = 0;
    this.#filters = 0;
    this.#nodes = 0;
  }

  #visit(node: FilterNode<T>, visit: SubscriptionVisitor<T>): void {
    const keys = node.keys;
    if (keys === null) return;
    const values = node.values!;
    const filter = node.filter;
    for (let i = 0; i < keys.length; i++) visit(keys[i], values[i], filter);
  }

  /** Walks `filter`, creating missing nodes, and returns the node it ends at. */
  #nodeFor(filter: string): FilterNode<T> {
    const n = filter.length;
    let node = this.#root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      if (end === -1) end = n;
      const c = end - start === 1 ? filter.charCodeAt(start) : 0;
      let next: FilterNode<T> | null;
      if (c === PLUS) {
        next = node.plus;
        if (next === null) next = node.plus = this.#newNode(node, '+', filter, end);
      } else if (c === HASH) {
        if (end !== n) throw new RangeError(`'#' must be the last level of a topic filter: ${JSON.stringify(filter)}`);
        next = node.hash;
        if (next === null) next = node.hash = this.#newNode(node, '#', filter, end);
      } else {
        const level = end - start === n ? filter : filter.slice(start, end);
        if (node.children === null) node.children = new Map();
        next = node.children.get(level) ?? null;
        if (next === null) {
          next = this.#newNode(node, level, filter, end);
          node.children.set(level, next);
        }
      }
      node = next;
      if (end === n) return node;
      start = end + 1;
    }
  }

  #newNode(parent: FilterNode<T>, level: string, filter: string, end: number): FilterNode<T> {
    this.#nodes++;
    return new FilterNode<T>(parent, level, end === filter.length ? filter : filter.slice(0, end));
  }

  /** Walks `filter` without creating anything; null if no node ends there. */
  #find(filter: string): FilterNode<T> | null {
    const n = filter.length;
    let node: FilterNode<T> | null | undefined = this.#root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      if (end === -1) end = n;
      const c = end - start === 1 ? filter.charCodeAt(start) : 0;
      if (c === PLUS) node = node.plus;
      else if (c === HASH) node = end === n ? node.hash : null;
      else node = node.children?.get(end - start === n ? filter : filter.slice(start, end));
      if (node == null) return null;
      if (end === n) return node;
      start = end + 1;
    }
  }

  /** Unlinks `node` and then each ancestor left with no subscribers and no children. */
  #prune(node: FilterNode<T>): void {
    let parent = node.parent;
    while (parent !== null && node.isEmpty()) {
      if (parent.plus === node) parent.plus = null;
      else if (parent.hash === node) parent.hash = null;
      else {
        const children = parent.children!;
        children.delete(node.level);
        if (children.size === 0) parent.children = null;
      }
      this.#nodes--;
      node = parent;
      parent = node.parent;
    }
  }
}
