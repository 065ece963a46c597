/**
 * A point-in-time copy of what must outlive a restart of a single node: persistent sessions
 * (subscriptions, queue, inflight window, incoming QoS 2 ids, next packet id) and retained
 * messages, encoded with msgpack. A message shared by several queues and the retained index
 * is stored once and referred to by index, as it is held in memory.
 */
import { decode, encode } from '@msgpack/msgpack';
import type { QoS } from '@tern/protocol';
import { carriedProperties, takeCarriedProperties } from './carried-properties.js';
import { Message } from './message.js';
import { type InflightEntry, Session, type SessionLimits } from './session.js';

/** Bumped when the layout changes; an unknown version is refused, never guessed at. */
const SNAPSHOT_VERSION = 1;

/** A snapshot that cannot be read: start-up stops rather than silently losing sessions. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  readonly code = 'TERN_SNAPSHOT_INVALID';
}

export interface SnapshotContents {
  sessions: Session[];
  retained: Message[];
}

/** Time and carried MQTT 5 properties (carried-properties.ts) were added later: optional. */
type MessageRow = [
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  origin: string,
  time?: number,
  properties?: Uint8Array | null,
];
/** The shared subscription group came later: optional. */
type QueuedRow = [message: number, qos: 1 | 2, retain: boolean, share?: string];
type InflightRow = [
  id: number,
  message: number,
  qos: 1 | 2,
  retain: boolean,
  state: InflightEntry['state'],
  share?: string,
];
interface SessionRow {
  id: string;
  /** Seconds; null for "never expires" (3.1.1 cleanSession=0). */
  expiry: number | null;
  /** Options packed (subscription-options.ts): a 3.1.1 subscription's is its QoS. */
  subs: [filter: string, options: number][];
  queue: QueuedRow[];
  inflight: InflightRow[];
  qos2In: number[];
  nextId: number;
  /** When the offline session expires (ms since the epoch); absent or null: never. */
  expiresAt?: number | null;
}
interface SnapshotRow {
  v: number;
  savedAt: number;
  messages: MessageRow[];
  retained: number[];
  sessions: SessionRow[];
}

/** Encodes the sessions that outlive their connection and the retained messages. */
export function encodeSnapshot(contents: SnapshotContents, savedAt = Date.now()): Uint8Array {
  const messages: MessageRow[] = [];
  const indexes = new Map<Message, number>();
  const ref = (message: Message): number => {
    let index = indexes.get(message);
    if (index === undefined) {
      index = messages.length;
      indexes.set(message, index);
      const row: MessageRow = [message.topic, message.payload, message.qos, message.retain, message.origin];
      const carried = carriedProperties(message);
      if (carried !== null || message.time !== 0) row.push(message.time, carried);
      messages.push(row);
    }
    return index;
  };
  const sessions: SessionRow[] = [];
  for (const session of contents.sessions) {
    if (session.isTransient) continue;
    const queue: QueuedRow[] = [];
    for (const item of session.queue) {
      const row: QueuedRow = [ref(item.message), item.qos, item.retain];
      if (typeof item.share === 'string') row.push(item.share);
      queue.push(row);
    }
    const inflight: InflightRow[] = [];
    for (const entry of session.inflight.values()) {
      const row: InflightRow = [entry.id, ref(entry.message), entry.qos, entry.retain, entry.state];
      if (entry.share !== null) row.push(entry.share);
      inflight.push(row);
    }
    sessions.push({
      id: session.clientId,
      expiry: Number.isFinite(session.expiryInterval) ? session.expiryInterval : null,
      subs: [...session.subscriptions],
      queue,
      inflight,
      qos2In: [...session.incomingQos2],
      nextId: session.nextId,
      expiresAt: Number.isFinite(session.expiresAt) ? session.expiresAt : null,
    });
  }
  const retained = contents.retained.map(ref);
  const row: SnapshotRow = { v: SNAPSHOT_VERSION, savedAt, messages, retained, sessions };
  return encode(row);
}

/** Decodes a snapshot into offline sessions (owner null) using `limits`, and retained messages. */
export function decodeSnapshot(bytes: Uint8Array, limits: SessionLimits): SnapshotContents & { savedAt: number } {
  let row: SnapshotRow;
  try {
    row = decode(bytes) as SnapshotRow;
  } catch (err) {
    throw new SnapshotError(`not a Tern snapshot (${(err as Error).message})`);
  }
  if (typeof row !== 'object' || row === null || row.v !== SNAPSHOT_VERSION) {
    throw new SnapshotError(`unsupported snapshot version ${JSON.stringify((row as { v?: unknown })?.v)}`);
  }
  try {
    const messages = row.messages.map(([topic, payload, qos, retain, origin, time, properties]) => {
      // The decoded payload is a view of the whole file's buffer: copy it so each message
      // owns exactly its bytes.
      const m = new Message(topic, Buffer.from(payload), qos, retain, origin);
      if (time !== undefined) m.time = time;
      takeCarriedProperties(m, properties);
      return m;
    });
    const message = (index: number): Message => {
      const found = messages[index];
      if (found === undefined) throw new SnapshotError(`message index ${index} out of range`);
      return found;
    };
    const sessions = row.sessions.map((s) => {
      const session = new Session(s.id, s.expiry === null ? Number.POSITIVE_INFINITY : s.expiry, limits);
      for (const [filter, options] of s.subs) session.setSubscription(filter, options);
      if (typeof s.expiresAt === 'number') session.expiresAt = s.expiresAt;
      for (const [index, qos, retain, share] of s.queue) {
        // Restored in order; the limit applies to new messages, never to what was accepted.
        session.queue.restore(
          share === undefined
            ? { message: message(index), qos, retain }
            : { message: message(index), qos, retain, share },
        );
      }
      for (const [id, index, qos, retain, state, share] of s.inflight) {
        session.putInflight({ id, message: message(index), qos, retain, state, share: share ?? null });
      }
      for (const id of s.qos2In) session.addIncomingQos2(id);
      session.nextId = s.nextId;
      return session;
    });
    return { sessions, retained: row.retained.map(message), savedAt: row.savedAt };
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`malformed snapshot (${(err as Error).message})`);
  }
}
