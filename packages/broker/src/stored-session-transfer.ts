/**
 * A session read from the store, as the gateway hands it to the worker that adopts it: one
 * buffer holding a small msgpack header and the messages exactly as the store keeps them
 * (message-codec.ts), so the gateway decodes nothing and the worker reads each message once.
 * A client resuming a long queue on another node waits for this before its CONNACK.
 *
 *   u32 LE   header length
 *   header   msgpack [client id, expiry (-1 = never), [[filter, qos]...], [incoming QoS 2 id...]]
 *   per delivery, in order:
 *            f64 LE message id, u8 QoS | released << 2, u16 LE packet id (0: not sent),
 *            u32 LE body length, then the stored message (message-codec.ts)
 */
import { decode, encode } from '@msgpack/msgpack';
import {
  decodeStoredMessage,
  type EncodedSession,
  Message,
  Session,
  type SessionLimits,
  takeCarriedProperties,
} from '@tern/session';

/** Subscriptions with their options packed (subscription-options.ts). */
type Header = [string, number, [string, number][], number[]];

/** Bytes before each delivery's body. */
const ENTRY = 8 + 1 + 2 + 4;

export function encodeStoredSession(stored: EncodedSession<number>): Uint8Array {
  const ds = stored.deliveries;
  const header: Header = [
    stored.clientId,
    Number.isFinite(stored.expiryInterval) ? stored.expiryInterval : -1,
    stored.subscriptions,
    stored.incomingQos2,
  ];
  const head = encode(header);
  let size = 4 + head.length;
  for (const d of ds) size += ENTRY + d.body.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(head.length, 0);
  out.set(head, 4);
  let p = 4 + head.length;
  for (const d of ds) {
    out.writeDoubleLE(d.id, p);
    out[p + 8] = d.qos | (d.released ? 4 : 0);
    out.writeUInt16LE(d.packetId, p + 9);
    out.writeUInt32LE(d.body.byteLength, p + 11);
    out.set(d.body, p + ENTRY);
    p += ENTRY + d.body.byteLength;
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
  const [clientId, expiry, subscriptions, incoming] = decode(b.subarray(4, 4 + headLength)) as Header;
  const session = new Session(clientId, expiry < 0 ? Number.POSITIVE_INFINITY : expiry, limits);
  for (const [filter, qos] of subscriptions) session.setSubscription(filter, qos);
  const strings = new StringReuse();
  let p = 4 + headLength;
  let lastId = 0;
  while (p < b.length) {
    const id = b.readDoubleLE(p);
    const flags = b[p + 8] as number;
    const packetId = b.readUInt16LE(p + 9);
    const length = b.readUInt32LE(p + 11);
    const body = b.subarray(p + ENTRY, p + ENTRY + length);
    p += ENTRY + length;
    const stored = decodeStoredMessage(id, body, strings.read);
    const message = new Message(stored.topic, stored.payload as Buffer, stored.qos, stored.retain, stored.origin);
    message.id = id;
    message.time = stored.time;
    takeCarriedProperties(message, stored.properties);
    const qos = (flags & 3) as 1 | 2;
    if (packetId !== 0 && !session.inflight.has(packetId)) {
      const state = (flags & 4) !== 0 ? 'pubrel' : 'publish';
      session.putInflight({ id: packetId, message, qos, retain: false, state, share: null });
      lastId = packetId;
    } else {
      session.queue.push({ message, qos, retain: false }, limits.overflowPolicy);
    }
  }
  for (const id of incoming) session.addIncomingQos2(id);
  session.nextId = lastId === 0xffff ? 1 : lastId + 1;
  return session;
}

/**
 * A long queue repeats a few topics and publishers: a string read from the same bytes as the
 * last one of its slot is that string again, not a new copy.
 */
class StringReuse {
  private readonly last: { bytes: Buffer; text: string }[] = [
    { bytes: Buffer.alloc(0), text: '' },
    { bytes: Buffer.alloc(0), text: '' },
  ];
  readonly read = (b: Buffer, start: number, end: number, slot: 0 | 1): string => {
    const last = this.last[slot] as { bytes: Buffer; text: string };
    const bytes = b.subarray(start, end);
    if (bytes.equals(last.bytes)) return last.text;
    last.bytes = bytes;
    last.text = bytes.toString('utf8');
    return last.text;
  };
}
