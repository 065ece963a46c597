import type { PubrecPacket } from '@tern/protocol';
import { writePubrel } from '../acks.js';
import type { Client } from '../client.js';

/**
 * PUBREC for an outbound QoS 2 message: answer PUBREL; from now on only PUBREL is resent for
 * this id, never the PUBLISH [MQTT-4.3.3-1]. An unknown id still gets PUBREL so the client's
 * flow can end.
 */
export function handlePubrec(client: Client, packet: PubrecPacket): void {
  const session = client.session;
  if (session !== null) {
    const entry = session.inflight.get(packet.messageId);
    if (session.received(packet.messageId) && entry !== undefined && !session.isTransient) {
      client.broker.journal?.released(client.clientId, entry.message.id);
    }
  }
  writePubrel(client.conn, packet.messageId);
}
