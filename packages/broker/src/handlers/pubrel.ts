import type { PubrelPacket } from '@tern/protocol';
import { writePubcomp } from '../acks.js';
import type { Client } from '../client.js';

/**
 * PUBREL for an incoming QoS 2 message: the id is released (a later PUBLISH with it is a new
 * message) and PUBCOMP answers [MQTT-4.3.3-2]. An unknown id is answered too: the PUBREL may
 * be a resend after our PUBCOMP was lost.
 */
export function handlePubrel(client: Client, packet: PubrelPacket): void {
  const session = client.session;
  const id = packet.messageId;
  if (session?.incomingQos2.delete(id) && !session.isTransient) {
    client.broker.journal?.incomingQos2(client.clientId, id, false);
  }
  if (client.gatedAcks === null) writePubcomp(client.conn, id);
  else client.queueAck(() => writePubcomp(client.conn, id), null);
}
