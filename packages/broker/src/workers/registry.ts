/**
 * Node-wide client-id ownership, kept by the supervisor: which routing worker holds each
 * client id's session (live or offline). Claims for one id are handled one at a time, and a
 * claim that moves a session waits until the move has settled before the next one for that
 * id starts, so an id never has two owners and a session is never in two places at once
 * [MQTT-3.1.4-2].
 */

/** How the registry reaches the workers. */
export interface RegistryTransport {
  /** Ask `worker` to let go of `clientId` for `to`; resolves with the session it held. */
  release(worker: number, clientId: string, clean: boolean, to: number): Promise<Uint8Array | null>;
  /** Tell `worker` its claim `req` is granted (or, with `refused`, why it cannot be). */
  grant(worker: number, req: number, session: Uint8Array | null, from: number, refused?: string): void;
}

/**
 * The cluster's side of a claim (with Redis): the client id is taken cluster-wide before the
 * node grants it, and a session stored by another node comes back to be adopted.
 */
export interface ClusterClaims {
  /**
   * `local`: a worker of this node holds the session (it is not read back from the store).
   * `expiry`: the session expiry interval the connection is granted (seconds; Infinity: never).
   * `workers`: the workers whose store writes for the id must be applied before it is taken
   * (the claimer and the holder: the end of the id's last connection is among them).
   */
  claim(
    clientId: string,
    clean: boolean,
    local: boolean,
    expiry: number,
    workers: readonly number[],
  ): Promise<Uint8Array | null>;
}

interface Pending {
  worker: number;
  req: number;
  clean: boolean;
  /** The session expiry interval granted (seconds; Infinity: never). */
  expiry: number;
  /** Set for a release asked by another node (not a claim): resolves once the id is let go. */
  evicted?: () => void;
}

export class ClientRegistry {
  private readonly owners = new Map<string, number>();
  /** Per client id: claims waiting behind the one in progress. */
  private readonly queues = new Map<string, Pending[]>();
  /** Client ids whose session is moving, until the new owner says it has settled. */
  private readonly moving = new Set<string>();
  private readonly transport: RegistryTransport;
  cluster: ClusterClaims | null = null;

  constructor(transport: RegistryTransport) {
    this.transport = transport;
  }

  /**
   * Another node takes `clientId`: the worker holding it here closes its connection and drops
   * the session (the store has it). Queued behind any claim for the id in progress here.
   */
  evict(clientId: string): Promise<void> {
    return new Promise((resolve) => {
      const pending: Pending = { worker: -1, req: 0, clean: true, expiry: 0, evicted: resolve };
      const queue = this.queues.get(clientId);
      if (queue !== undefined) {
        queue.push(pending);
        return;
      }
      this.queues.set(clientId, []);
      void this.run(clientId, pending);
    });
  }

  get size(): number {
    return this.owners.size;
  }

  ownerOf(clientId: string): number | undefined {
    return this.owners.get(clientId);
  }

  /** Records owners known before any claim (sessions restored from a snapshot). */
  assign(clientId: string, worker: number): void {
    this.owners.set(clientId, worker);
  }

  claim(worker: number, req: number, clientId: string, clean: boolean, expiry: number): void {
    let queue = this.queues.get(clientId);
    if (queue !== undefined) {
      queue.push({ worker, req, clean, expiry });
      return;
    }
    queue = [];
    this.queues.set(clientId, queue);
    void this.run(clientId, { worker, req, clean, expiry });
  }

  /** `worker` has no session for `clientId` any more (ignored unless it is the owner). */
  gone(worker: number, clientId: string): void {
    if (this.owners.get(clientId) === worker && !this.queues.has(clientId)) this.owners.delete(clientId);
  }

  /** The move of `clientId` to its new owner is complete: the next claim for it may start. */
  settled(clientId: string): void {
    if (!this.moving.delete(clientId)) return;
    this.next(clientId);
  }

  /** Grants one claim: at once when nobody else holds the id, after a release otherwise. */
  private async run(clientId: string, claim: Pending): Promise<void> {
    if (claim.evicted !== undefined) {
      await this.evictNow(clientId);
      claim.evicted();
      this.next(clientId);
      return;
    }
    let stored: Uint8Array | null = null;
    if (this.cluster !== null) {
      const holder = this.owners.get(clientId);
      const workers = holder === undefined || holder === claim.worker ? [claim.worker] : [holder, claim.worker];
      try {
        stored = await this.cluster.claim(clientId, claim.clean, holder !== undefined, claim.expiry, workers);
      } catch (err) {
        // Without Redis the id cannot be taken cluster-wide: refuse rather than risk two owners.
        this.transport.grant(claim.worker, claim.req, null, -1, (err as Error).message);
        this.next(clientId);
        return;
      }
    }
    const owner = this.owners.get(clientId);
    if (owner === undefined || owner === claim.worker) {
      this.owners.set(clientId, claim.worker);
      this.transport.grant(claim.worker, claim.req, stored, -1);
      this.next(clientId);
      return;
    }
    let session: Uint8Array | null = null;
    try {
      session = await this.transport.release(owner, clientId, claim.clean, claim.worker);
    } catch {
      // The holder could not answer (it is restarting): its session stays there; the new
      // connection starts without it rather than waiting for ever.
      session = null;
    }
    this.owners.set(clientId, claim.worker);
    this.transport.grant(claim.worker, claim.req, session, session === null ? -1 : owner);
    if (session === null) {
      this.next(clientId);
    } else {
      // The new owner installs its routes, then has the old one drop its stub: only then is
      // the move over.
      this.moving.add(clientId);
    }
  }

  private async evictNow(clientId: string): Promise<void> {
    const owner = this.owners.get(clientId);
    if (owner === undefined) return;
    try {
      await this.transport.release(owner, clientId, true, -1);
    } catch {
      // The holder is restarting: its sessions come back from its own snapshot, not this one.
    }
    this.owners.delete(clientId);
  }

  private next(clientId: string): void {
    const queue = this.queues.get(clientId);
    const following = queue?.shift();
    if (following === undefined) {
      this.queues.delete(clientId);
      return;
    }
    void this.run(clientId, following);
  }
}
