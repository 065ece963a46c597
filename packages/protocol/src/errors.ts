/**
 * Every way a byte stream can break the MQTT rules, as one catalogue. Each entry has a
 * stable code (never renamed: logs, metrics and tests key on it), the spec id it enforces,
 * and the MQTT 5 reason code a server sends in DISCONNECT/CONNACK before closing.
 */
import { ReasonCode } from './reason-codes.js';

interface ViolationSpec {
  readonly specId: string;
  readonly reasonCode: number;
  readonly message: string;
}

const MALFORMED = ReasonCode.MALFORMED_PACKET;
const PROTOCOL = ReasonCode.PROTOCOL_ERROR;

export const Violations = {
  TERN_PROTO_PACKET_TYPE: { specId: 'MQTT-2.2.1', reasonCode: MALFORMED, message: 'reserved or unknown packet type' },
  TERN_PROTO_RESERVED_FLAGS: { specId: 'MQTT-2.2.2-2', reasonCode: MALFORMED, message: 'invalid fixed header flags' },
  TERN_PROTO_REMAINING_LENGTH: {
    specId: 'MQTT-2.2.3',
    reasonCode: MALFORMED,
    message: 'remaining length longer than 4 bytes',
  },
  TERN_PROTO_PACKET_TOO_LARGE: {
    specId: 'MQTT-3.1.2-24',
    reasonCode: ReasonCode.PACKET_TOO_LARGE,
    message: 'packet larger than the maximum packet size',
  },
  TERN_PROTO_TRUNCATED: {
    specId: 'MQTT-1.5.4',
    reasonCode: MALFORMED,
    message: 'packet body ends before its fields do',
  },
  TERN_PROTO_TRAILING_BYTES: {
    specId: 'MQTT-2.2.3',
    reasonCode: MALFORMED,
    message: 'bytes left over after the last field of the packet',
  },
  TERN_PROTO_QOS_INVALID: { specId: 'MQTT-3.3.1-4', reasonCode: MALFORMED, message: 'QoS 3 is not allowed' },
  TERN_PROTO_DUP_QOS0: { specId: 'MQTT-3.3.1-2', reasonCode: MALFORMED, message: 'DUP must be 0 for a QoS 0 PUBLISH' },
  TERN_PROTO_PACKET_ID_ZERO: {
    specId: 'MQTT-2.3.1-1',
    reasonCode: MALFORMED,
    message: 'packet identifier must be non-zero',
  },
  TERN_PROTO_UTF8_INVALID: {
    specId: 'MQTT-1.5.3-1',
    reasonCode: MALFORMED,
    message: 'string is not well-formed UTF-8',
  },
  TERN_PROTO_UTF8_NULL: { specId: 'MQTT-1.5.3-2', reasonCode: MALFORMED, message: 'string contains U+0000' },
  TERN_PROTO_TOPIC_EMPTY: {
    specId: 'MQTT-4.7.3-1',
    reasonCode: ReasonCode.TOPIC_NAME_INVALID,
    message: 'topic name or filter is empty',
  },
  TERN_PROTO_TOPIC_WILDCARD: {
    specId: 'MQTT-3.3.2-2',
    reasonCode: ReasonCode.TOPIC_NAME_INVALID,
    message: 'topic name contains a wildcard',
  },
  TERN_PROTO_FILTER_HASH: {
    specId: 'MQTT-4.7.1-2',
    reasonCode: ReasonCode.TOPIC_FILTER_INVALID,
    message: "'#' must be last and alone in its level",
  },
  TERN_PROTO_FILTER_PLUS: {
    specId: 'MQTT-4.7.1-3',
    reasonCode: ReasonCode.TOPIC_FILTER_INVALID,
    message: "'+' must be alone in its level",
  },
  TERN_PROTO_SUBSCRIBE_EMPTY: {
    specId: 'MQTT-3.8.3-3',
    reasonCode: PROTOCOL,
    message: 'SUBSCRIBE has no topic filter',
  },
  TERN_PROTO_UNSUBSCRIBE_EMPTY: {
    specId: 'MQTT-3.10.3-2',
    reasonCode: PROTOCOL,
    message: 'UNSUBSCRIBE has no topic filter',
  },
  TERN_PROTO_SUBSCRIBE_OPTIONS: {
    specId: 'MQTT-3.8.3-4',
    reasonCode: MALFORMED,
    message: 'invalid subscription options byte',
  },
  TERN_PROTO_PROTOCOL_NAME: {
    specId: 'MQTT-3.1.2-1',
    reasonCode: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
    message: 'protocol name is not MQTT or MQIsdp',
  },
  TERN_PROTO_PROTOCOL_LEVEL: {
    specId: 'MQTT-3.1.2-2',
    reasonCode: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
    message: 'unsupported protocol level',
  },
  TERN_PROTO_CONNECT_RESERVED: {
    specId: 'MQTT-3.1.2-3',
    reasonCode: MALFORMED,
    message: 'CONNECT reserved flag must be 0',
  },
  TERN_PROTO_WILL_FLAGS: {
    specId: 'MQTT-3.1.2-13',
    reasonCode: MALFORMED,
    message: 'will QoS and retain must be 0 when the will flag is 0',
  },
  TERN_PROTO_WILL_QOS: { specId: 'MQTT-3.1.2-14', reasonCode: MALFORMED, message: 'will QoS 3 is not allowed' },
  TERN_PROTO_PASSWORD_FLAG: {
    specId: 'MQTT-3.1.2-22',
    reasonCode: MALFORMED,
    message: 'password flag set without user name flag',
  },
  TERN_PROTO_PROPERTY_UNKNOWN: {
    specId: 'MQTT-2.2.2.2',
    reasonCode: MALFORMED,
    message: 'unknown property identifier',
  },
  TERN_PROTO_PROPERTY_NOT_ALLOWED: {
    specId: 'MQTT-2.2.2.2',
    reasonCode: MALFORMED,
    message: 'property not allowed in this packet',
  },
  TERN_PROTO_PROPERTY_DUPLICATE: {
    specId: 'MQTT-2.2.2.2',
    reasonCode: PROTOCOL,
    message: 'property included more than once',
  },
  TERN_PROTO_PROPERTY_VALUE: { specId: 'MQTT-2.2.2.2', reasonCode: PROTOCOL, message: 'property value out of range' },
  TERN_PROTO_REASON_CODE: {
    specId: 'MQTT-2.4',
    reasonCode: MALFORMED,
    message: 'reason code not valid for this packet',
  },
  TERN_PROTO_AUTH_VERSION: { specId: 'MQTT-3.15', reasonCode: MALFORMED, message: 'AUTH exists only in MQTT 5' },
  TERN_PROTO_FIRST_PACKET: { specId: 'MQTT-3.1.0-1', reasonCode: PROTOCOL, message: 'first packet must be CONNECT' },
  TERN_PROTO_SECOND_CONNECT: {
    specId: 'MQTT-3.1.0-2',
    reasonCode: PROTOCOL,
    message: 'a second CONNECT on one connection',
  },
  TERN_PROTO_CONNACK_FLAGS: {
    specId: 'MQTT-3.2.2-1',
    reasonCode: MALFORMED,
    message: 'CONNACK reserved flags must be 0',
  },
  TERN_PROTO_SHARED_NO_LOCAL: {
    specId: 'MQTT-3.8.3-4',
    reasonCode: PROTOCOL,
    message: 'no local set on a shared subscription',
  },
} as const satisfies Record<string, ViolationSpec>;

export type ViolationCode = keyof typeof Violations;

/**
 * A breach of the MQTT rules found while decoding or encoding. The connection that sent it
 * is closed; with MQTT 5 the server first sends `reasonCode` (in CONNACK before the session
 * starts, in DISCONNECT after).
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ViolationCode;
  readonly specId: string;
  readonly reasonCode: number;

  constructor(code: ViolationCode, detail?: string) {
    const spec = Violations[code];
    super(detail === undefined ? `${spec.message} [${spec.specId}]` : `${spec.message}: ${detail} [${spec.specId}]`);
    this.code = code;
    this.specId = spec.specId;
    this.reasonCode = spec.reasonCode;
  }
}

/** Thrown by the encoder when asked to write a packet that cannot exist on the wire. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
  readonly code = 'TERN_PROTO_ENCODE';
}
