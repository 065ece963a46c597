/**
 * The MQTT 5 side of CONNECT and CONNACK: what the session is granted (expiry, keepalive),
 * the CONNACK properties that tell the client Tern's limits, and reason codes for refusals.
 */
import { ConnackReturnCode, type ConnectPacket, type Properties, ReasonCode } from '@tern/protocol';
import type { BrokerConfig } from '../config.js';

/** The 0xFFFFFFFF session expiry interval: the session never expires [MQTT-3.1.2-23]. */
export const NEVER_EXPIRES = 0xffffffff;

/** The session expiry interval granted (seconds; Infinity for never), capped by maxSessionExpiry. */
export function grantedExpiry(packet: ConnectPacket, config: BrokerConfig): number {
  if (packet.protocolVersion !== 5) return packet.clean ? 0 : Number.POSITIVE_INFINITY;
  const asked = packet.properties?.sessionExpiryInterval ?? 0;
  const cap = config.maxSessionExpiry;
  if (cap !== 0 && asked > cap) return cap;
  return asked === NEVER_EXPIRES ? Number.POSITIVE_INFINITY : asked;
}

/** The keepalive the client is held to: maxKeepalive when it asks for more, or none. */
export function grantedKeepalive(packet: ConnectPacket, config: BrokerConfig): number {
  const max = config.maxKeepalive;
  if (max !== 0 && (packet.keepalive === 0 || packet.keepalive > max)) return max;
  return packet.keepalive;
}

/** CONNACK properties for an accepted MQTT 5 client: every limit that differs from the default. */
export function connackProperties(
  packet: ConnectPacket,
  config: BrokerConfig,
  clientId: string,
  assignedClientId: string | null,
  expiry: number,
  keepalive: number,
): Properties {
  const p: Properties = {};
  const asked = packet.properties?.sessionExpiryInterval ?? 0;
  const granted = Number.isFinite(expiry) ? expiry : NEVER_EXPIRES;
  // Told only when it differs from what the client asked for (MQTT 5 section 3.2.2.3.2).
  if (granted !== asked) p.sessionExpiryInterval = granted;
  if (config.receiveMaximum !== 0xffff) p.receiveMaximum = config.receiveMaximum;
  p.maximumPacketSize = config.maxPacketSize;
  p.topicAliasMaximum = config.topicAliasMaximum;
  if (assignedClientId !== null) p.assignedClientIdentifier = assignedClientId;
  if (keepalive !== packet.keepalive) p.serverKeepAlive = keepalive;
  // Response information only when asked for [MQTT-3.1.2-28] and configured.
  if (packet.properties?.requestResponseInformation === true && config.responseInformation !== '') {
    p.responseInformation = config.responseInformation.replaceAll('%c', clientId);
  }
  return p;
}

/** The MQTT 5 reason code for a refusal known by its 3.1.1 return code. */
export function v5RefusalCode(returnCode: number): number {
  switch (returnCode) {
    case ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION:
      return ReasonCode.UNSUPPORTED_PROTOCOL_VERSION;
    case ConnackReturnCode.IDENTIFIER_REJECTED:
      return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID;
    case ConnackReturnCode.SERVER_UNAVAILABLE:
      return ReasonCode.SERVER_UNAVAILABLE;
    case ConnackReturnCode.BAD_USERNAME_OR_PASSWORD:
      return ReasonCode.BAD_USER_NAME_OR_PASSWORD;
    case ConnackReturnCode.NOT_AUTHORIZED:
      return ReasonCode.NOT_AUTHORIZED;
    default:
      return returnCode;
  }
}
