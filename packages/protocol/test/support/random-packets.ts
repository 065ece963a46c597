/**
 * Test support shared by the differential and fuzz tests: a seeded PRNG (mulberry32), a
 * generator of random packets that are valid for their protocol version, and a canonical
 * form for comparing packets that the model allows to be written in more than one way.
 * Everything here is deterministic in the seed; nothing reads the clock or Math.random.
 *
 * The property table and reason code sets are written out from the MQTT 5 spec (table 2-4
 * and the per-packet reason code tables) rather than taken from src, so a mistake in the
 * codec's own tables is not silently mirrored by the generator.
 */
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PacketCmd,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  Will,
} from '../../src/index.js';

/** A seed from the environment (decimal or 0x hex) or the given default. */
export function seedFrom(envName: string, fallback: number): number {
  const raw = process.env[envName];
  if (raw === undefined || raw === '') return fallback >>> 0;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${envName}=${raw} is not an integer`);
  return n >>> 0;
}

export const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** mulberry32: a 32-bit state PRNG, small and good enough to drive tests. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4_294_967_296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)] as T;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.u32(), i);
    if (i < n) {
      const r = this.u32();
      for (let k = 0; i < n; i++, k++) b[i] = (r >>> (8 * k)) & 0xff;
    }
    return b;
  }
}

// ---------------------------------------------------------------------------------------
// Reason codes (MQTT 5 section 3.x reason code tables) and 3.1.1 return codes.
// ---------------------------------------------------------------------------------------

export const REASONS = {
  connack: [
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b,
    0x9c, 0x9d, 0x9f,
  ],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
    0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ],
  auth: [0x00, 0x18, 0x19],
} as const;

// ---------------------------------------------------------------------------------------
// Strings, topics, binary data.
// ---------------------------------------------------------------------------------------

const PLAIN = 'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_. ';
/**
 * Multi-byte UTF-8 (2, 3 and 4 bytes, the last as surrogate pairs in JS), control characters
 * and non-characters: the spec says SHOULD NOT for those, so they are valid on the wire, and
 * U+FEFF must not be stripped [MQTT-1.5.3-3]. U+0000 and lone surrogates are never produced.
 */
const SPECIAL = [
  'é',
  'ß',
  'ж',
  '€',
  '中',
  '文',
  '😀',
  '🙂',
  '𝄞',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\ufeff',
  '\uffff',
  '\u{10ffff}',
  '$',
];

function char(rng: Rng): string {
  return rng.chance(0.75) ? (PLAIN[rng.int(0, PLAIN.length - 1)] as string) : rng.pick(SPECIAL);
}

function smallLength(rng: Rng): number {
  const r = rng.float();
  if (r < 0.1) return 0;
  if (r < 0.7) return rng.int(1, 8);
  if (r < 0.95) return rng.int(9, 40);
  return rng.int(41, 300);
}

/** A string of at most `maxBytes` UTF-8 bytes, close to it (a long string). */
function longString(rng: Rng, maxBytes: number): string {
  const unit = rng.pick(['x', 'é', '中', '😀']);
  return unit.repeat(Math.floor(maxBytes / Buffer.byteLength(unit)));
}

export interface GenOptions {
  /** Allow payloads > 16 KiB and strings/binary up to 65535 bytes (rarely). */
  large: boolean;
}

/** Any UTF-8 string (client ids, user properties, content types...). */
export function randomText(rng: Rng, opts: GenOptions, extra = '/+#'): string {
  if (opts.large && rng.chance(0.002)) return longString(rng, rng.int(60_000, 65_535));
  const n = smallLength(rng);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.chance(0.05) && extra.length > 0 ? rng.pick([...extra]) : char(rng);
  return s;
}

/** One topic level without '/', '+' or '#'; may be empty. */
function topicLevel(rng: Rng): string {
  const n = rng.chance(0.1) ? 0 : rng.int(1, 10);
  let s = '';
  for (let i = 0; i < n; i++) s += char(rng);
  return s;
}

/** A topic name: no wildcards, at least one character; empty levels allowed. */
export function randomTopicName(rng: Rng, opts: GenOptions): string {
  if (opts.large && rng.chance(0.002)) return longString(rng, rng.int(1_000, 65_535));
  const levels: string[] = [];
  const n = rng.int(1, 6);
  for (let i = 0; i < n; i++) levels.push(topicLevel(rng));
  if (rng.chance(0.05)) levels[0] = '$SYS';
  const topic = levels.join('/');
  return topic === '' ? 'a' : topic;
}

/** A topic filter; `shared` is true for '$share/{name}/{filter}' (MQTT 5 only). */
export function randomTopicFilter(rng: Rng, version: ProtocolVersion): { filter: string; shared: boolean } {
  const r = rng.float();
  let filter: string;
  if (r < 0.04) filter = '#';
  else if (r < 0.08) filter = '+';
  else {
    const levels: string[] = [];
    const n = rng.int(1, 6);
    for (let i = 0; i < n; i++) levels.push(rng.chance(0.2) ? '+' : topicLevel(rng));
    if (rng.chance(0.2)) levels.push('#');
    filter = levels.join('/');
    if (filter === '') filter = 'a';
  }
  if (version === 5 && rng.chance(0.05)) {
    let name = topicLevel(rng);
    if (name === '') name = 'g';
    return { filter: `$share/${name}/${filter}`, shared: true };
  }
  return { filter, shared: false };
}

export function randomBinary(rng: Rng, opts: GenOptions): Buffer {
  if (opts.large && rng.chance(0.002)) return rng.bytes(rng.int(60_000, 65_535));
  return rng.bytes(smallLength(rng));
}

/** Payload sizes: 0, small, around the 1- and 2-byte remaining length limits, > 16 KiB, > 2 MiB. */
function payloadSize(rng: Rng, opts: GenOptions): number {
  const r = rng.float();
  if (r < 0.1) return 0;
  if (r < 0.55) return rng.int(1, 64);
  if (r < 0.75) return rng.int(65, 1024);
  if (r < 0.82) return rng.int(110, 140);
  if (!opts.large) return rng.int(1025, 4000);
  if (r < 0.88) return rng.int(16_360, 16_400);
  if (r < 0.95) return rng.int(1025, 16_384);
  if (r < 0.997) return rng.int(16_385, 70_000);
  return rng.int(2_097_100, 2_100_000); // 4-byte remaining length
}

const U16_EDGES = [0, 1, 127, 128, 255, 256, 0x7fff, 0xffff];
const U32_EDGES = [0, 1, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];
const VBI_EDGES = [1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455];

const u16 = (rng: Rng, min = 0): number => Math.max(min, rng.chance(0.3) ? rng.pick(U16_EDGES) : rng.int(0, 0xffff));
const u32 = (rng: Rng, min = 0): number =>
  Math.max(min, rng.chance(0.3) ? rng.pick(U32_EDGES) : rng.int(0, 0xffffffff));
const vbi = (rng: Rng): number => (rng.chance(0.4) ? rng.pick(VBI_EDGES) : rng.int(1, 268_435_455));
const packetId = (rng: Rng): number => (rng.chance(0.2) ? rng.pick([1, 255, 256, 0xffff]) : rng.int(1, 0xffff));
const qos = (rng: Rng): QoS => rng.pick([0, 1, 2] as const);

// ---------------------------------------------------------------------------------------
// MQTT 5 properties (table 2-4).
// ---------------------------------------------------------------------------------------

type PropSite =
  | 'will'
  | 'connect'
  | 'connack'
  | 'publish'
  | 'ack'
  | 'subscribe'
  | 'unsubscribe'
  | 'disconnect'
  | 'auth';

const ALLOWED: Record<PropSite, readonly (keyof Properties)[]> = {
  will: [
    'payloadFormatIndicator',
    'messageExpiryInterval',
    'contentType',
    'responseTopic',
    'correlationData',
    'willDelayInterval',
    'userProperties',
  ],
  connect: [
    'sessionExpiryInterval',
    'authenticationMethod',
    'authenticationData',
    'requestProblemInformation',
    'requestResponseInformation',
    'receiveMaximum',
    'topicAliasMaximum',
    'userProperties',
    'maximumPacketSize',
  ],
  connack: [
    'sessionExpiryInterval',
    'assignedClientIdentifier',
    'serverKeepAlive',
    'authenticationMethod',
    'authenticationData',
    'responseInformation',
    'serverReference',
    'reasonString',
    'receiveMaximum',
    'topicAliasMaximum',
    'maximumQoS',
    'retainAvailable',
    'userProperties',
    'maximumPacketSize',
    'wildcardSubscriptionAvailable',
    'subscriptionIdentifiersAvailable',
    'sharedSubscriptionAvailable',
  ],
  publish: [
    'payloadFormatIndicator',
    'messageExpiryInterval',
    'contentType',
    'responseTopic',
    'correlationData',
    'subscriptionIdentifiers',
    'topicAlias',
    'userProperties',
  ],
  // PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
  ack: ['reasonString', 'userProperties'],
  subscribe: ['subscriptionIdentifiers', 'userProperties'],
  unsubscribe: ['userProperties'],
  disconnect: ['sessionExpiryInterval', 'serverReference', 'reasonString', 'userProperties'],
  auth: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties'],
};

/** Keys that repeat, integer-like keys (JS objects reorder those) and multi-byte keys. */
const USER_KEYS = ['', 'k', 'key', 'dup', '0', '1', '42', 'ключ', '🙂', 'a b', '__proto__', 'constructor'];

function userProperties(rng: Rng, opts: GenOptions): Array<[string, string]> {
  const n = rng.chance(0.7) ? rng.int(1, 3) : rng.int(4, 10);
  const list: Array<[string, string]> = [];
  for (let i = 0; i < n; i++) {
    // Often reuse an earlier key so keys repeat, not always next to each other.
    const key =
      list.length > 0 && rng.chance(0.3)
        ? (rng.pick(list)[0] as string)
        : rng.chance(0.5)
          ? rng.pick(USER_KEYS)
          : randomText(rng, opts);
    list.push([key, rng.chance(0.1) ? '' : randomText(rng, opts)]);
  }
  return list;
}

function randomProperties(rng: Rng, site: PropSite, opts: GenOptions): Properties | undefined {
  if (rng.chance(0.3)) return undefined;
  const p: Properties = {};
  const density = rng.pick([0.15, 0.35, 0.7]);
  for (const name of ALLOWED[site]) {
    if (!rng.chance(density)) continue;
    switch (name) {
      case 'payloadFormatIndicator':
      case 'requestProblemInformation':
      case 'requestResponseInformation':
      case 'retainAvailable':
      case 'wildcardSubscriptionAvailable':
      case 'subscriptionIdentifiersAvailable':
      case 'sharedSubscriptionAvailable':
        p[name] = rng.chance(0.5);
        break;
      case 'messageExpiryInterval':
      case 'sessionExpiryInterval':
      case 'willDelayInterval':
        p[name] = u32(rng);
        break;
      case 'maximumPacketSize':
        p[name] = u32(rng, 1); // 0 is a protocol error
        break;
      case 'contentType':
      case 'assignedClientIdentifier':
      case 'responseInformation':
      case 'serverReference':
      case 'reasonString':
        p[name] = randomText(rng, opts);
        break;
      case 'authenticationMethod':
        p[name] = randomText(rng, opts);
        // Authentication Data without a method is a protocol error [MQTT-3.1.2.11.10].
        if (ALLOWED[site].includes('authenticationData') && rng.chance(0.6)) {
          p.authenticationData = randomBinary(rng, opts);
        }
        break;
      case 'authenticationData':
        break; // only with a method, above
      case 'responseTopic':
        p[name] = randomTopicName(rng, opts); // a topic name, no wildcards [MQTT-3.3.2-14]
        break;
      case 'correlationData':
        p[name] = randomBinary(rng, opts);
        break;
      case 'subscriptionIdentifiers':
        // A server's PUBLISH may carry several; a SUBSCRIBE exactly one [MQTT-3.8.2.1.2].
        p[name] = Array.from({ length: site === 'publish' ? rng.int(1, 4) : 1 }, () => vbi(rng));
        break;
      case 'serverKeepAlive':
      case 'topicAliasMaximum':
        p[name] = u16(rng);
        break;
      case 'receiveMaximum':
      case 'topicAlias':
        p[name] = u16(rng, 1); // 0 is a protocol error
        break;
      case 'maximumQoS':
        p[name] = rng.pick([0, 1] as const);
        break;
      case 'userProperties':
        p[name] = userProperties(rng, opts);
        break;
    }
  }
  // Reordered so nothing hints at the codec's write order (which the codec picks itself).
  return Object.keys(p).length > 0 ? p : undefined;
}

// ---------------------------------------------------------------------------------------
// Packets.
// ---------------------------------------------------------------------------------------

export const CMDS_V3_V4: readonly PacketCmd[] = [
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
];
export const CMDS_V5: readonly PacketCmd[] = [...CMDS_V3_V4, 'auth'];

export function cmdsFor(version: ProtocolVersion): readonly PacketCmd[] {
  return version === 5 ? CMDS_V5 : CMDS_V3_V4;
}

/** Client ids of MQTT 3.1 are 1..23 characters. */
function clip(s: string, chars: number): string {
  return Array.from(s).slice(0, chars).join('');
}

function randomConnect(rng: Rng, v: ProtocolVersion, opts: GenOptions): ConnectPacket {
  const clean = rng.chance(0.5);
  let clientId = randomText(rng, opts, '');
  if (v === 3) clientId = clip(clientId, 23) || 'c';
  // A zero-byte client id needs clean session in 3.1.1 [MQTT-3.1.3-7]; MQTT 5 lifts that.
  if (v === 4 && clientId === '' && !clean) clientId = 'c';
  const p: ConnectPacket = {
    cmd: 'connect',
    protocolId: v === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: v,
    clean,
    keepalive: u16(rng),
    clientId,
  };
  if (rng.chance(0.4)) {
    const will: Will = {
      topic: randomTopicName(rng, opts),
      payload: randomBinary(rng, opts),
      qos: qos(rng),
      retain: rng.chance(0.5),
    };
    const props = v === 5 ? randomProperties(rng, 'will', opts) : undefined;
    if (props !== undefined) will.properties = props;
    p.will = will;
  }
  if (rng.chance(0.5)) p.username = randomText(rng, opts);
  // A password needs a user name in 3.1.1 [MQTT-3.1.2-22]; MQTT 5 allows it alone.
  if ((p.username !== undefined || v === 5) && rng.chance(0.5)) p.password = randomBinary(rng, opts);
  const props = v === 5 ? randomProperties(rng, 'connect', opts) : undefined;
  if (props !== undefined) p.properties = props;
  return p;
}

function withProps<T extends { properties?: Properties }>(
  rng: Rng,
  v: ProtocolVersion,
  site: PropSite,
  p: T,
  opts: GenOptions,
): T {
  if (v === 5) {
    const props = randomProperties(rng, site, opts);
    if (props !== undefined) p.properties = props;
  }
  return p;
}

/** A random packet valid for `version` (of type `cmd` when given). */
export function randomPacket(
  rng: Rng,
  v: ProtocolVersion,
  cmd: PacketCmd = rng.chance(0.2) ? 'publish' : rng.pick(cmdsFor(v)),
  opts: GenOptions = { large: true },
): Packet {
  switch (cmd) {
    case 'connect':
      return randomConnect(rng, v, opts);
    case 'connack': {
      const returnCode = v === 5 ? rng.pick(REASONS.connack) : rng.int(0, 5);
      // Session present is 0 with a failure code [MQTT-3.2.2-4] [MQTT-3.2.2-6]; 3.1 has no such flag.
      const sessionPresent = v !== 3 && returnCode === 0 && rng.chance(0.5);
      return withProps<ConnackPacket>(rng, v, 'connack', { cmd, sessionPresent, returnCode }, opts);
    }
    case 'publish': {
      const q = qos(rng);
      const p = withProps<PublishPacket>(
        rng,
        v,
        'publish',
        {
          cmd,
          topic: randomTopicName(rng, opts),
          payload: Buffer.alloc(0),
          qos: q,
          retain: rng.chance(0.3),
          dup: q > 0 && rng.chance(0.3), // DUP is 0 for QoS 0 [MQTT-3.3.1-2]
        },
        opts,
      );
      if (q > 0) p.messageId = packetId(rng);
      // A topic alias may stand in for the topic name, which is then empty [MQTT-3.3.2-12].
      if (p.properties?.topicAlias !== undefined && rng.chance(0.3)) p.topic = '';
      p.payload = rng.bytes(payloadSize(rng, opts));
      return p;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const p: AckPacket<typeof cmd> = { cmd, messageId: packetId(rng) };
      if (v === 5) {
        if (rng.chance(0.7)) p.reasonCode = rng.pick(REASONS[cmd]);
        withProps(rng, v, 'ack', p, opts);
      }
      return p;
    }
    case 'subscribe': {
      const subscriptions: Subscription[] = [];
      const n = rng.chance(0.8) ? rng.int(1, 3) : rng.int(4, 12);
      for (let i = 0; i < n; i++) {
        const { filter, shared } = randomTopicFilter(rng, v);
        const s: Subscription = { topic: filter, qos: qos(rng) };
        if (v === 5) {
          // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
          if (rng.chance(0.8)) s.noLocal = !shared && rng.chance(0.5);
          if (rng.chance(0.8)) s.retainAsPublished = rng.chance(0.5);
          if (rng.chance(0.8)) s.retainHandling = rng.pick([0, 1, 2] as const);
        }
        subscriptions.push(s);
      }
      return withProps<SubscribePacket>(rng, v, 'subscribe', { cmd, messageId: packetId(rng), subscriptions }, opts);
    }
    case 'suback': {
      const codes = v === 5 ? REASONS.suback : v === 4 ? [0, 1, 2, 0x80] : [0, 1, 2];
      const granted = Array.from({ length: rng.int(1, 8) }, () => rng.pick(codes));
      return withProps<SubackPacket>(rng, v, 'ack', { cmd, messageId: packetId(rng), granted }, opts);
    }
    case 'unsubscribe': {
      const unsubscriptions = Array.from({ length: rng.int(1, 6) }, () => randomTopicFilter(rng, v).filter);
      return withProps<UnsubscribePacket>(
        rng,
        v,
        'unsubscribe',
        { cmd, messageId: packetId(rng), unsubscriptions },
        opts,
      );
    }
    case 'unsuback': {
      if (v !== 5) return { cmd, messageId: packetId(rng) };
      const granted = Array.from({ length: rng.int(1, 8) }, () => rng.pick(REASONS.unsuback));
      return withProps<UnsubackPacket>(rng, v, 'ack', { cmd, messageId: packetId(rng), granted }, opts);
    }
    case 'pingreq':
    case 'pingresp':
      return { cmd };
    case 'disconnect': {
      const p: DisconnectPacket = { cmd };
      if (v === 5) {
        if (rng.chance(0.7)) p.reasonCode = rng.pick(REASONS.disconnect);
        withProps(rng, v, 'disconnect', p, opts);
      }
      return p;
    }
    case 'auth': {
      const p: AuthPacket = { cmd, reasonCode: rng.pick(REASONS.auth) };
      withProps(rng, v, 'auth', p, opts);
      // Continue and re-authenticate name the method [MQTT-3.15.2.2.2].
      if (p.reasonCode !== 0 && p.properties?.authenticationMethod === undefined) {
        p.properties = { ...p.properties, authenticationMethod: randomText(rng, opts) };
      }
      return p;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Canonical form.
// ---------------------------------------------------------------------------------------

function byKey(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * Properties with undefined and empty entries dropped and user properties stably sorted by
 * key: the order of values under one key is kept (it is meaningful), the interleaving of
 * different keys is not (mqtt-packet's object model cannot keep it).
 */
export function canonicalProperties(props: Properties | undefined): Properties | undefined {
  if (props === undefined) return undefined;
  const src = props as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(src).sort()) {
    const value = src[key];
    if (value === undefined) continue;
    if (key === 'userProperties') {
      const list = value as Array<[string, string]>;
      if (list.length > 0) out[key] = list.map(([k, v]): [string, string] => [k, v]).sort(byKey);
    } else if (key === 'subscriptionIdentifiers') {
      const list = value as number[];
      if (list.length > 0) out[key] = [...list];
    } else if (Buffer.isBuffer(value)) {
      out[key] = Buffer.from(value);
    } else {
      out[key] = value;
    }
  }
  return Object.keys(out).length > 0 ? (out as Properties) : undefined;
}

/**
 * One canonical object per packet meaning for `version`: optional fields that default
 * (MQTT 5 reason code 0, subscription options 0) are filled in, fields that do not exist in
 * 3.x are dropped, buffers are copied (so views and copies compare equal).
 */
export function canonical(p: Packet, v: ProtocolVersion): Packet {
  const props = (q: { properties?: Properties }): { properties?: Properties } => {
    const c = v === 5 ? canonicalProperties(q.properties) : undefined;
    return c === undefined ? {} : { properties: c };
  };
  switch (p.cmd) {
    case 'connect': {
      const out: ConnectPacket = {
        cmd: 'connect',
        protocolId: p.protocolId,
        protocolVersion: p.protocolVersion,
        clean: p.clean,
        keepalive: p.keepalive,
        clientId: p.clientId,
        ...props(p),
      };
      if (p.will !== undefined) {
        out.will = {
          topic: p.will.topic,
          payload: Buffer.from(p.will.payload),
          qos: p.will.qos,
          retain: p.will.retain,
          ...props(p.will),
        };
      }
      if (p.username !== undefined) out.username = p.username;
      if (p.password !== undefined) out.password = Buffer.from(p.password);
      return out;
    }
    case 'connack':
      return { cmd: p.cmd, sessionPresent: p.sessionPresent, returnCode: p.returnCode, ...props(p) };
    case 'publish': {
      const out: Packet = {
        cmd: p.cmd,
        topic: p.topic,
        payload: Buffer.from(p.payload),
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        ...props(p),
      };
      if (p.qos > 0) out.messageId = p.messageId;
      return out;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return v === 5
        ? { cmd: p.cmd, messageId: p.messageId, reasonCode: p.reasonCode ?? 0, ...props(p) }
        : { cmd: p.cmd, messageId: p.messageId };
    case 'subscribe':
      return {
        cmd: p.cmd,
        messageId: p.messageId,
        subscriptions: p.subscriptions.map((s) =>
          v === 5
            ? {
                topic: s.topic,
                qos: s.qos,
                noLocal: s.noLocal ?? false,
                retainAsPublished: s.retainAsPublished ?? false,
                retainHandling: s.retainHandling ?? 0,
              }
            : { topic: s.topic, qos: s.qos },
        ),
        ...props(p),
      };
    case 'suback':
      return { cmd: p.cmd, messageId: p.messageId, granted: [...p.granted], ...props(p) };
    case 'unsubscribe':
      return { cmd: p.cmd, messageId: p.messageId, unsubscriptions: [...p.unsubscriptions], ...props(p) };
    case 'unsuback':
      return v === 5
        ? { cmd: p.cmd, messageId: p.messageId, granted: [...(p.granted ?? [])], ...props(p) }
        : { cmd: p.cmd, messageId: p.messageId };
    case 'pingreq':
    case 'pingresp':
      return { cmd: p.cmd };
    case 'disconnect':
      return v === 5 ? { cmd: p.cmd, reasonCode: p.reasonCode ?? 0, ...props(p) } : { cmd: p.cmd };
    case 'auth':
      return { cmd: p.cmd, reasonCode: p.reasonCode ?? 0, ...props(p) };
  }
}
