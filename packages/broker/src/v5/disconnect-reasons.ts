/**
 * The DISCONNECT an MQTT 5 client is sent when the server closes its connection, so it knows
 * why [MQTT-3.14.2-1]; a 3.1.1 connection is just closed.
 */
import { ReasonCode } from '@tern/protocol';
import type { Client, CloseReason } from '../client.js';
import { encodeFor } from './fit.js';

/** The reason code for each way the server closes a connection. */
const REASON_CODES: Record<CloseReason, number> = {
  'client-disconnect': ReasonCode.NORMAL_DISCONNECTION,
  'disconnect-with-will': ReasonCode.DISCONNECT_WITH_WILL_MESSAGE,
  'socket-closed': ReasonCode.NORMAL_DISCONNECTION,
  'socket-error': ReasonCode.UNSPECIFIED_ERROR,
  'protocol-error': ReasonCode.PROTOCOL_ERROR,
  'keepalive-timeout': ReasonCode.KEEP_ALIVE_TIMEOUT,
  'connect-timeout': ReasonCode.MAXIMUM_CONNECT_TIME,
  takeover: ReasonCode.SESSION_TAKEN_OVER,
  'server-shutdown': ReasonCode.SERVER_SHUTTING_DOWN,
  'not-authorized': ReasonCode.NOT_AUTHORIZED,
  'internal-error': ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR,
};

export function reasonCodeFor(reason: CloseReason): number {
  return REASON_CODES[reason];
}

/**
 * The DISCONNECT bytes for `code`. A reason string goes along when the client did not turn
 * problem information off (DISCONNECT is one of the packets that may carry it either way,
 * [MQTT-3.1.2-29] names PUBLISH, CONNACK and DISCONNECT as exempt). `serverReference` names
 * another server for 0x9C/0x9D.
 */
export function disconnectBytes(
  client: Client,
  code: number,
  reasonString: string | null,
  serverReference: string | null = null,
): Buffer | null {
  const properties: { reasonString?: string; serverReference?: string } = {};
  if (reasonString !== null) properties.reasonString = reasonString;
  if (serverReference !== null) properties.serverReference = serverReference;
  return encodeFor(client, { cmd: 'disconnect', reasonCode: code, properties });
}
