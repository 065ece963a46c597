/**
 * Packet bodies: one function per packet type, each reading from a ByteReader positioned on
 * the variable header and bounded by the remaining length. Checks are tagged with the spec
 * id they enforce; 3.1.1 ids where 3.1.1 and 5.0 agree.
 */
import { ProtocolError } from './errors.js';
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  Will,
} from './packets.js';
import { readProperties, WILL_PROPERTIES } from './properties.js';
import type { ByteReader } from './reader.js';
import {
  AUTH_REASONS,
  CONNACK_REASONS,
  CONNACK_RETURN_CODES_V4,
  DISCONNECT_REASONS,
  PUBACK_REASONS,
  PUBREL_REASONS,
  SUBACK_REASONS,
  SUBACK_RETURN_CODES_V4,
  UNSUBACK_REASONS,
} from './reason-code-sets.js';
import { topicFilterViolation, topicNameViolation } from './topic.js';

const PINGREQ: Packet = Object.freeze({ cmd: 'pingreq' }) as Packet;
const PINGRESP: Packet = Object.freeze({ cmd: 'pingresp' }) as Packet;
const DISCONNECT_V3: Packet = Object.freeze({ cmd: 'disconnect' }) as Packet;

function packetId(r: ByteReader): number {
  const id = r.u16();
  if (id === 0) throw new ProtocolError('TERN_PROTO_PACKET_ID_ZERO');
  return id;
}

function reason(r: ByteReader, allowed: Uint8Array): number {
  const code = r.u8();
  if (allowed[code] !== 1) throw new ProtocolError('TERN_PROTO_REASON_CODE', `0x${code.toString(16)}`);
  return code;
}

function checkFilter(filter: string): void {
  const v = topicFilterViolation(filter);
  if (v !== null) throw new ProtocolError(v, JSON.stringify(filter));
}

/** Decodes one packet body. `flags` is the low nibble of the fixed header, already checked. */
export function decodeBody(type: number, flags: number, r: ByteReader, version: ProtocolVersion): Packet {
  switch (type) {
    case 1:
      return decodeConnect(r);
    case 2:
      return decodeConnack(r, version);
    case 3:
      return decodePublish(flags, r, version);
    case 4:
      return decodeAck('puback', r, version, PUBACK_REASONS);
    case 5:
      return decodeAck('pubrec', r, version, PUBACK_REASONS);
    case 6:
      return decodeAck('pubrel', r, version, PUBREL_REASONS);
    case 7:
      return decodeAck('pubcomp', r, version, PUBREL_REASONS);
    case 8:
      return decodeSubscribe(r, version);
    case 9:
      return decodeSuback(r, version);
    case 10:
      return decodeUnsubscribe(r, version);
    case 11:
      return decodeUnsuback(r, version);
    case 12:
      r.expectEnd();
      return PINGREQ;
    case 13:
      r.expectEnd();
      return PINGRESP;
    case 14:
      return decodeDisconnect(r, version);
    case 15:
      return decodeAuth(r, version);
    default:
      throw new ProtocolError('TERN_PROTO_PACKET_TYPE', String(type));
  }
}

