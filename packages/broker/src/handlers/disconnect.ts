import { type DisconnectPacket, ReasonCode } from '@tern/protocol';
import type { Client } from '../client.js';
import { NEVER_EXPIRES } from '../v5/connack.js';

/**
 * DISCONNECT: a clean end. The will is discarded without being published [MQTT-3.14.4-3],
 * and the server closes the connection [MQTT-3.14.4-1]. MQTT 5 adds two choices: reason 0x04
 * asks for the will all the same, and a session expiry interval replaces the CONNECT's.
 */
export function handleDisconnect(client: Client, packet: DisconnectPacket): void {
  const session = client.session;
  const v5 = client.v5;
  if (v5 !== null) {
    const expiry = packet.properties?.sessionExpiryInterval;
    if (expiry !== undefined && session !== null) {
      // A session that was to end with its connection cannot be kept at the last moment
      // [MQTT-3.14.2-2].
      if (v5.connectExpiry === 0 && expiry !== 0) {
        client.close(
          'protocol-error',
          ReasonCode.PROTOCOL_ERROR,
          'session expiry interval raised from 0 at DISCONNECT',
        );
        return;
      }
      const cap = client.broker.config.maxSessionExpiry;
      session.expiryInterval =
        cap !== 0 && expiry > cap ? cap : expiry === NEVER_EXPIRES ? Number.POSITIVE_INFINITY : expiry;
    }
    // Only a normal disconnection (0x00) discards the will [MQTT-3.14.4-3]: 0x04 asks for it,
    // and a client that ends with an error code has not ended cleanly either.
    if ((packet.reasonCode ?? 0) !== ReasonCode.NORMAL_DISCONNECTION) {
      if (packet.reasonCode !== ReasonCode.DISCONNECT_WITH_WILL_MESSAGE && client.debugEnabled) {
        client.log.debug({ reasonCode: packet.reasonCode }, 'client disconnected with an error reason code');
      }
      client.closeReason ??= 'disconnect-with-will';
      client.conn.end();
      return;
    }
  }
  if (session !== null) session.will = null;
  client.closeReason ??= 'client-disconnect';
  client.conn.end();
}
