/**
 * A stored session made live again (on the node a client resumes on): sent-and-unacknowledged
 * deliveries go back into the inflight window under their original packet ids (resent with
 * DUP=1 on reconnect [MQTT-4.4.0-1]), the rest into the queue, in order.
 */
import { Message } from '../message.js';
import { Session, type SessionLimits } from '../session.js';
import type { StoredMessage, StoredSession } from './session-store.js';

export function sessionFromStored(stored: StoredSession, limits: SessionLimits): Session {
  const session = new Session(stored.clientId, stored.expiryInterval, limits);
  for (const [filter, qos] of stored.subscriptions) session.subscriptions.set(filter, { qos });
  let lastId = 0;
  for (const d of stored.deliveries) {
    const message = messageFromStored(d.message);
    if (d.packetId !== 0 && !session.inflight.has(d.packetId)) {
      session.inflight.set(d.packetId, {
        id: d.packetId,
        message,
        qos: d.qos,
        retain: false,
        state: d.released ? 'pubrel' : 'publish',
      });
      lastId = d.packetId;
    } else {
      session.queue.push({ message, qos: d.qos, retain: false }, limits.overflowPolicy);
    }
  }
  for (const id of stored.incomingQos2) session.incomingQos2.add(id);
  session.nextId = lastId === 0xffff ? 1 : lastId + 1;
  return session;
}

export function messageFromStored(m: StoredMessage): Message {
  const payload = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
  const message = new Message(m.topic, payload, m.qos, m.retain, m.origin);
  message.id = m.id;
  message.time = m.time;
  return message;
}
