/**
 * What a broker needs from the other members of its node (routing workers) and, later, of
 * its cluster: forwarding, route announcements, barriers and client-id ownership. A broker
 * without a link (the in-process broker of tests and embedders) is the only member there is.
 */
import type { QoS, Will } from '@tern/protocol';
import type { ShareGroup } from '@tern/router';
import type { Message } from '@tern/session';

/** The answer to a claim for a client id: this member owns it now. */
export interface Claim {
  /** The session's state when it was held by another member (a snapshot), or null. */
  session: Uint8Array | null;
  /**
   * The member that held it (its stub forwards until the move completes), or -1: then a
   * session is one read from the cluster's store.
   */
  from: number;
  /** Why the id could not be taken (the cluster's store is unreachable); null when granted. */
  refused: string | null;
}

/**
 * What a member tells the node's session store about its persistent sessions (cluster mode):
 * every change to what a session would need if it resumed on another node. Issued without
 * waiting, in order; the store is written by the node's gateway.
 */
export interface SessionJournal {
  /** `options`: the subscription's options packed (subscription-options.ts); a 3.1.1 one's is its QoS. */
  subscribed(clientId: string, filter: string, options: number): void;
  unsubscribed(clientId: string, filter: string): void;
  /** Message `id` went out to `clientId` under `packetId`. */
  sent(clientId: string, id: number, packetId: number): void;
  /** PUBREC for message `id`. */
  released(clientId: string, id: number): void;
  /** PUBACK / PUBCOMP for message `id`. */
  completed(clientId: string, id: number): void;
  incomingQos2(clientId: string, packetId: number, pending: boolean): void;
  /** The will of `clientId`'s live connection (null: it has none any more). */
  will(clientId: string, will: Will | null): void;
  /**
   * `clientId`'s connection ended; its session expires at `expiresAt` (ms since the epoch;
   * Infinity: never) unless a connection opens it again first, on any node.
   */
  offline(clientId: string, expiresAt: number): void;
  /** `clientId`'s session ended (its expiry ran out, or it ended with its connection). */
  ended(clientId: string): void;
}

export interface ClusterLink {
  /** This member's index among the members of its node. */
  readonly member: number;
  /**
   * The high part of every message id this member assigns: unique in the cluster (the node's
   * number from Redis, then the member), so a session store can tell messages apart.
   */
  readonly idMember: number;
  /**
   * A fresh message id: idMember * 2^32 + a counter that the link keeps (a broker restarted
   * after a contained crash goes on from where the last one stopped: ids are never reused).
   */
  nextMessageId(): number;
  /** Whether any other member exists (a barrier is then more than a resolved promise). */
  readonly hasPeers: boolean;
  /** The member index of the node's gateway (it keeps the session store), or -1. */
  readonly gatewayMember: number;
  /** The node's session store, when persistent sessions are kept cluster-wide; else null. */
  readonly journal: SessionJournal | null;
  /**
   * After forward(): resolves once the message is durable for every persistent session it
   * must reach (the node's gateway stored it), or null when nothing needs confirming. A QoS
   * 1/2 acknowledgement waits for it [DESIGN.md guarantee 1].
   */
  confirmForwarded(): Promise<void> | null;
  /** Resolves once the session changes journaled so far are stored (null: no store). */
  confirmJournal(): Promise<void> | null;
  /**
   * A message that entered the broker at this member: send it once to every other member
   * with a matching subscription, and to all of them when it is retained (each keeps a copy).
   */
  forward(message: Message): void;
  /** Whether another member has a shared subscription group (then matchShared is asked). */
  readonly hasSharedRoutes: boolean;
  /** The shared subscription groups of the other members that match `topic`. */
  matchShared(topic: string, visit: (group: ShareGroup<number>) => void): void;
  /** The other members that have shared subscription group `key`, or undefined for none. */
  sharedGroup(key: string): ShareGroup<number> | undefined;
  /** Sends `message` to `member` for one of its members of the shared subscription `group`. */
  forwardToGroup(member: number, group: string, message: Message): void;
  /** Delivers to one session that moved to `member` (this member holds its stub). */
  forwardToSession(member: number, clientId: string, message: Message, qos: QoS): void;
  /** This member's first subscription to `filter` (announce it) / its last one went. */
  filterAdded(filter: string): void;
  filterRemoved(filter: string): void;
  /** Resolves once every other member has handled everything this member sent it so far. */
  barrier(): Promise<void>;
  /**
   * Makes this member the owner of `clientId` node-wide; a holder elsewhere lets go first.
   * `expiryInterval`: the session expiry the connection is granted (seconds; Infinity: never),
   * which the cluster's store keeps so the session expires on time should the node die.
   */
  claim(clientId: string, clean: boolean, expiryInterval: number): Promise<Claim>;
  /** This member no longer has a session for `clientId` (a transient session ended). */
  sessionGone(clientId: string): void;
  /** A moved session's stub may go: every member now routes to this one for it. */
  dropStub(from: number, clientId: string): void;
  /** Tells member `to` the stub of `clientId` is gone (after what it forwarded). */
  stubDropped(to: number, clientId: string): void;
  /** The move of `clientId` to this member is complete. */
  settled(clientId: string): void;
}
