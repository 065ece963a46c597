/**
 * The bytes a persistent session travels in when it moves between routing workers of one node
 * (session-moves.ts). The queue and inflight window can hold many thousands of messages, so
 * they go as publish-batch records (the raw layout members already forward publishes in: no
 * msgpack per message, payloads read back as views); only the small rest of the session is
 * msgpack. The result owns its ArrayBuffer, so it crosses threads in a transfer list.
 *
 * Layout:
 *
 *   u32 LE  length of the head
 *   head    msgpack: TransferHead
 *   batch   publish-batch bytes: the inflight entries in window order, then the queue in order
 *
 * Per record, `targetQos` is the delivery's QoS and `target` its RETAIN and shared
 * subscription group (forwarded-record.ts deliveryExtras). The record's own qos and retain are the
 * message's, as published.
 *
 * The node's persistent snapshot (@tern/session snapshot.ts) stays the format for what is kept
 * on disk; this one is never stored, so it has no version of its own beyond the batch's.
 */
import { decode, encode } from '@msgpack/msgpack';
import { type Forwarded, PublishBatchReader, PublishBatchWriter } from '@tern/cluster';
import type { QoS } from '@tern/protocol';
import {
  type DeferredDeliveries,
  type InflightEntry,
  type Message,
  type QueuedDelivery,
  Session,
  type SessionLimits,
} from '@tern/session';
import {
  deliveryExtras,
  extrasRetain,
  extrasShare,
  fillRecord,
  messageFromRecord,
  scratchRecord,
} from './forwarded-record.js';

interface TransferHead {
  id: string;
  /** Seconds; null for "never expires". */
  expiry: number | null;
  /** When the offline session expires (ms since the epoch); null: never. */
  expiresAt: number | null;
  subs: [filter: string, options: number][];
  /** Packet id and state of each inflight entry, in the order of the first records. */
  inflight: [id: number, state: InflightEntry['state']][];
  qos2In: number[];
  nextId: number;
}

/** Transfer bytes that do not read back (a bug: they never leave the process). */
export class SessionTransferError extends Error {
  override readonly name = 'SessionTransferError';
  readonly code = 'TERN_SESSION_TRANSFER_INVALID';
}

/** The session as transfer bytes (an ArrayBuffer of their own). */
export function encodeSessionTransfer(session: Session): Uint8Array<ArrayBuffer> {
  const inflight: TransferHead['inflight'] = [];
  for (const entry of session.inflight.values()) inflight.push([entry.id, entry.state]);
  const head = encode({
    id: session.clientId,
    expiry: Number.isFinite(session.expiryInterval) ? session.expiryInterval : null,
    expiresAt: Number.isFinite(session.expiresAt) ? session.expiresAt : null,
    subs: [...session.subscriptions],
    inflight,
    qos2In: [...session.incomingQos2],
    nextId: session.nextId,
  } satisfies TransferHead);

  const writer = new PublishBatchWriter(Math.max(4096, 128 * (session.inflight.size + session.queue.length)));
  const record = scratchRecord();
  const append = (message: Message, qos: QoS, retain: boolean, share: string | null | undefined): void => {
    writer.append(fillRecord(record, message, deliveryExtras(retain, share), qos));
  };
  for (const entry of session.inflight.values()) append(entry.message, entry.qos, entry.retain, entry.share);
  for (const item of session.queue) append(item.message, item.qos, item.retain, item.share);
  const batch = writer.take();

  const out = new Uint8Array(new ArrayBuffer(4 + head.length + batch.length));
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(batch, 4 + head.length);
  return out;
}

/** The session the bytes carry, offline (owner null), under `limits`. */
export function decodeSessionTransfer(bytes: Uint8Array, limits: SessionLimits): Session {
  if (bytes.length < 4) throw new SessionTransferError(`transfer of ${bytes.length} bytes has no head`);
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + headLength > bytes.length) throw new SessionTransferError(`head of ${headLength} bytes runs past the end`);
  let head: TransferHead;
  try {
    head = decode(bytes.subarray(4, 4 + headLength)) as TransferHead;
  } catch (err) {
    throw new SessionTransferError(`unreadable head (${(err as Error).message})`);
  }
  const session = new Session(head.id, head.expiry === null ? Number.POSITIVE_INFINITY : head.expiry, limits);
  for (const [filter, options] of head.subs) session.setSubscription(filter, options);
  if (head.expiresAt !== null) session.expiresAt = head.expiresAt;
  // Checked whole first (a BatchError), so a fault is found here, not in the middle of a drain.
  const records = new PublishBatchReader(bytes.subarray(4 + headLength)).check();
  const inflight = head.inflight;
  if (records.remaining < inflight.length) {
    throw new SessionTransferError(`${inflight.length} inflight entries named, ${records.remaining} records carried`);
  }
  for (const [id, state] of inflight) {
    const record = records.next();
    const qos = record.targetQos as 1 | 2;
    const retain = extrasRetain(record.target, 0);
    const share = extrasShare(record.target, 0);
    session.putInflight({ id, message: messageFromRecord(record), qos, retain, state, share });
  }
  // The queue is decoded as the window takes it: a resume on this worker answers CONNACK
  // without first making an object per queued message (10,000 of them cost 6 to 36 ms).
  session.queue.defer(new QueuedRecords(records));
  for (const id of head.qos2In) session.addIncomingQos2(id);
  session.nextId = head.nextId;
  return session;
}

/** A moved queue's records, made into deliveries one at a time, in order. */
class QueuedRecords implements DeferredDeliveries {
  constructor(private readonly records: PublishBatchReader) {}

  get remaining(): number {
    return this.records.remaining;
  }

  next(): QueuedDelivery {
    const record: Forwarded = this.records.next();
    const message = messageFromRecord(record);
    const qos = record.targetQos as 1 | 2;
    const retain = extrasRetain(record.target, 0);
    const share = extrasShare(record.target, 0);
    // Restored as they were queued; the limit applies to new messages, never to these.
    return share === null ? { message, qos, retain } : { message, qos, retain, share };
  }
}
