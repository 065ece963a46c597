/**
 * A subscription's options packed into one non-negative integer, as sessions hold them and
 * stores keep them (a number needs no schema change anywhere):
 *
 *   bits 0-1  granted QoS
 *   bit 2     no local [MQTT-3.8.3-3]
 *   bit 3     retain as published [MQTT-3.3.1-12]
 *   bits 4-5  retain handling (0, 1, 2) [MQTT-3.3.1-9..11]
 *   the rest  subscription identifier (1..268,435,455; 0: none) times 64
 *
 * A 3.1.1 subscription is just its QoS, so what older stores hold reads the same.
 */
import type { QoS } from '@tern/protocol';

export const NO_LOCAL = 4;
export const RETAIN_AS_PUBLISHED = 8;
const SUBSCRIPTION_ID_UNIT = 64;

export interface UnpackedOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId: number;
}

export function packOptions(o: UnpackedOptions): number {
  const low =
    o.qos | (o.noLocal ? NO_LOCAL : 0) | (o.retainAsPublished ? RETAIN_AS_PUBLISHED : 0) | (o.retainHandling << 4);
  // Added, not ORed: the identifier part can pass 32 bits, where bitwise operators wrap.
  return low + o.subscriptionId * SUBSCRIPTION_ID_UNIT;
}

/** The low bits (QoS, flags, retain handling) as a small integer: safe for bitwise tests. */
function low(options: number): number {
  return options % SUBSCRIPTION_ID_UNIT;
}

export function optionsQos(options: number): QoS {
  return (low(options) & 3) as QoS;
}

export function hasFlag(options: number, flag: typeof NO_LOCAL | typeof RETAIN_AS_PUBLISHED): boolean {
  return (low(options) & flag) !== 0;
}

export function retainHandling(options: number): 0 | 1 | 2 {
  return ((low(options) >> 4) & 3) as 0 | 1 | 2;
}

/** The subscription identifier, 0 for none (division: the value may exceed 32 bits). */
export function subscriptionId(options: number): number {
  return Math.floor(options / SUBSCRIPTION_ID_UNIT);
}
