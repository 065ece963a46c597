/**
 * Moving a persistent session between members of a node (routing workers), so a client that
 * reconnects on another worker finds its subscriptions, queue and inflight window [MQTT-3.1.4-2]
 * with nothing lost, duplicated or reordered. The steps, each on FIFO channels:
 *
 *   1. The new member B claims the client id; the supervisor asks the holder A to let go.
 *   2. A closes the live connection (takeover: its will fires), hands over a snapshot of the
 *      session and keeps a stub: the subscriptions stay, and what matches them is kept.
 *   3. B adopts the session (its routes are announced); what reaches B directly for it is
 *      held, since until every member knows B's routes a message may reach only A.
 *   4. Once every member knows B's routes (a barrier), B asks A to drop the stub. A forwards
 *      what the stub kept, with the session as target, removes it, and says so on the same
 *      channel: B delivers the forwarded messages and remembers their ids.
 *   5. B then delivers the held messages the stub did not bring (a message that reached both
 *      is delivered once), in order, and tells the supervisor the move is over (the next
 *      claim for the id may start).
 */
import type { Forwarded } from '@tern/cluster';
import type { Message, Session } from '@tern/session';
import type { Broker } from './broker.js';
import type { Client } from './client.js';
import { deliverNow } from './delivery.js';
import { deliveryExtras, extrasRetain, extrasShare } from './forwarded-record.js';
import { decodeSessionTransfer, encodeSessionTransfer } from './session-transfer.js';

/**
 * Step 2, on the holder: lets go of `clientId` for member `to`. Returns the session's
 * snapshot when it must move (a persistent session and no clean start), else null.
 */
export function releaseSession(broker: Broker, clientId: string, clean: boolean, to: number): Uint8Array | null {
  const live = broker.clients.get(clientId);
  if (live !== undefined) {
    broker.stats.takeovers++;
    live.log.info({ to }, 'connection taken over by a new CONNECT with the same client id on another worker');
    // Closing runs clientClosed at once: the will fires and a transient session ends.
    live.close('takeover');
  }
  // A will waiting out its delay: its client is back (dropped), or a clean start ends the
  // session (published now) [MQTT-3.1.3-9].
  broker.wills.settle(clientId, clean);
  const session = broker.sessions.get(clientId);
  if (session === undefined || session.movedTo >= 0) return null;
  // Its expiry is the new member's business now (a stub must not end the moved session).
  broker.expiring.delete(session);
  if (clean || session.isTransient) {
    // cleanSession=1 discards any previous session [MQTT-3.1.2-6].
    broker.endSession(session);
    return null;
  }
  const bytes = encodeSessionTransfer(session);
  session.queue.clear();
  session.clearInflight();
  session.clearIncomingQos2();
  session.movedTo = to;
  session.stubbed = [];
  return bytes;
}

/**
 * Step 3, on the new member: adopts a session that arrives from member `from`, then (step 4)
 * asks for the stub to be dropped once every member routes to this one.
 */
export function adoptMovedSession(broker: Broker, bytes: Uint8Array, from: number): Session | null {
  return adoptArriving(broker, decodeSessionTransfer(bytes, broker.sessionLimits), from);
}

/**
 * Adopts `session` arriving from member `from` (another worker, or the gateway for one read
 * from the store): what reaches it directly is held until `from` has sent what it kept.
 */
export function adoptArriving(broker: Broker, session: Session, from: number): Session | null {
  const link = broker.link;
  if (link === null) return null;
  const stale = broker.sessions.get(session.clientId);
  if (stale !== undefined) broker.endSession(stale);
  session.handover = { from, seen: new Set(), held: [] };
  broker.adoptSession(session);
  void link.barrier().then(() => link.dropStub(from, session.clientId));
  return session;
}

/** Step 4 on the new member: a message the stub kept for `record.target`. */
export function deliverFromStub(broker: Broker, record: Forwarded, message: Message): void {
  const target = record.target;
  const cut = target.indexOf(STUB_EXTRAS);
  const clientId = cut < 0 ? target : target.slice(0, cut);
  const session = broker.sessions.get(clientId);
  if (session === undefined) return;
  session.handover?.seen.add(message.id);
  // The delivery as the stub kept it: its RETAIN (MQTT 5 retain as published) and the shared
  // subscription group it came through.
  const retain = cut >= 0 && extrasRetain(target, cut + 1);
  const share = cut >= 0 ? extrasShare(target, cut + 1) : null;
  deliverNow(broker, session, message, record.targetQos, retain, share);
}

/**
 * A stub's forwarded delivery names its session in the record's target; what else the delivery
 * carries (RETAIN, a shared subscription group: forwarded-record.ts deliveryExtras) follows the
 * client id after U+0000, which no client id contains [MQTT-1.5.4-2].
 */
const STUB_EXTRAS = '\u0000';

function stubTarget(clientId: string, retain: boolean, share: string | null | undefined): string {
  if (!retain && (share === null || share === undefined)) return clientId;
  return clientId + STUB_EXTRAS + deliveryExtras(retain, share);
}

/** Step 4, on the old member: the stub forwards what it kept and goes; the answer follows. */
export function dropStub(broker: Broker, clientId: string, to: number): void {
  const link = broker.link;
  if (link === null) return;
  const session = broker.sessions.get(clientId);
  if (session !== undefined && session.movedTo === to) {
    for (const kept of session.stubbed ?? []) {
      link.forwardToSession(to, stubTarget(clientId, kept.retain, kept.share), kept.message, kept.qos);
    }
    session.stubbed = null;
    broker.endSession(session);
  }
  link.stubDropped(to, clientId);
}

/** Step 5, on the new member: the move is over. */
export function stubDropped(broker: Broker, clientId: string): void {
  const session = broker.sessions.get(clientId);
  const handover = session?.handover;
  if (session === undefined || handover === undefined || handover === null) return;
  session.handover = null;
  for (const held of handover.held) {
    if (!handover.seen.has(held.message.id)) {
      deliverNow(broker, session, held.message, held.qos, held.retain, held.share ?? null);
    }
  }
  broker.link?.settled(clientId);
}

/** The client whose CONNECT waited for the claim, on the broker that serves it now. */
export function currentBroker(client: Client): Broker {
  let broker = client.broker;
  while (broker.replacedBy !== null) broker = broker.replacedBy;
  return broker;
}
