/**
 * MQTT 5 properties [MQTT-2.2.2]: every property of table 2-4, which packets may carry it,
 * and its wire type. Decoding checks the packet may carry it, that only User Property and
 * (in PUBLISH) Subscription Identifier repeat, and that byte flags are 0 or 1.
 */
import { ProtocolError } from './errors.js';
import type { ByteReader } from './reader.js';
import { type ByteWriter, binaryLength, stringLength, vbiLength } from './writer.js';

export interface Properties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** Repeats in PUBLISH (one per matching subscription); exactly one in SUBSCRIBE. */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Buffer;
  requestProblemInformation?: boolean;
  willDelayInterval?: number;
  requestResponseInformation?: boolean;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQoS?: 0 | 1;
  retainAvailable?: boolean;
  /** In wire order; a key may repeat [MQTT-3.3.2-18]. */
  userProperties?: Array<[string, string]>;
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifiersAvailable?: boolean;
  sharedSubscriptionAvailable?: boolean;
}

/** Where a property may appear: a bit per packet type (1..15); bit 0 stands for will properties. */
export const WILL_PROPERTIES = 0;

type WireType = 'flag' | 'byte' | 'u16' | 'u32' | 'vbi' | 'utf8' | 'binary' | 'pair';

interface PropertySpec {
  id: number;
  name: keyof Properties;
  type: WireType;
  /** Bit mask over packet types (see WILL_PROPERTIES). */
  allowed: number;
}

const bit = (...types: number[]): number => types.reduce((m, t) => m | (1 << t), 0);
const [WILL, CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
];
const DISCONNECT = 14;
const AUTH = 15;
const ACKS = [PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK];

export const PROPERTY_SPECS: readonly PropertySpec[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: 'flag', allowed: bit(PUBLISH, WILL) },
  { id: 0x02, name: 'messageExpiryInterval', type: 'u32', allowed: bit(PUBLISH, WILL) },
  { id: 0x03, name: 'contentType', type: 'utf8', allowed: bit(PUBLISH, WILL) },
  { id: 0x08, name: 'responseTopic', type: 'utf8', allowed: bit(PUBLISH, WILL) },
  { id: 0x09, name: 'correlationData', type: 'binary', allowed: bit(PUBLISH, WILL) },
  { id: 0x0b, name: 'subscriptionIdentifiers', type: 'vbi', allowed: bit(PUBLISH, SUBSCRIBE) },
  { id: 0x11, name: 'sessionExpiryInterval', type: 'u32', allowed: bit(CONNECT, CONNACK, DISCONNECT) },
  { id: 0x12, name: 'assignedClientIdentifier', type: 'utf8', allowed: bit(CONNACK) },
  { id: 0x13, name: 'serverKeepAlive', type: 'u16', allowed: bit(CONNACK) },
  { id: 0x15, name: 'authenticationMethod', type: 'utf8', allowed: bit(CONNECT, CONNACK, AUTH) },
  { id: 0x16, name: 'authenticationData', type: 'binary', allowed: bit(CONNECT, CONNACK, AUTH) },
  { id: 0x17, name: 'requestProblemInformation', type: 'flag', allowed: bit(CONNECT) },
  { id: 0x18, name: 'willDelayInterval', type: 'u32', allowed: bit(WILL) },
  { id: 0x19, name: 'requestResponseInformation', type: 'flag', allowed: bit(CONNECT) },
  { id: 0x1a, name: 'responseInformation', type: 'utf8', allowed: bit(CONNACK) },
  { id: 0x1c, name: 'serverReference', type: 'utf8', allowed: bit(CONNACK, DISCONNECT) },
  { id: 0x1f, name: 'reasonString', type: 'utf8', allowed: bit(CONNACK, DISCONNECT, AUTH, ...ACKS) },
  { id: 0x21, name: 'receiveMaximum', type: 'u16', allowed: bit(CONNECT, CONNACK) },
  { id: 0x22, name: 'topicAliasMaximum', type: 'u16', allowed: bit(CONNECT, CONNACK) },
  { id: 0x23, name: 'topicAlias', type: 'u16', allowed: bit(PUBLISH) },
  { id: 0x24, name: 'maximumQoS', type: 'byte', allowed: bit(CONNACK) },
  { id: 0x25, name: 'retainAvailable', type: 'flag', allowed: bit(CONNACK) },
  {
    id: 0x26,
    name: 'userProperties',
    type: 'pair',
    allowed: bit(WILL, CONNECT, CONNACK, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT, AUTH, ...ACKS),
  },
  { id: 0x27, name: 'maximumPacketSize', type: 'u32', allowed: bit(CONNECT, CONNACK) },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: 'flag', allowed: bit(CONNACK) },
  { id: 0x29, name: 'subscriptionIdentifiersAvailable', type: 'flag', allowed: bit(CONNACK) },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: 'flag', allowed: bit(CONNACK) },
];

