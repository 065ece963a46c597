/**
 * MQTT 5 PUBLISH with properties partly per recipient. A broker keeps a message's own
 * properties (payload format, content type, response topic, correlation data, user
 * properties) as wire bytes, encoded once; what differs per recipient (the message expiry
 * interval left, a topic alias, the subscription identifiers) is written in front of them.
 */
import { type Properties, propertiesBodyLength, writeProperties } from './properties.js';
import { ByteWriter, vbiLength } from './writer.js';

/** What is written in front of the message's own property bytes, per recipient. */
export interface PublishExtras {
  /** Seconds left of the message expiry interval [MQTT-3.3.2-6]; 0: none. */
  messageExpiryInterval: number;
  /** 0: none. */
  topicAlias: number;
  /** The matching subscriptions' identifiers [MQTT-3.3.4-3]; null or empty: none. */
  subscriptionIdentifiers: readonly number[] | null;
}

export interface PublishV5 {
  /** '' when a topic alias stands for it. */
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Written as given (0 to be patched later); ignored at QoS 0. */
  messageId: number;
  payload: Buffer;
  /** The message's own properties, already encoded (no length prefix); null: none. */
  ownProperties: Buffer | null;
  extras: PublishExtras | null;
}

/** Encodes a property list body (without its length prefix). */
export function encodePropertiesBody(props: Properties): Buffer {
  const n = propertiesBodyLength(props);
  const out = Buffer.allocUnsafe(vbiLength(n) + n);
  writeProperties(new ByteWriter(out, 0), props, n);
  // writeProperties writes the length prefix first: drop it.
  return out.subarray(vbiLength(n));
}

function extrasLength(e: PublishExtras | null): number {
  if (e === null) return 0;
  let n = 0;
  if (e.messageExpiryInterval > 0) n += 5;
  if (e.topicAlias > 0) n += 3;
  if (e.subscriptionIdentifiers !== null) for (const id of e.subscriptionIdentifiers) n += 1 + vbiLength(id);
  return n;
}

/**
 * The encoded PUBLISH, whole or (with `headOnly`) up to its payload, which the caller then
 * sends by reference. `idOffset` locates the packet id (-1 at QoS 0).
 */
export function encodePublishV5(p: PublishV5, headOnly: boolean): { bytes: Buffer; idOffset: number } {
  const topicBytes = Buffer.byteLength(p.topic);
  const propsLength = extrasLength(p.extras) + (p.ownProperties === null ? 0 : p.ownProperties.length);
  const rl = 2 + topicBytes + (p.qos > 0 ? 2 : 0) + vbiLength(propsLength) + propsLength + p.payload.length;
  const size = 1 + vbiLength(rl) + rl - (headOnly ? p.payload.length : 0);
  const w = new ByteWriter(Buffer.allocUnsafe(size), 0);
  w.u8(0x30 | (p.qos << 1) | (p.retain ? 1 : 0));
  w.vbi(rl);
  w.utf8(p.topic);
  let idOffset = -1;
  if (p.qos > 0) {
    idOffset = w.pos;
    w.u16(p.messageId);
  }
  w.vbi(propsLength);
  const e = p.extras;
  if (e !== null) {
    if (e.messageExpiryInterval > 0) {
      w.u8(0x02);
      w.u32(e.messageExpiryInterval);
    }
    if (e.topicAlias > 0) {
      w.u8(0x23);
      w.u16(e.topicAlias);
    }
    if (e.subscriptionIdentifiers !== null) {
      for (const id of e.subscriptionIdentifiers) {
        w.u8(0x0b);
        w.vbi(id);
      }
    }
  }
  if (p.ownProperties !== null) w.bytes(p.ownProperties);
  if (!headOnly) w.bytes(p.payload);
  return { bytes: w.buf, idOffset };
}
