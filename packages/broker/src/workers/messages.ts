/**
 * What the supervisor (main thread) and the routing workers say to each other, and what
 * workers say to their peers. Plain structured-cloneable objects: the local transport posts
 * them as they are; a transport between processes encodes them (msgpack). Publish batches
 * travel between peers as raw bytes (a transferred Uint8Array), never as objects.
 */
import type { MessagePort } from 'node:worker_threads';
import type { TlsMaterial } from '@tern/listener';
import type { Will } from '@tern/protocol';
import type { AccessReloadResult } from '../access/access.js';
import type { BrokerConfig, LogLevel } from '../config.js';
import type { BoundListener, ListenerFds } from '../listeners.js';
import type { StatsSnapshot } from '../metrics/snapshot.js';

/**
 * The transfer list that moves `bytes` to another thread instead of copying it: its buffer
 * when the view covers all of it (a session on the move, built for this), else nothing (a
 * view of a shared pool or a larger buffer is copied, as postMessage does by default).
 * The sender must not touch `bytes` afterwards.
 */
export function transferOf(bytes: Uint8Array | null): ArrayBuffer[] {
  if (bytes === null) return [];
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer)) return [];
  return bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? [buffer] : [];
}

/** Supervisor -> worker. */
export type ToWorker =
  | { t: 'peers'; ports: Record<number, MessagePort> }
  /** Open the enabled listeners: bind them (worker 0, fds null) or accept on worker 0's descriptors. */
  | { t: 'listen'; fds: ListenerFds | null; tls: TlsMaterial | null }
  | { t: 'restore'; snapshot: Uint8Array }
  | { t: 'claimed'; req: number; session: Uint8Array | null; from: number; refused: string | null }
  | { t: 'release'; req: number; clientId: string; clean: boolean; to: number }
  | { t: 'stats'; req: number }
  | { t: 'snapshot'; req: number; retained: boolean }
  /**
   * A reload: apply what can change live, read the access files again, answer 'reloaded'.
   * `tls`: a new certificate for new TLS and WSS connections (read by the supervisor), or null.
   */
  | { t: 'config'; req: number; config: BrokerConfig; tls: TlsMaterial | null }
  /** Another worker refused a login from `address`: slow that address down here too. */
  | { t: 'auth-failure'; address: string }
  | { t: 'log-level'; level: LogLevel }
  | { t: 'sys'; values: [topic: string, value: string][] }
  | { t: 'stop'; graceMs: number }
  | { t: 'crash' }
  | { t: 'session'; req: number; clientId: string };

/** Worker -> supervisor. */
export type FromWorker =
  | { t: 'listening'; listeners: BoundListener[] }
  | { t: 'listen-failed'; code: string; message: string }
  | { t: 'restored' }
  /** `expiry`: the session expiry interval granted (seconds; Infinity: never). */
  | { t: 'claim'; req: number; clientId: string; clean: boolean; expiry: number }
  | { t: 'released'; req: number; session: Uint8Array | null }
  | { t: 'gone'; clientId: string }
  | { t: 'settled'; clientId: string }
  | { t: 'stats'; req: number; snapshot: StatsSnapshot }
  | { t: 'snapshot'; req: number; bytes: Uint8Array }
  | { t: 'stopped'; snapshot: Uint8Array }
  | { t: 'crashed'; error: string; restarts: number }
  | { t: 'log'; line: string }
  | { t: 'reloaded'; req: number; access: AccessReloadResult }
  | { t: 'auth-failure'; address: string }
  | { t: 'session'; req: number; info: SessionInfo | null };

/** What an operator (or a test) may ask about one session. */
export interface SessionInfo {
  clientId: string;
  worker: number;
  online: boolean;
  persistent: boolean;
  subscriptions: [filter: string, qos: number][];
  queued: number;
  inflight: number;
}

/**
 * Changes to persistent sessions, from a worker to its node's gateway (which writes the
 * session store), flat in groups of four: kind, client id, then two operands
 *
 *   'sub' filter qos | 'unsub' filter - | 'sent' messageId packetId | 'rel' messageId -
 *   'done' messageId - | 'in2' packetId pending | 'will' Will-or-null -
 *
 * One flat array of primitives clones far faster than thousands of small arrays (a queue that
 * drains journals two changes per message).
 */
export type JournalOps = (string | number | boolean | Will | null)[];

/** The kinds of JournalOps. */
export type JournalKind = 'sub' | 'unsub' | 'sent' | 'rel' | 'done' | 'in2' | 'will' | 'off' | 'end';

/** Worker -> worker, over the pair's own MessagePort (FIFO: order is the design's backbone). */
export type ToPeer =
  | { t: 'journal'; ops: JournalOps }
  | { t: 'route+'; filters: string[] }
  | { t: 'route-'; filters: string[] }
  | { t: 'routes'; filters: string[] }
  /** `wide`: the gateway answers once every node of the cluster has what came before. */
  | { t: 'ping'; n: number; wide?: boolean }
  | { t: 'pong'; n: number }
  | { t: 'drop-stub'; clientId: string }
  | { t: 'stub-dropped'; clientId: string };
