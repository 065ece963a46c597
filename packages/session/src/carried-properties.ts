/**
 * A message's MQTT 5 properties as they travel between members and into stores: the message
 * expiry interval first (property 0x02, the interval as published, counted from the message's
 * `time`), then the message's own property bytes. One byte string, so the forwarding batch and
 * the stored-message layout carry it without knowing what is inside.
 */
import type { Message } from './message.js';

const MESSAGE_EXPIRY = 0x02;

/** The bytes to carry for `message`, or null when it has no MQTT 5 properties. */
export function carriedProperties(message: Message): Buffer | null {
  const own = message.properties;
  if (message.expiryInterval === 0) return own;
  const out = Buffer.allocUnsafe(5 + (own === null ? 0 : own.length));
  out[0] = MESSAGE_EXPIRY;
  out.writeUInt32BE(message.expiryInterval, 1);
  if (own !== null) out.set(own, 5);
  return out;
}

/** Sets `message`'s properties from carried bytes (copied: the source may be a shared batch). */
export function takeCarriedProperties(message: Message, bytes: Uint8Array | null | undefined): void {
  if (bytes === null || bytes === undefined || bytes.length === 0) return;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  if (b[0] === MESSAGE_EXPIRY && b.length >= 5) {
    message.expiryInterval = b.readUInt32BE(1);
    start = 5;
  }
  if (start < b.length) message.properties = Buffer.from(b.subarray(start));
}
