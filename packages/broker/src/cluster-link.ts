/**
 * What a broker needs from the other members of its node (routing workers) and, later, of
 * its cluster: forwarding, route announcements, barriers and client-id ownership. A broker
 * without a link (the in-process broker of tests and embedders) is the only member there is.
 */
import type { QoS } from '@tern/protocol';
import type { Message } from '@tern/session';

/** The answer to a claim for a client id: this member owns it now. */
export interface Claim {
  /** The session's state when it was held by another member (a snapshot), or null. */
  session: Uint8Array | null;
  /** The member that held it (its stub forwards until the move completes), or -1. */
  from: number;
}

export interface ClusterLink {
  /** This member's index: the high part of every message id it assigns. */
  readonly member: number;
  /** Whether any other member exists (a barrier is then more than a resolved promise). */
  readonly hasPeers: boolean;
  /**
   * A message that entered the broker at this member: send it once to every other member
   * with a matching subscription, and to all of them when it is retained (each keeps a copy).
   */
  forward(message: Message): void;
  /** Delivers to one session that moved to `member` (this member holds its stub). */
  forwardToSession(member: number, clientId: string, message: Message, qos: QoS): void;
  /** This member's first subscription to `filter` (announce it) / its last one went. */
  filterAdded(filter: string): void;
  filterRemoved(filter: string): void;
  /** Resolves once every other member has handled everything this member sent it so far. */
  barrier(): Promise<void>;
  /** Makes this member the owner of `clientId` node-wide; a holder elsewhere lets go first. */
  claim(clientId: string, clean: boolean): Promise<Claim>;
  /** This member no longer has a session for `clientId` (a transient session ended). */
  sessionGone(clientId: string): void;
  /** A moved session's stub may go: every member now routes to this one for it. */
  dropStub(from: number, clientId: string): void;
  /** Tells member `to` the stub of `clientId` is gone (after what it forwarded). */
  stubDropped(to: number, clientId: string): void;
  /** The move of `clientId` to this member is complete. */
  settled(clientId: string): void;
}
