/**
 * A session read from the store, as the gateway hands it to the worker that adopts it: one
 * buffer holding a small msgpack header and the messages exactly as the store keeps them
 * (message-codec.ts), so the gateway decodes nothing and the worker reads each message once.
 * A client resuming a long queue on another node waits for this before its CONNACK.
 *
 *   u32 LE   header length
 *   header   msgpack [client id, expiry (-1 = never), [[filter, qos]...], [message id...],
 *            [delivery QoS...], [packet id...], [released (0/1)...], [incoming QoS 2 id...]]
 *   bodies   per delivery, in order: u32 LE length, then the stored message
 */
import { decode, encode } from '@msgpack/msgpack';
import type { QoS } from '@tern/protocol';
import { decodeStoredMessage, type EncodedSession, Message, Session, type SessionLimits } from '@tern/session';

type Header = [string, number, [string, QoS][], number[], (1 | 2)[], number[], number[], number[]];

export function encodeStoredSession(stored: EncodedSession): Uint8Array {
  const ds = stored.deliveries;
  const header: Header = [
    stored.clientId,
    Number.isFinite(stored.expiryInterval) ? stored.expiryInterval : -1,
    stored.subscriptions,
    ds.map((d) => d.id),
    ds.map((d) => d.qos),
    ds.map((d) => d.packetId),
    ds.map((d) => (d.released ? 1 : 0)),
    stored.incomingQos2,
  ];
  const head = encode(header);
  let size = 4 + head.length;
  for (const d of ds) size += 4 + d.body.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(head.length, 0);
  out.set(head, 4);
  let p = 4 + head.length;
  for (const d of ds) {
    out.writeUInt32LE(d.body.byteLength, p);
    out.set(d.body, p + 4);
    p += 4 + d.body.byteLength;
  }
  return out;
}

/**
 * The session made live again: sent-and-unacknowledged deliveries back in the inflight window
 * under their packet ids (resent with DUP=1 [MQTT-4.4.0-1]), the rest queued, in order.
 */
export function decodeStoredSession(bytes: Uint8Array, limits: SessionLimits): Session {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = b.readUInt32LE(0);
  const [clientId, expiry, subscriptions, ids, qoses, packetIds, released, incoming] = decode(
    b.subarray(4, 4 + headLength),
  ) as Header;
  const session = new Session(clientId, expiry < 0 ? Number.POSITIVE_INFINITY : expiry, limits);
  for (const [filter, qos] of subscriptions) session.subscriptions.set(filter, { qos });
  let p = 4 + headLength;
  let lastId = 0;
  for (let i = 0; i < ids.length; i++) {
    const length = b.readUInt32LE(p);
    const stored = decodeStoredMessage(ids[i] as number, b.subarray(p + 4, p + 4 + length));
    p += 4 + length;
    const message = new Message(stored.topic, stored.payload as Buffer, stored.qos, stored.retain, stored.origin);
    message.id = stored.id;
    message.time = stored.time;
    const qos = qoses[i] as 1 | 2;
    const packetId = packetIds[i] ?? 0;
    if (packetId !== 0 && !session.inflight.has(packetId)) {
      const state = released[i] === 1 ? 'pubrel' : 'publish';
      session.inflight.set(packetId, { id: packetId, message, qos, retain: false, state });
      lastId = packetId;
    } else {
      session.queue.push({ message, qos, retain: false }, limits.overflowPolicy);
    }
  }
  for (const id of incoming) session.incomingQos2.add(id);
  session.nextId = lastId === 0xffff ? 1 : lastId + 1;
  return session;
}