function decodeConnect(r: ByteReader): ConnectPacket {
  const protocolId = r.utf8();
  if (protocolId !== 'MQTT' && protocolId !== 'MQIsdp') {
    throw new ProtocolError('TERN_PROTO_PROTOCOL_NAME', JSON.stringify(protocolId));
  }
  const level = r.u8();
  // MQTT 3.1 is 'MQIsdp' level 3; 3.1.1 and 5.0 are 'MQTT' levels 4 and 5 [MQTT-3.1.2-2].
  if (protocolId === 'MQIsdp' ? level !== 3 : level !== 4 && level !== 5) {
    throw new ProtocolError('TERN_PROTO_PROTOCOL_LEVEL', `${protocolId} level ${level}`);
  }
  const version = level as ProtocolVersion;
  const flags = r.u8();
  if ((flags & 0x01) !== 0) throw new ProtocolError('TERN_PROTO_CONNECT_RESERVED');
  const clean = (flags & 0x02) !== 0;
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (!willFlag && (willQos !== 0 || willRetain)) {
    throw new ProtocolError('TERN_PROTO_WILL_FLAGS'); // [MQTT-3.1.2-13] [MQTT-3.1.2-15]
  }
  if (willQos === 3) throw new ProtocolError('TERN_PROTO_WILL_QOS');
  // 3.1.1 forbids a password without a user name; MQTT 5 allows it [MQTT-3.1.2-22].
  if (hasPassword && !hasUsername && version !== 5) throw new ProtocolError('TERN_PROTO_PASSWORD_FLAG');
  const keepalive = r.u16();
  const packet: ConnectPacket = {
    cmd: 'connect',
    protocolId,
    protocolVersion: version,
    clean,
    keepalive,
    clientId: '',
  };
  if (version === 5) {
    const props = readProperties(r, 1);
    if (props !== undefined) packet.properties = props;
  }
  // Payload fields in this order when present [MQTT-3.1.3-1].
  packet.clientId = r.utf8();
  if (willFlag) {
    const willProps = version === 5 ? readProperties(r, WILL_PROPERTIES) : undefined;
    const topic = r.utf8();
    const v = topicNameViolation(topic);
    if (v !== null) throw new ProtocolError(v, `will topic ${JSON.stringify(topic)}`);
    // Copied: the will lives as long as the connection, the received chunk should not.
    const will: Will = { topic, payload: Buffer.from(r.binary()), qos: willQos as QoS, retain: willRetain };
    if (willProps !== undefined) will.properties = willProps;
    packet.will = will;
  }
  if (hasUsername) packet.username = r.utf8();
  if (hasPassword) packet.password = Buffer.from(r.binary());
  r.expectEnd();
  return packet;
}

function decodeConnack(r: ByteReader, version: ProtocolVersion): ConnackPacket {
  const flags = r.u8();
  if ((flags & 0xfe) !== 0) throw new ProtocolError('TERN_PROTO_CONNACK_FLAGS');
  const returnCode = reason(r, version === 5 ? CONNACK_REASONS : CONNACK_RETURN_CODES_V4);
  const packet: ConnackPacket = { cmd: 'connack', sessionPresent: flags === 1, returnCode };
  if (version === 5) {
    const props = readProperties(r, 2);
    if (props !== undefined) packet.properties = props;
  }
  r.expectEnd();
  return packet;
}

function decodePublish(flags: number, r: ByteReader, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw new ProtocolError('TERN_PROTO_QOS_INVALID');
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw new ProtocolError('TERN_PROTO_DUP_QOS0');
  const topic = r.topicName();
  const wildcard = r.wildcard;
  const packet: PublishPacket = {
    cmd: 'publish',
    topic,
    payload: EMPTY,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (qos > 0) packet.messageId = packetId(r);
  if (version === 5) {
    const props = readProperties(r, 3);
    if (props !== undefined) packet.properties = props;
  }
  // No wildcards in a topic name [MQTT-3.3.2-2]; at least one character [MQTT-4.7.3-1], except
  // that MQTT 5 allows an empty name when a Topic Alias stands in for it [MQTT-3.3.2-1..].
  if (wildcard) throw new ProtocolError('TERN_PROTO_TOPIC_WILDCARD', JSON.stringify(topic));
  if (topic.length === 0 && packet.properties?.topicAlias === undefined) {
    throw new ProtocolError('TERN_PROTO_TOPIC_EMPTY', JSON.stringify(topic));
  }
  packet.payload = r.rest();
  return packet;
}

const EMPTY = Buffer.alloc(0);

function decodeAck<C extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'>(
  cmd: C,
  r: ByteReader,
  version: ProtocolVersion,
  reasons: Uint8Array,
): AckPacket<C> {
  const packet: AckPacket<C> = { cmd, messageId: packetId(r) };
  if (version === 5) {
    // Reason code and properties may be left out when the code is 0 [MQTT-3.4.2.1].
    if (r.remaining > 0) packet.reasonCode = reason(r, reasons);
    if (r.remaining > 0) {
      const props = readProperties(r, cmd === 'puback' ? 4 : cmd === 'pubrec' ? 5 : cmd === 'pubrel' ? 6 : 7);
      if (props !== undefined) packet.properties = props;
    }
  }
  r.expectEnd();
  return packet;
}

