import { HASH, PLUS, startsWithDollar } from './topic-levels.js';
import { WalkState } from './walk-state.js';

/** Stack depth meaning "emit this node and its whole subtree" (the work of a '#'). */
const SUBTREE = -1;

/** One level of a topic name. Every field is assigned in the constructor, in one order. */
class TopicNode<M> {
  /** Child levels; null until the first one is added (most nodes are leaves). */
  children: Map<string, TopicNode<M>> | null;
  readonly parent: TopicNode<M> | null;
  /** This node's own level: the key to unlink it from its parent. */
  readonly level: string;
  /** The topic name ending here if a message is retained on it, else null. */
  topic: string | null;
  message: M | undefined;

  constructor(parent: TopicNode<M> | null, level: string) {
    this.children = null;
    this.parent = parent;
    this.level = level;
    this.topic = null;
    this.message = undefined;
  }
}

/**
 * Pushes every child at depth `depth`, returning the new stack pointer. `skipDollar` is set
 * for the children of the root under a wildcard: a filter starting with a wildcard does not
 * match topics starting with '$' [MQTT-4.7.2-1].
 */
function pushChildren<M>(
  nodes: TopicNode<M>[],
  depths: number[],
  sp: number,
  children: Map<string, TopicNode<M>>,
  depth: number,
  skipDollar: boolean,
): number {
  for (const child of children.values()) {
    if (skipDollar && startsWithDollar(child.level)) continue;
    nodes[sp] = child;
    depths[sp] = depth;
    sp++;
  }
  return sp;
}

export type RetainedVisitor<M> = (topic: string, message: M) => void;

/**
 * Retained messages, at most one per topic name, in a trie over topic levels so that a
 * SUBSCRIBE with a wildcard walks only the branches its filter can match instead of every
 * retained topic. `M` is opaque: deleting on an empty payload [MQTT-3.3.1-10], expiry and
 * cluster-wide agreement belong to the caller.
 *
 * Topic names are trusted (validated at PUBLISH); filters passed to `match` are trusted
 * (validated at SUBSCRIBE). Empty levels are real levels ('a//b', '/a').
 *
 * `set`, `get` and `delete` cost O(levels). `match` costs O(levels) for an exact filter, and
 * for a wildcard the number of nodes in the branches it matches (all topics under 'a/#').
 */
export class RetainedIndex<M> implements Iterable<[string, M]> {
  #root: TopicNode<M>;
  #size: number;
  #nodes: number;
  #walk: WalkState<TopicNode<M>>;

  constructor() {
    this.#root = new TopicNode<M>(null, '');
    this.#size = 0;
    this.#nodes = 0;
    this.#walk = new WalkState();
  }

  /** Number of retained messages. */
  get size(): number {
    return this.#size;
  }

  /** Trie nodes alive, root excluded: 0 once everything is deleted (proves pruning). */
  get nodeCount(): number {
    return this.#nodes;
  }

  /** Stores `message` as the retained message of `topic`. Returns true if the topic had none. */
  set(topic: string, message: M): boolean {
    const n = topic.length;
    let node = this.#root;
    let start = 0;
    for (;;) {
      let end = topic.indexOf('/', start);
      if (end === -1) end = n;
      const level = end - start === n ? topic : topic.slice(start, end);
      if (node.children === null) node.children = new Map();
      let next = node.children.get(level);
      if (next === undefined) {
        next = new TopicNode<M>(node, level);
        node.children.set(level, next);
        this.#nodes++;
      }
      node = next;
      if (end === n) break;
      start = end + 1;
    }
    const added = node.topic === null;
    if (added) this.#size++;
    node.topic = topic;
    node.message = message;
    return added;
  }

  get(topic: string): M | undefined {
    const node = this.#find(topic);
    return node === null ? undefined : node.message;
  }

  has(topic: string): boolean {
    const node = this.#find(topic);
    return node !== null && node.topic !== null;
  }

