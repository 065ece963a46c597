import { type PubrecPacket, ReasonCode } from '@tern/protocol';
import { writeAckWithReason, writePubrel } from '../acks.js';
import type { Client } from '../client.js';
import { drain } from '../delivery.js';

/**
 * PUBREC for an outbound QoS 2 message: answer PUBREL; from now on only PUBREL is resent for
 * this id, never the PUBLISH [MQTT-4.3.3-1]. An unknown id still gets PUBREL so the client's
 * flow can end (MQTT 5: with 0x92, packet identifier not found). An MQTT 5 PUBREC with an
 * error reason code ends the flow there: no PUBREL [MQTT-4.3.3-4], and the window slot is free.
 */
export function handlePubrec(client: Client, packet: PubrecPacket): void {
  const session = client.session;
  const id = packet.messageId;
  const entry = session?.inflight.get(id);
  if (session !== null && client.v5 !== null && (packet.reasonCode ?? 0) >= 0x80) {
    if (entry !== undefined && entry.qos === 2 && entry.state === 'publish') {
      session.deleteInflight(id);
      if (!session.isTransient) client.broker.journal?.completed(client.clientId, entry.message.id);
      drain(client.broker, session);
    }
    return;
  }
  if (session?.received(id) && entry !== undefined && !session.isTransient) {
    client.broker.journal?.released(client.clientId, entry.message.id);
  }
  if (client.v5 !== null && (entry === undefined || entry.qos !== 2)) {
    writeAckWithReason(client.conn, 'pubrel', id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND);
    return;
  }
  writePubrel(client.conn, id);
}
