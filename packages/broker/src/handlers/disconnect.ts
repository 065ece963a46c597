import type { Client } from '../client.js';

/**
 * DISCONNECT: a clean end. The will is discarded without being published [MQTT-3.14.4-3],
 * and the server closes the connection [MQTT-3.14.4-1].
 */
export function handleDisconnect(client: Client): void {
  if (client.session !== null) client.session.will = null;
  client.closeReason ??= 'client-disconnect';
  client.conn.end();
}
