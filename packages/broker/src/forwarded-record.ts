/**
 * A broker Message as a forwarded record (@tern/cluster's publish-batch layout) and back: the
 * form a message takes between routing workers, between nodes, and inside a moving session.
 */
import type { Forwarded } from '@tern/cluster';
import type { QoS } from '@tern/protocol';
import { carriedProperties, Message, takeCarriedProperties } from '@tern/session';

const EMPTY = new Uint8Array(0);

/** A record to reuse for every append: the batch writer copies what it needs. */
export function scratchRecord(): Forwarded {
  return {
    id: 0,
    time: 0,
    topic: '',
    payload: EMPTY,
    qos: 0,
    retain: false,
    origin: '',
    properties: null,
    target: '',
    targetQos: 0,
  };
}

/** Fills `r` from `message` for delivery to `target` at `targetQos` ('' and 0: route by topic). */
export function fillRecord(r: Forwarded, message: Message, target: string, targetQos: QoS): Forwarded {
  r.id = message.id;
  r.time = message.time;
  r.topic = message.topic;
  r.payload = message.payload;
  r.qos = message.qos;
  r.retain = message.retain;
  r.origin = message.origin;
  r.target = target;
  r.targetQos = targetQos;
  // MQTT 5 properties and expiry travel as one byte string (carried-properties.ts).
  r.properties = message.properties === null && message.expiryInterval === 0 ? null : carriedProperties(message);
  return r;
}

/** Lets go of what `r` refers to once the writer has copied it (a scratch record outlives it). */
export function clearRecord(r: Forwarded): void {
  r.payload = EMPTY;
  r.properties = null;
}

/** A forwarded record as the broker's Message (the payload stays a view of the batch). */
export function messageFromRecord(record: Forwarded): Message {
  const p = record.payload;
  const payload = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  const message = new Message(record.topic, payload, record.qos as QoS, record.retain, record.origin);
  message.id = record.id;
  message.time = record.time;
  takeCarriedProperties(message, record.properties);
  return message;
}
