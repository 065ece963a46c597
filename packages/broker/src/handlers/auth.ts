/**
 * AUTH (MQTT 5 only: the decoder refuses it from 3.1/3.1.1 clients), and the packets of a
 * client whose CONNECT started an enhanced authentication. The exchanges themselves are in
 * v5/enhanced-auth.ts.
 */
import type { AuthPacket, Packet } from '@tern/protocol';
import type { Client } from '../client.js';
import { connectExchangeRunning, duringConnectExchange, reauthenticate } from '../v5/enhanced-auth.js';

/** AUTH from a connected client: a re-authentication, or a protocol error [MQTT-4.12.0-7]. */
export function handleAuth(client: Client, packet: AuthPacket): void {
  reauthenticate(client, packet);
}

/**
 * Takes `packet` when the client's CONNECT exchange is running (only AUTH and DISCONNECT may
 * come before its CONNACK [MQTT-3.1.2-30]); false otherwise, and the packet goes the usual way.
 */
export function takenByConnectExchange(client: Client, packet: Packet): boolean {
  if (!connectExchangeRunning(client)) return false;
  duringConnectExchange(client, packet);
  return true;
}
