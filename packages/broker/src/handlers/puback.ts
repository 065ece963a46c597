import type { PubackPacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { drain } from '../delivery.js';

/** PUBACK ends a QoS 1 delivery; the window has room for the next queued message. */
export function handlePuback(client: Client, packet: PubackPacket): void {
  const session = client.session;
  if (session === null) return;
  const entry = session.inflight.get(packet.messageId);
  if (!session.complete(packet.messageId, 1)) return;
  // The store forgets the delivery too: it is not owed on any node any more.
  if (entry !== undefined && !session.isTransient) client.broker.journal?.completed(client.clientId, entry.message.id);
  drain(client.broker, session);
}
