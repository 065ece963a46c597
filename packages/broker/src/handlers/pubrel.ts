import { type PubrelPacket, ReasonCode } from '@tern/protocol';
import { writeAckWithReason, writePubcomp } from '../acks.js';
import type { Client } from '../client.js';

/**
 * PUBREL for an incoming QoS 2 message: the id is released (a later PUBLISH with it is a new
 * message) and PUBCOMP answers [MQTT-4.3.3-2]. An unknown id is answered too: the PUBREL may
 * be a resend after our PUBCOMP was lost.
 */
export function handlePubrel(client: Client, packet: PubrelPacket): void {
  const session = client.session;
  const id = packet.messageId;
  client.v5?.qos2Here?.delete(id);
  let stored: Promise<void> | null = null;
  const journal = client.broker.journal;
  const known = session?.incomingQos2.has(id) === true;
  if (!known && client.v5 !== null) {
    // MQTT 5 says so: packet identifier not found (the flow still ends).
    client.queueAck(() => writeAckWithReason(client.conn, 'pubcomp', id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND), null);
    return;
  }
  if (session?.releaseIncomingQos2(id) && !session.isTransient && journal !== null) {
    // The release is stored before PUBCOMP: after a crash, a new PUBLISH under this id must
    // not be taken for a resend of the old one (and dropped).
    journal.incomingQos2(client.clientId, id, false);
    stored = client.broker.link?.confirmJournal() ?? null;
  }
  if (client.gatedAcks === null && stored === null) writePubcomp(client.conn, id);
  else client.queueAck(() => writePubcomp(client.conn, id), stored);
}
