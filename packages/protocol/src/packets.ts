/**
 * The packet model: one union keyed by `cmd`. Every packet of MQTT 3.1 (level 3),
 * 3.1.1 (level 4) and 5.0 (level 5) is one of these shapes. Fields that exist only in
 * MQTT 5 (reason codes, properties) are optional and ignored when encoding for 3.x.
 */
import type { Properties } from './properties.js';

/** Protocol level byte of CONNECT: 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 will properties (will delay interval, message expiry, content type, ...). */
  properties?: Properties;
}

export interface ConnectPacket {
  cmd: 'connect';
  /** 'MQIsdp' for MQTT 3.1, 'MQTT' otherwise. */
  protocolId: 'MQTT' | 'MQIsdp';
  protocolVersion: ProtocolVersion;
  /** cleanSession in 3.1.1, clean start in 5.0. */
  clean: boolean;
  keepalive: number;
  clientId: string;
  username?: string;
  password?: Buffer;
  will?: Will;
  properties?: Properties;
}

export interface ConnackPacket {
  cmd: 'connack';
  sessionPresent: boolean;
  /** 3.1.1 return code (0..5) or MQTT 5 reason code. */
  returnCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  cmd: 'publish';
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present (1..65535) when qos > 0. */
  messageId?: number;
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one shape. */
export interface AckPacket<C extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'> {
  cmd: C;
  messageId: number;
  /** MQTT 5 reason code; 0 (success) when absent. */
  reasonCode?: number;
  properties?: Properties;
}
export type PubackPacket = AckPacket<'puback'>;
export type PubrecPacket = AckPacket<'pubrec'>;
export type PubrelPacket = AckPacket<'pubrel'>;
export type PubcompPacket = AckPacket<'pubcomp'>;

export interface Subscription {
  topic: string;
  qos: QoS;
  /** MQTT 5 subscription options. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribePacket {
  cmd: 'subscribe';
  messageId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  cmd: 'suback';
  messageId: number;
  /** Granted QoS (0..2) or failure 0x80 in 3.1.1; reason codes in 5.0. */
  granted: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  cmd: 'unsubscribe';
  messageId: number;
  unsubscriptions: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  cmd: 'unsuback';
  messageId: number;
  /** MQTT 5 reason codes, one per topic filter; absent for 3.x. */
  granted?: number[];
  properties?: Properties;
}

export interface PingreqPacket {
  cmd: 'pingreq';
}
export interface PingrespPacket {
  cmd: 'pingresp';
}

export interface DisconnectPacket {
  cmd: 'disconnect';
  /** MQTT 5 reason code; 0 (normal) when absent. */
  reasonCode?: number;
  properties?: Properties;
}

/** MQTT 5 only. */
export interface AuthPacket {
  cmd: 'auth';
  reasonCode: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

export type PacketCmd = Packet['cmd'];
export type PacketOf<C extends PacketCmd> = Extract<Packet, { cmd: C }>;
