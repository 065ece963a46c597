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

/**
 * What a delivery carries besides its message and QoS, written into a record's target when
 * a record stands for one session's delivery (a moving session's queue, a stub's forward):
 * one character, 'r' when RETAIN is set (MQTT 5 retain as published) or '-', then the shared
 * subscription group it came through, if any.
 */
export function deliveryExtras(retain: boolean, share: string | null | undefined): string {
  return (retain ? 'r' : '-') + (share ?? '');
}

/** RETAIN of the delivery extras written at `at` in `target` (deliveryExtras). */
export function extrasRetain(target: string, at: number): boolean {
  return target.charCodeAt(at) === RETAIN_MARK;
}

/** The shared subscription group of the delivery extras at `at` in `target`, or null. */
export function extrasShare(target: string, at: number): string | null {
  return at + 1 < target.length ? target.slice(at + 1) : null;
}

const RETAIN_MARK = 0x72; // 'r'

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
