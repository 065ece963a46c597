/**
 * The wills of a node's live connections as the cluster keeps them (msgpack), so that when the
 * node dies the survivor that reaps it can publish them, once [DESIGN.md guarantee 5].
 */
import { decode, encode } from '@msgpack/msgpack';
import type { Properties, QoS, Will } from '@tern/protocol';

export interface OrphanWill {
  clientId: string;
  will: Will;
}

export function encodeWill(clientId: string, will: Will): Uint8Array {
  // MQTT 5 will properties (delay, expiry, content type...) ride along when there are any.
  const row: unknown[] = [clientId, will.topic, will.payload, will.qos, will.retain];
  if (will.properties !== undefined) row.push(will.properties);
  return encode(row);
}

/** Null for bytes that are not a will (logged by the caller and skipped). */
export function decodeWill(bytes: Uint8Array): OrphanWill | null {
  try {
    const [clientId, topic, payload, qos, retain, properties] = decode(bytes) as [
      string,
      string,
      Uint8Array,
      QoS,
      boolean,
      Properties | undefined,
    ];
    if (typeof clientId !== 'string' || typeof topic !== 'string' || !(payload instanceof Uint8Array)) return null;
    if (qos !== 0 && qos !== 1 && qos !== 2) return null;
    const will: Will = { topic, payload: Buffer.from(payload), qos, retain: retain === true };
    if (typeof properties === 'object' && properties !== null) {
      // msgpack gives binary back as Uint8Array; the encoder wants Buffers.
      if (properties.correlationData !== undefined)
        properties.correlationData = Buffer.from(properties.correlationData);
      will.properties = properties;
    }
    return { clientId, will };
  } catch {
    return null;
  }
}
