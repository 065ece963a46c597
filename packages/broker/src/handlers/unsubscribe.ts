import { ReasonCode, type UnsubscribePacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { encodeFor } from '../v5/fit.js';

/** UNSUBSCRIBE: remove each filter, then UNSUBACK even if none existed [MQTT-3.10.4-5]. */
export function handleUnsubscribe(client: Client, packet: UnsubscribePacket): void {
  const session = client.session;
  if (session === null) return;
  const journal = client.broker.journal;
  const stored = journal !== null && !session.isTransient;
  // MQTT 5 answers each filter: success, or "no subscription existed" (MQTT 5 section 3.11.3).
  const codes: number[] = [];
  for (const filter of packet.unsubscriptions) {
    codes.push(session.subscriptions.has(filter) ? ReasonCode.SUCCESS : ReasonCode.NO_SUBSCRIPTION_EXISTED);
    client.broker.unsubscribe(session, filter);
    if (stored) journal.unsubscribed(session.clientId, filter);
  }
  const granted = client.v5 === null ? undefined : codes;
  const bytes = encodeFor(client, { cmd: 'unsuback', messageId: packet.messageId, granted });
  if (bytes === null) return;
  // A stored session's UNSUBACK waits for the store: no crash after it brings the filter back.
  client.queueAck(() => client.conn.write(bytes), stored ? (client.broker.link?.confirmJournal() ?? null) : null);
}