  /** Deletes the retained message of `topic`, pruning nodes left empty. Returns false if none. */
  delete(topic: string): boolean {
    const node = this.#find(topic);
    if (node === null || node.topic === null) return false;
    node.topic = null;
    node.message = undefined;
    this.#size--;
    this.#prune(node);
    return true;
  }

  /**
   * Calls `visit(topic, message)` for every retained message whose topic matches `filter`.
   * Visit order is unspecified. Deleting the visited topic from inside `visit` is safe (an
   * expired message, say); other changes made from inside `visit` may or may not be seen by
   * the walk in progress.
   */
  match(filter: string, visit: RetainedVisitor<M>): void {
    let w = this.#walk;
    if (w.busy) w = new WalkState(); // called from inside a visitor: leave the outer walk alone
    w.busy = true;
    try {
      this.#match(filter, visit, w);
    } finally {
      w.busy = false;
    }
  }

  #match(filter: string, visit: RetainedVisitor<M>, w: WalkState<TopicNode<M>>): void {
    const root = this.#root;
    const nodes = w.nodes;
    const depths = w.depths;
    const levels = w.levels;
    w.begin();
    nodes[0] = root;
    depths[0] = 0;
    let sp = 1;
    while (sp > 0) {
      sp--;
      const node = nodes[sp];
      const d = depths[sp];
      if (d === SUBTREE) {
        if (node.topic !== null) visit(node.topic, node.message as M);
        if (node.children !== null) sp = pushChildren(nodes, depths, sp, node.children, SUBTREE, false);
        continue;
      }
      if (d === w.filled && !w.split(filter)) {
        // Every level of the filter is used up.
        if (node.topic !== null) visit(node.topic, node.message as M);
        continue;
      }
      const level = levels[d];
      const c = level.length === 1 ? level.charCodeAt(0) : 0;
      if (c === HASH) {
        if (d !== 0) {
          // 'a/#' matches 'a' itself and everything below it [MQTT-4.7.1-2].
          nodes[sp] = node;
          depths[sp] = SUBTREE;
          sp++;
        } else if (root.children !== null) {
          sp = pushChildren(nodes, depths, sp, root.children, SUBTREE, true);
        }
      } else if (c === PLUS) {
        if (node.children !== null) sp = pushChildren(nodes, depths, sp, node.children, d + 1, d === 0);
      } else if (node.children !== null) {
        const child = node.children.get(level);
        if (child !== undefined) {
          nodes[sp] = child;
          depths[sp] = d + 1;
          sp++;
        }
      }
    }
  }

  /** Every (topic, message) pair, in no particular order. */
  *entries(): IterableIterator<[string, M]> {
    const stack: TopicNode<M>[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.topic !== null) yield [node.topic, node.message as M];
      if (node.children !== null) for (const child of node.children.values()) stack.push(child);
    }
  }

  [Symbol.iterator](): IterableIterator<[string, M]> {
    return this.entries();
  }

  /** Deletes every retained message. */
  clear(): void {
    this.#root = new TopicNode<M>(null, '');
    this.#size = 0;
    this.#nodes = 0;
  }

  #find(topic: string): TopicNode<M> | null {
    const n = topic.length;
    let node: TopicNode<M> | undefined = this.#root;
    let start = 0;
    for (;;) {
      let end = topic.indexOf('/', start);
      if (end === -1) end = n;
      node = node.children?.get(end - start === n ? topic : topic.slice(start, end));
      if (node === undefined) return null;
      if (end === n) return node;
      start = end + 1;
    }
  }

  /** Unlinks `node` and then each ancestor left with no message and no children. */
  #prune(node: TopicNode<M>): void {
    let parent = node.parent;
    while (parent !== null && node.topic === null && node.children === null) {
      const children = parent.children!;
      children.delete(node.level);
      if (children.size === 0) parent.children = null;
      this.#nodes--;
      node = parent;
      parent = node.parent;
    }
  }
}
