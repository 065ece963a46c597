import type { PubcompPacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { drain } from '../delivery.js';

/** PUBCOMP ends an outbound QoS 2 delivery. */
export function handlePubcomp(client: Client, packet: PubcompPacket): void {
  const session = client.session;
  if (session === null) return;
  const entry = session.inflight.get(packet.messageId);
  if (!session.complete(packet.messageId, 2)) return;
  // The store forgets the delivery too: it is not owed on any node any more.
  if (entry !== undefined && !session.isTransient) client.broker.journal?.completed(client.clientId, entry.message.id);
  drain(client.broker, session);
}
