/**
 * What an MQTT 5 connection adds to a client: the limits the client set in its CONNECT and
 * the topic aliases of each direction. A 3.1.1 client has none of it (Client.v5 is null), so
 * it costs an idle 3.1.1 connection one field.
 */
import type { ConnectPacket } from '@tern/protocol';
import type { BrokerConfig } from '../config.js';

export class V5State {
  /** The largest packet the client takes [MQTT-3.1.2-24]; larger ones are dropped, counted. */
  maxPacketSize: number;
  /** The client's topic alias maximum: how many aliases Tern may set for it (0: none). */
  readonly aliasMaximum: number;
  /** Aliases Tern set on this connection, by topic (outbound) [MQTT-3.3.2-10]. */
  outAliases: Map<string, number> | null = null;
  /** Aliases the client set on this connection (inbound), by alias. */
  inAliases: Map<number, string> | null = null;
  /** False when the client asked for no reason strings or user properties on errors [MQTT-3.1.2-29]. */
  readonly problemInformation: boolean;
  /** The session expiry interval of the CONNECT (seconds): DISCONNECT may not raise it from 0. */
  readonly connectExpiry: number;
  /** Incoming QoS 1 PUBLISHes whose PUBACK is still waiting (for the store or the other members). */
  unackedQos1 = 0;
  /**
   * Incoming QoS 2 ids received on this connection and not yet released: the receive maximum
   * counts these, not ids left from an earlier connection (its quota starts afresh with each
   * connection, MQTT 5 section 4.9).
   */
  qos2Here: Set<number> | null = null;
  /** The receive maximum and topic alias maximum Tern announced in CONNACK (a reload changes later connections only). */
  readonly inReceiveMaximum: number;
  readonly inAliasMaximum: number;

  constructor(packet: ConnectPacket, config: BrokerConfig) {
    this.inReceiveMaximum = config.receiveMaximum;
    this.inAliasMaximum = config.topicAliasMaximum;
    const p = packet.properties;
    this.maxPacketSize = p?.maximumPacketSize ?? Number.POSITIVE_INFINITY;
    this.aliasMaximum = p?.topicAliasMaximum ?? 0;
    this.problemInformation = p?.requestProblemInformation !== false;
    this.connectExpiry = p?.sessionExpiryInterval ?? 0;
  }
}