const SPEC_BY_ID: (PropertySpec | undefined)[] = [];
for (const spec of PROPERTY_SPECS) SPEC_BY_ID[spec.id] = spec;

/** Position in PROPERTY_SPECS by name: encoding walks the keys an object has, not the table. */
const INDEX_BY_NAME = new Map<string, number>(PROPERTY_SPECS.map((spec, i) => [spec.name, i]));
// presentMask() keeps one bit per table entry in a 32-bit integer.
if (PROPERTY_SPECS.length > 31) throw new Error('PROPERTY_SPECS outgrew presentMask()');

/**
 * Bit i set when PROPERTY_SPECS[i] is present (defined) in `props`. Walking the set bits from
 * the lowest gives the table's order (ascending id), so the bytes do not depend on the order
 * the object's keys were added in; a list usually holds 1 to 3 of the 27 properties.
 */
function presentMask(props: Properties): number {
  const p = props as Record<string, unknown>;
  let mask = 0;
  for (const key in p) {
    const i = INDEX_BY_NAME.get(key);
    if (i !== undefined && p[key] !== undefined) mask |= 1 << i;
  }
  return mask;
}

/** Index of the lowest set bit of a non-zero mask. */
function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

const ID_USER_PROPERTY = 0x26;
const ID_SUBSCRIPTION_IDENTIFIER = 0x0b;

/**
 * Seen-marks for the duplicate check: seen[id] === generation means "already read in this
 * property list". Bumping the generation clears every mark without touching the array.
 */
const seen = new Uint32Array(64);
let generation = 0;

function invalid(spec: PropertySpec, detail: string): never {
  throw new ProtocolError('TERN_PROTO_PROPERTY_VALUE', `${spec.name}: ${detail}`);
}

/**
 * Reads a property list (length prefix included) for a packet of `packetType`
 * (WILL_PROPERTIES for the will). Returns undefined when the list is empty.
 */
