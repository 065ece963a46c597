import { encode, type UnsubscribePacket } from '@tern/protocol';
import type { Client } from '../client.js';

/** UNSUBSCRIBE: remove each filter, then UNSUBACK even if none existed [MQTT-3.10.4-5]. */
export function handleUnsubscribe(client: Client, packet: UnsubscribePacket): void {
  const session = client.session;
  if (session === null) return;
  const journal = client.broker.journal;
  const stored = journal !== null && !session.isTransient;
  for (const filter of packet.unsubscriptions) {
    client.broker.unsubscribe(session, filter);
    if (stored) journal.unsubscribed(session.clientId, filter);
  }
  const bytes = encode({ cmd: 'unsuback', messageId: packet.messageId }, client.version);
  // A stored session's UNSUBACK waits for the store: no crash after it brings the filter back.
  client.queueAck(() => client.conn.write(bytes), stored ? (client.broker.link?.confirmJournal() ?? null) : null);
}