function decodeSubscribe(r: ByteReader, version: ProtocolVersion): SubscribePacket {
  const packet: SubscribePacket = { cmd: 'subscribe', messageId: packetId(r), subscriptions: [] };
  if (version === 5) {
    const props = readProperties(r, 8);
    if (props !== undefined) packet.properties = props;
  }
  if (r.remaining === 0) throw new ProtocolError('TERN_PROTO_SUBSCRIBE_EMPTY');
  while (r.remaining > 0) {
    const topic = r.utf8();
    checkFilter(topic);
    const options = r.u8();
    const qos = options & 0x03;
    if (qos === 3) throw new ProtocolError('TERN_PROTO_SUBSCRIBE_OPTIONS', 'QoS 3');
    const sub: Subscription = { topic, qos: qos as QoS };
    if (version === 5) {
      // Bits 6-7 reserved [MQTT-3.8.3-5]; retain handling 3 is a protocol error.
      const retainHandling = (options >> 4) & 0x03;
      if ((options & 0xc0) !== 0 || retainHandling === 3) {
        throw new ProtocolError('TERN_PROTO_SUBSCRIBE_OPTIONS', `0x${options.toString(16)}`);
      }
      sub.noLocal = (options & 0x04) !== 0;
      sub.retainAsPublished = (options & 0x08) !== 0;
      sub.retainHandling = retainHandling as 0 | 1 | 2;
    } else if ((options & 0xfc) !== 0) {
      // Upper 6 bits reserved [MQTT-3-8.3-4] (the spec's own spelling of the id).
      throw new ProtocolError('TERN_PROTO_SUBSCRIBE_OPTIONS', `0x${options.toString(16)}`);
    }
    packet.subscriptions.push(sub);
  }
  return packet;
}

function decodeSuback(r: ByteReader, version: ProtocolVersion): SubackPacket {
  const packet: SubackPacket = { cmd: 'suback', messageId: packetId(r), granted: [] };
  if (version === 5) {
    const props = readProperties(r, 9);
    if (props !== undefined) packet.properties = props;
  }
  if (r.remaining === 0) throw new ProtocolError('TERN_PROTO_TRUNCATED', 'SUBACK has no return code');
  const allowed = version === 5 ? SUBACK_REASONS : SUBACK_RETURN_CODES_V4;
  while (r.remaining > 0) packet.granted.push(reason(r, allowed));
  return packet;
}

function decodeUnsubscribe(r: ByteReader, version: ProtocolVersion): UnsubscribePacket {
  const packet: UnsubscribePacket = { cmd: 'unsubscribe', messageId: packetId(r), unsubscriptions: [] };
  if (version === 5) {
    const props = readProperties(r, 10);
    if (props !== undefined) packet.properties = props;
  }
  if (r.remaining === 0) throw new ProtocolError('TERN_PROTO_UNSUBSCRIBE_EMPTY');
  while (r.remaining > 0) {
    const topic = r.utf8();
    checkFilter(topic);
    packet.unsubscriptions.push(topic);
  }
  return packet;
}

function decodeUnsuback(r: ByteReader, version: ProtocolVersion): UnsubackPacket {
  const packet: UnsubackPacket = { cmd: 'unsuback', messageId: packetId(r) };
  if (version === 5) {
    const props = readProperties(r, 11);
    if (props !== undefined) packet.properties = props;
    if (r.remaining === 0) throw new ProtocolError('TERN_PROTO_TRUNCATED', 'UNSUBACK has no reason code');
    const granted: number[] = [];
    while (r.remaining > 0) granted.push(reason(r, UNSUBACK_REASONS));
    packet.granted = granted;
  }
  r.expectEnd();
  return packet;
}

function decodeDisconnect(r: ByteReader, version: ProtocolVersion): DisconnectPacket {
  if (version !== 5) {
    r.expectEnd();
    return DISCONNECT_V3 as DisconnectPacket;
  }
  const packet: DisconnectPacket = { cmd: 'disconnect' };
  if (r.remaining > 0) packet.reasonCode = reason(r, DISCONNECT_REASONS);
  if (r.remaining > 0) {
    const props = readProperties(r, 14);
    if (props !== undefined) packet.properties = props;
  }
  r.expectEnd();
  return packet;
}

function decodeAuth(r: ByteReader, version: ProtocolVersion): AuthPacket {
  if (version !== 5) throw new ProtocolError('TERN_PROTO_AUTH_VERSION');
  const packet: AuthPacket = { cmd: 'auth', reasonCode: 0 };
  if (r.remaining > 0) packet.reasonCode = reason(r, AUTH_REASONS);
  if (r.remaining > 0) {
    const props = readProperties(r, 15);
    if (props !== undefined) packet.properties = props;
  }
  r.expectEnd();
  return packet;
}
