/**
 * What a node's gateway needs from the line to the rest of its cluster. RedisBus is the real
 * one; a node on its own with a data directory uses a bus with no other node behind it (the
 * gateway then only keeps the node's durable state), so one gateway serves both.
 */
/** Node numbers cycle below this: message ids (number * 256 + member) * 2^32 stay under 2^53. */
export const NODE_NUMBERS = 8192;

export interface NodeBus {
  /** This node's id in the cluster. */
  readonly nodeId: string;
  /** This node's number: the high part of its message ids. */
  readonly nodeNumber: number;
  /** Whether the cluster is reachable now. */
  readonly connected: boolean;
  /** Reads the state to start from (other nodes' routes, retained messages), then goes live. */
  start(load: (routes: Map<string, string[]>, retained: Uint8Array[]) => void | Promise<void>): Promise<void>;
  sendBatch(node: string, batch: Uint8Array): void;
  storeRetained(entries: readonly [topic: string, record: Uint8Array | null][], batch: Uint8Array): void;
  addRoutes(filters: readonly string[]): void;
  removeRoutes(filters: readonly string[]): void;
  replaceRoutes(filters: readonly string[]): void;
  sessionChanged(change: 'sub' | 'unsub' | 'delete', clientId: string, filter?: string, qos?: number): void;
  /** Takes `clientId` for this node; the previous holder when it is another live node, else null. */
  claimOwner(clientId: string): Promise<string | null>;
  requestRelease(node: string, clientId: string): void;
  sendReleased(node: string, clientId: string): void;
  setWill(clientId: string, will: Uint8Array | null): void;
  /** Resolves once every other node has applied what this one announced before. */
  clusterBarrier(): Promise<void>;
  /** Resolves once every write issued so far is acknowledged. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}
