/**
 * The scratch space of one trie walk, reused from walk to walk so that matching allocates
 * nothing but the level substrings: an explicit stack of (node, depth) instead of recursion,
 * and the levels of the string being walked, split lazily and at most once each however many
 * branches ('+' fan-out) look at the same level. A walk started from inside a visitor of
 * another walk on the same index gets a fresh WalkState (see `busy`).
 */
export class WalkState<N> {
  readonly nodes: N[];
  readonly depths: number[];
  /** levels[i] is level i of the walked string, for i < filled. */
  readonly levels: string[];
  filled: number;
  /** Index in the walked string where level `filled` starts; -1 once every level is split. */
  next: number;
  busy: boolean;

  constructor() {
    this.nodes = [];
    this.depths = [];
    this.levels = [];
    this.filled = 0;
    this.next = 0;
    this.busy = false;
  }

  begin(): void {
    this.filled = 0;
    this.next = 0;
  }

  /**
   * Splits off level `filled` of `s` (call it when a frame at that depth needs it). Returns
   * false if `s` has no more levels, that is, a frame at this depth has used up the string.
   */
  split(s: string): boolean {
    const start = this.next;
    if (start === -1) return false;
    const end = s.indexOf('/', start);
    if (end === -1) {
      this.levels[this.filled++] = start === 0 ? s : s.slice(start);
      this.next = -1;
    } else {
      this.levels[this.filled++] = s.slice(start, end);
      this.next = end + 1;
    }
    return true;
  }
}
