import type { PubcompPacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { drain } from '../delivery.js';

/** PUBCOMP ends an outbound QoS 2 delivery. */
export function handlePubcomp(client: Client, packet: PubcompPacket): void {
  const session = client.session;
  if (session === null) return;
  if (session.complete(packet.messageId, 2)) drain(client.broker, session);
}
