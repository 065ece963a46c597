/** A stored message's bytes (msgpack), the same in every store that keeps messages as bytes. */
import { decode, encode } from '@msgpack/msgpack';
import type { QoS } from '@tern/protocol';
import type { StoredMessage } from './session-store.js';

export function encodeStoredMessage(m: StoredMessage): Buffer {
  const bytes = encode([m.topic, m.payload, m.qos, m.retain, m.origin, m.time]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeStoredMessage(id: number, body: Uint8Array): StoredMessage {
  const [topic, payload, qos, retain, origin, time] = decode(body) as [
    string,
    Uint8Array,
    QoS,
    boolean,
    string,
    number,
  ];
  return { id, topic, payload, qos, retain, origin, time };
}
