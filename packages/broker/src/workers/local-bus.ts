/**
 * The bus of a node on its own with a data directory (`--data-dir`): no other node to talk
 * to, so routes and barriers are no-ops and the client id is always this node's; retained
 * messages go to the disk store. With it the node's gateway keeps persistent sessions and
 * retained messages on disk exactly as a cluster's gateway keeps them in Redis.
 */
import type { NodeBus } from '@tern/cluster';
import type { DiskSessionStore } from '@tern/session/disk';

export class LocalBus implements NodeBus {
  /**
   * How often the node stamps the data directory as alive: a run that dies without closing its
   * connections is known to have lived until its last stamp (the sessions it served expire
   * from there, at most this much late).
   */
  static readonly ALIVE_MS = 1000;
  readonly nodeId: string;
  readonly nodeNumber: number;
  readonly connected = true;
  private readonly disk: DiskSessionStore<number>;
  private aliveTimer: NodeJS.Timeout | null = null;

  /** `nodeNumber` must differ from every earlier start's (message ids are stored across starts). */
  constructor(nodeName: string, disk: DiskSessionStore<number>, nodeNumber: number) {
    this.nodeId = nodeName;
    this.disk = disk;
    this.nodeNumber = nodeNumber;
  }

  async start(load: (routes: Map<string, string[]>, retained: Uint8Array[]) => void | Promise<void>): Promise<void> {
    await load(new Map(), this.disk.loadRetained());
    this.disk.stampAlive();
    this.aliveTimer = setInterval(() => this.disk.stampAlive(), LocalBus.ALIVE_MS);
    this.aliveTimer.unref();
  }

  storeRetained(entries: readonly [string, Uint8Array | null][]): void {
    for (const [topic, record] of entries) this.disk.storeRetained(topic, record);
  }

  flushed(): Promise<void> {
    return this.disk.flushed();
  }

  claimOwner(): Promise<string | null> {
    return Promise.resolve(null);
  }

  clusterBarrier(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.aliveTimer !== null) clearInterval(this.aliveTimer);
    this.aliveTimer = null;
    this.disk.stampAlive();
  }

  // Nothing to tell: there is no other node.
  sendBatch(): void {}
  addRoutes(): void {}
  removeRoutes(): void {}
  replaceRoutes(): void {}
  sessionChanged(): void {}
  requestRelease(): void {}
  sendReleased(): void {}
  setWill(): void {}
}
