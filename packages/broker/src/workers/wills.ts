/**
 * The wills of a node's live connections as the cluster keeps them (msgpack), so that when the
 * node dies the survivor that reaps it can publish them, once [DESIGN.md guarantee 5].
 */
import { decode, encode } from '@msgpack/msgpack';
import type { QoS, Will } from '@tern/protocol';

export interface OrphanWill {
  clientId: string;
  will: Will;
}

export function encodeWill(clientId: string, will: Will): Uint8Array {
  return encode([clientId, will.topic, will.payload, will.qos, will.retain]);
}

/** Null for bytes that are not a will (logged by the caller and skipped). */
export function decodeWill(bytes: Uint8Array): OrphanWill | null {
  try {
    const [clientId, topic, payload, qos, retain] = decode(bytes) as [string, string, Uint8Array, QoS, boolean];
    if (typeof clientId !== 'string' || typeof topic !== 'string' || !(payload instanceof Uint8Array)) return null;
    if (qos !== 0 && qos !== 1 && qos !== 2) return null;
    return { clientId, will: { topic, payload: Buffer.from(payload), qos, retain: retain === true } };
  } catch {
    return null;
  }
}
