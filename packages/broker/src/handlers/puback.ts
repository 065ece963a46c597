import type { PubackPacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { drain } from '../delivery.js';

/** PUBACK ends a QoS 1 delivery; the window has room for the next queued message. */
export function handlePuback(client: Client, packet: PubackPacket): void {
  const session = client.session;
  if (session === null) return;
  if (session.complete(packet.messageId, 1)) drain(client.broker, session);
}