export function readProperties(r: ByteReader, packetType: number): Properties | undefined {
  const length = r.vbi();
  if (length === 0) return undefined;
  const end = r.pos + length;
  if (end > r.end) throw new ProtocolError('TERN_PROTO_TRUNCATED', 'property length exceeds the packet');
  const outerEnd = r.end;
  r.end = end;
  generation = (generation + 1) >>> 0 || 1;
  const props: Properties = {};
  const p = props as Record<string, unknown>;
  while (r.pos < end) {
    const id = r.vbi();
    const spec = SPEC_BY_ID[id];
    if (spec === undefined) throw new ProtocolError('TERN_PROTO_PROPERTY_UNKNOWN', `0x${id.toString(16)}`);
    if ((spec.allowed & (1 << packetType)) === 0) throw new ProtocolError('TERN_PROTO_PROPERTY_NOT_ALLOWED', spec.name);
    const repeatable = id === ID_USER_PROPERTY || (id === ID_SUBSCRIPTION_IDENTIFIER && packetType === 3);
    if (seen[id] === generation && !repeatable) throw new ProtocolError('TERN_PROTO_PROPERTY_DUPLICATE', spec.name);
    seen[id] = generation;
    switch (spec.type) {
      case 'flag': {
        const v = r.u8();
        if (v > 1) invalid(spec, `${v} is not 0 or 1`);
        p[spec.name] = v === 1;
        break;
      }
      case 'byte': {
        const v = r.u8();
        // Maximum QoS is the only plain byte property; it is 0 or 1 [MQTT-3.2.2-9].
        if (v > 1) invalid(spec, `${v} is not 0 or 1`);
        p[spec.name] = v;
        break;
      }
      case 'u16': {
        const v = r.u16();
        // Receive Maximum 0 [MQTT-3.1.2-21..] and Topic Alias 0 [MQTT-3.3.2-8] are protocol errors.
        if (v === 0 && (spec.name === 'receiveMaximum' || spec.name === 'topicAlias'))
          invalid(spec, '0 is not allowed');
        p[spec.name] = v;
        break;
      }
      case 'u32': {
        const v = r.u32();
        if (v === 0 && spec.name === 'maximumPacketSize') invalid(spec, '0 is not allowed');
        p[spec.name] = v;
        break;
      }
      case 'vbi': {
        const v = r.vbi();
        // Subscription Identifier 0 is a protocol error [MQTT-3.8.2.1.2].
        if (v === 0) invalid(spec, '0 is not allowed');
        const list = props.subscriptionIdentifiers;
        if (list === undefined) props.subscriptionIdentifiers = [v];
        else list.push(v);
        break;
      }
      case 'utf8':
        p[spec.name] = r.utf8();
        break;
      case 'binary':
        p[spec.name] = r.binary();
        break;
      case 'pair': {
        const key = r.utf8();
        const value = r.utf8();
        const list = props.userProperties;
        if (list === undefined) props.userProperties = [[key, value]];
        else list.push([key, value]);
        break;
      }
    }
  }
  r.end = outerEnd;
  return props;
}

/** Length of the property list body (without its own length prefix). */
export function propertiesBodyLength(props: Properties | undefined): number {
  if (props === undefined) return 0;
  const p = props as Record<string, unknown>;
  let n = 0;
  for (let mask = presentMask(props); mask !== 0; mask &= mask - 1) {
    const spec = PROPERTY_SPECS[lowestBit(mask)] as PropertySpec;
    const v = p[spec.name];
    switch (spec.type) {
      case 'flag':
      case 'byte':
        n += 2;
        break;
      case 'u16':
        n += 3;
        break;
      case 'u32':
        n += 5;
        break;
      case 'vbi':
        for (const id of v as number[]) n += 1 + vbiLength(id);
        break;
      case 'utf8':
        n += 1 + stringLength(v as string);
        break;
      case 'binary':
        n += 1 + binaryLength(v as Buffer);
        break;
      case 'pair':
        for (const [key, value] of v as Array<[string, string]>) n += 1 + stringLength(key) + stringLength(value);
        break;
    }
  }
  return n;
}

/** Writes a property list body whose length was computed by propertiesBodyLength. */
export function writeProperties(w: ByteWriter, props: Properties | undefined, bodyLength: number): void {
  w.vbi(bodyLength);
  if (props === undefined || bodyLength === 0) return;
  const p = props as Record<string, unknown>;
  for (let mask = presentMask(props); mask !== 0; mask &= mask - 1) {
    const spec = PROPERTY_SPECS[lowestBit(mask)] as PropertySpec;
    const v = p[spec.name];
    switch (spec.type) {
      case 'flag':
        w.u8(spec.id);
        w.u8(v ? 1 : 0);
        break;
      case 'byte':
        w.u8(spec.id);
        w.u8(v as number);
        break;
      case 'u16':
        w.u8(spec.id);
        w.u16(v as number);
        break;
      case 'u32':
        w.u8(spec.id);
        w.u32(v as number);
        break;
      case 'vbi':
        for (const id of v as number[]) {
          w.u8(spec.id);
          w.vbi(id);
        }
        break;
      case 'utf8':
        w.u8(spec.id);
        w.utf8(v as string);
        break;
      case 'binary':
        w.u8(spec.id);
        w.binary(v as Buffer);
        break;
      case 'pair':
        for (const [key, value] of v as Array<[string, string]>) {
          w.u8(spec.id);
          w.utf8(key);
          w.utf8(value);
        }
        break;
    }
  }
}
