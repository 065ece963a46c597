/**
 * What nodes say to each other over Redis pub/sub, encoded with msgpack as a three-element
 * array [kind, sender node id, body]. Publish batches travel as one binary body (the raw batch
 * layout of publish-batch.ts), so a batch is msgpack-framed once, not once per record.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

export const BusKind = {
  /** body: a publish batch for the receiving node's subscribers. */
  Batch: 1,
  /** body: a batch of retained messages; every node keeps every retained message. */
  Retained: 2,
  /** body: filters the sender's node now routes to itself. */
  RoutesAdded: 3,
  /** body: filters the sender's node no longer wants. */
  RoutesRemoved: 4,
  /** body: the sender's complete set of filters (after a restart or a reconnect). */
  RoutesReplaced: 5,
  /** body: the id of a node that is gone (the sender reaped it, or left cleanly when it is itself). */
  NodeGone: 6,
  /** body: [client id, filter, QoS]: a persistent session subscribed (any node may queue for it). */
  SessionSubscribed: 7,
  /** body: [client id, filter]. */
  SessionUnsubscribed: 8,
  /** body: client id: the session is gone (a clean start), with all its subscriptions. */
  SessionDeleted: 9,
  /** body: client id: the receiving node must let go of it (a CONNECT for it on the sender). */
  Release: 10,
  /** body: client id: the sender has let go of it and its session changes are stored. */
  Released: 11,
  /** body: barrier number: answer once everything the sender said before it is applied. */
  Barrier: 12,
  /** body: barrier number: the answer (to the sender's own channel). */
  BarrierAck: 13,
} as const;
type Kinds = typeof BusKind;

export type BusMessage =
  | { kind: Kinds['Batch'] | Kinds['Retained']; node: string; body: Uint8Array }
  | { kind: Kinds['RoutesAdded'] | Kinds['RoutesRemoved'] | Kinds['RoutesReplaced']; node: string; body: string[] }
  | {
      kind:
        | Kinds['NodeGone']
        | Kinds['SessionDeleted']
        | Kinds['Release']
        | Kinds['Released']
        | Kinds['Barrier']
        | Kinds['BarrierAck'];
      node: string;
      body: string;
    }
  | { kind: Kinds['SessionSubscribed']; node: string; body: [clientId: string, filter: string, qos: number] }
  | { kind: Kinds['SessionUnsubscribed']; node: string; body: [clientId: string, filter: string] };

/** A bus message that cannot be read: it is dropped with a log line, never half-applied. */
export class BusMessageError extends Error {
  override readonly name = 'BusMessageError';
  readonly code = 'TERN_CLUSTER_MESSAGE_INVALID';
}

const encoder = new Encoder();
const decoder = new Decoder();

export function encodeBusMessage(message: BusMessage): Uint8Array {
  return encoder.encode([message.kind, message.node, message.body]);
}

export function decodeBusMessage(bytes: Uint8Array): BusMessage {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (err) {
    throw new BusMessageError(`bus message is not msgpack: ${(err as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 3) throw new BusMessageError('bus message is not [kind, node, body]');
  const [kind, node, body] = value as [unknown, unknown, unknown];
  if (typeof node !== 'string' || node === '') throw new BusMessageError('bus message has no sender node');
  switch (kind) {
    case BusKind.Batch:
    case BusKind.Retained:
      if (!(body instanceof Uint8Array)) throw new BusMessageError(`bus message ${kind} carries no bytes`);
      return { kind, node, body };
    case BusKind.RoutesAdded:
    case BusKind.RoutesRemoved:
    case BusKind.RoutesReplaced:
      if (!Array.isArray(body) || !body.every((f) => typeof f === 'string')) {
        throw new BusMessageError(`bus message ${kind} carries no filter list`);
      }
      return { kind, node, body: body as string[] };
    case BusKind.NodeGone:
    case BusKind.SessionDeleted:
    case BusKind.Release:
    case BusKind.Released:
    case BusKind.Barrier:
    case BusKind.BarrierAck:
      if (typeof body !== 'string' || body === '') throw new BusMessageError(`bus message ${kind} names nothing`);
      return { kind, node, body };
    case BusKind.SessionSubscribed:
      if (!isStrings(body, 2, 3) || typeof (body as unknown[])[2] !== 'number') {
        throw new BusMessageError('session-subscribed message is not [client id, filter, qos]');
      }
      return { kind, node, body: body as [string, string, number] };
    case BusKind.SessionUnsubscribed:
      if (!isStrings(body, 2, 2)) throw new BusMessageError('session-unsubscribed message is not [client id, filter]');
      return { kind, node, body: body as [string, string] };
    default:
      throw new BusMessageError(`unknown bus message kind ${String(kind)}`);
  }
}

/** An array of `length` items whose first `strings` are strings. */
function isStrings(value: unknown, strings: number, length: number): boolean {
  if (!Array.isArray(value) || value.length !== length) return false;
  for (let i = 0; i < strings; i++) if (typeof value[i] !== 'string') return false;
  return true;
}
