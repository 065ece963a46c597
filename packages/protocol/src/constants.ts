import type { PacketCmd } from './packets.js';

/** Control packet type values, the high nibble of the fixed header [MQTT-2.2.1]. */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

export const CMD_BY_TYPE: readonly (PacketCmd | undefined)[] = [
  undefined,
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
  'auth',
];

export const TYPE_BY_CMD: Readonly<Record<PacketCmd, number>> = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
};

/**
 * The fixed flags every packet type except PUBLISH must carry [MQTT-2.2.2-1]: 0010 for
 * PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0000 for the rest.
 */
export const REQUIRED_FLAGS: readonly number[] = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/** Largest remaining length a 4-byte variable byte integer can carry [MQTT-2.2.3]. */
export const MAX_REMAINING_LENGTH = 268_435_455;
/** Largest packet on the wire: remaining length + 1 type byte + 4 length bytes. */
export const MAX_PACKET_SIZE = MAX_REMAINING_LENGTH + 5;
