/**
 * The MQTT 5 checks on an incoming PUBLISH before it is handled: its topic alias, and the
 * receive maximum Tern announced (QoS 1/2 PUBLISHes the client may have unacknowledged).
 */
import { type PublishPacket, ReasonCode } from '@tern/protocol';
import type { Client } from '../client.js';
import type { V5State } from './v5-state.js';

/**
 * Resolves or records the topic alias [MQTT-3.3.2-12]. Returns false when the PUBLISH broke
 * the rules; the connection is then closed with the reason.
 */
export function resolveTopicAlias(client: Client, v5: V5State, packet: PublishPacket): boolean {
  const alias = packet.properties?.topicAlias;
  if (alias === undefined) return true;
  if (alias > v5.inAliasMaximum) {
    // 0 is refused by the decoder; above the maximum we announced is 0x94 [MQTT-3.3.2-9].
    client.close('protocol-error', ReasonCode.TOPIC_ALIAS_INVALID, `topic alias ${alias} above the maximum`);
    return false;
  }
  if (packet.topic === '') {
    const topic = v5.inAliases?.get(alias);
    if (topic === undefined) {
      client.close('protocol-error', ReasonCode.PROTOCOL_ERROR, `topic alias ${alias} was never set`);
      return false;
    }
    packet.topic = topic;
    return true;
  }
  v5.inAliases ??= new Map();
  v5.inAliases.set(alias, packet.topic);
  return true;
}

/**
 * Whether one more QoS 1/2 PUBLISH stays within the receive maximum Tern announced; past it
 * the connection is closed with 0x93 [MQTT-3.3.4-8 (server side)].
 */
export function withinReceiveMaximum(client: Client, v5: V5State, packet: PublishPacket): boolean {
  const session = client.session;
  if (session === null) return true;
  const id = packet.messageId as number;
  // A resent QoS 2 id is not a new message in flight.
  if (packet.qos === 2 && session.incomingQos2.has(id)) return true;
  const unacknowledged = (v5.qos2Here?.size ?? 0) + v5.unackedQos1;
  if (unacknowledged < v5.inReceiveMaximum) {
    if (packet.qos === 2) {
      v5.qos2Here ??= new Set();
      v5.qos2Here.add(id);
    }
    return true;
  }
  client.close(
    'protocol-error',
    ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
    `more than ${v5.inReceiveMaximum} QoS 1/2 PUBLISHes unacknowledged`,
  );
  return false;
}
