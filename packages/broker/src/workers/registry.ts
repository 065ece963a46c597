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
  /** Tell `worker` its claim `req` is granted. */
  grant(worker: number, req: number, session: Uint8Array | null, from: number): void;
}

interface Pending {
  worker: number;
  req: number;
  clean: boolean;
}

export class ClientRegistry {
  private readonly owners = new Map<string, number>();
  /** Per client id: claims waiting behind the one in progress. */
  private readonly queues = new Map<string, Pending[]>();
  /** Client ids whose session is moving, until the new owner says it has settled. */
  private readonly moving = new Set<string>();
  private readonly transport: RegistryTransport;

  constructor(transport: RegistryTransport) {
    this.transport = transport;
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

  claim(worker: number, req: number, clientId: string, clean: boolean): void {
    let queue = this.queues.get(clientId);
    if (queue !== undefined) {
      queue.push({ worker, req, clean });
      return;
    }
    queue = [];
    this.queues.set(clientId, queue);
    void this.run(clientId, { worker, req, clean });
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
    const owner = this.owners.get(clientId);
    if (owner === undefined || owner === claim.worker) {
      this.owners.set(clientId, claim.worker);
      this.transport.grant(claim.worker, claim.req, null, -1);
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
