import { type PublishPacket, ReasonCode } from '@tern/protocol';
import { Message } from '@tern/session';
import { writeAckWithReason, writePuback, writePubrec } from '../acks.js';
import type { Client } from '../client.js';
import type { ClusterLink, SessionJournal } from '../cluster-link.js';
import { spendPublishToken } from '../limits/publish-rate.js';
import { publishTopicAllowed } from '../limits/topic-limits.js';
import { resolveTopicAlias, withinReceiveMaximum } from '../v5/inbound-publish.js';
import { applyPublishProperties } from '../v5/message-properties.js';
import { authorizePublish } from './plugin-checks.js';

/**
 * An incoming PUBLISH. QoS 0 is routed; QoS 1 is PUBACKed and routed; QoS 2 is PUBRECed and
 * routed on first receipt of its id, and every repeat of the id before PUBREL is only PUBRECed
 * again, so the application sees it once [MQTT-4.3.3-2].
 *
 * The acknowledgement is written before the routed copies. Routing is synchronous, so the
 * message is already in every queue when the bytes leave; the order matters to a client that
 * subscribes to its own topic: with its PUBACK first, its next PUBLISH is not held by Nagle's
 * algorithm behind the PUBACK it sends for its own copy (a 40 ms delayed-ACK stall).
 */
export function handlePublish(client: Client, packet: PublishPacket): void {
  const broker = client.broker;
  broker.stats.publishedByQos[packet.qos]++;
  const v5 = client.v5;
  if (v5 !== null) {
    if (packet.properties?.subscriptionIdentifiers !== undefined) {
      // Only the server sends subscription identifiers in a PUBLISH [MQTT-3.3.4-6].
      client.close(
        'protocol-error',
        ReasonCode.PROTOCOL_ERROR,
        'a PUBLISH from a client may not carry a subscription identifier',
      );
      return;
    }
    if (!resolveTopicAlias(client, v5, packet)) return;
    if (packet.qos > 0 && !withinReceiveMaximum(client, v5, packet)) return;
  }
  const config = broker.config;
  if (
    (config.maxTopicLength !== 0 || config.maxTopicLevels !== 0) &&
    !publishTopicAllowed(client, packet.topic, 'PUBLISH')
  ) {
    return;
  }
  if (config.maxPublishRate !== 0) spendPublishToken(client, config.maxPublishRate);
  // The plug-in is asked only about what the ACL allows; without one this is a null check.
  if (broker.access.plugin?.publishFn != null && wouldRoute(client, packet)) {
    authorizePublish(client, packet);
    return;
  }
  acceptPublish(client, packet, true);
}

/**
 * Acknowledges and routes a PUBLISH; one the auth plug-in refused (`allowed` false) is
 * acknowledged all the same and dropped, as an ACL refusal is.
 */
export function acceptPublish(client: Client, packet: PublishPacket, allowed: boolean): void {
  const broker = client.broker;
  const qos = packet.qos;
  if (qos === 0) {
    route(client, packet, allowed);
    return;
  }
  if (client.v5 !== null && !(allowed && wouldRoute(client, packet))) {
    // MQTT 5 can say no: PUBACK/PUBREC 0x87, and the flow ends there (MQTT 5 section 3.4.2.1).
    refusePublish(client, packet);
    return;
  }
  if (broker.journal !== null) {
    acceptDurably(client, packet, allowed, broker.journal);
    return;
  }
  const id = packet.messageId as number;
  // A retained message is acknowledged once every member holds its copy: a subscriber that
  // arrives on any worker after the PUBACK gets it. The barrier follows the routed copy.
  const gated = packet.retain && broker.link?.hasPeers === true;
  if (qos === 1) {
    if (gated) {
      route(client, packet, allowed);
      queuePuback(client, id, memberBarrier(client));
      return;
    }
    if (client.gatedAcks === null) writePuback(client.conn, id);
    else client.queueAck(() => writePuback(client.conn, id), null);
    route(client, packet, allowed);
    return;
  }
  const session = client.session as NonNullable<Client['session']>;
  const first = !session.incomingQos2.has(id);
  if (first) session.addIncomingQos2(id);
  if (gated && first) {
    route(client, packet, allowed);
    client.queueAck(() => writePubrec(client.conn, id), memberBarrier(client));
    return;
  }
  if (client.gatedAcks === null) writePubrec(client.conn, id);
  else client.queueAck(() => writePubrec(client.conn, id), null);
  if (first) route(client, packet, allowed);
}

/**
 * A QoS 1/2 PUBLISH on a node of a cluster: routed first, acknowledged once the node's
 * gateway has stored it for every persistent session it must reach (DESIGN.md guarantee 1:
 * a PUBACK means the message survives the loss of this node); a retained one once every
 * member holds it.
 */
function acceptDurably(client: Client, packet: PublishPacket, allowed: boolean, journal: SessionJournal): void {
  const link = client.broker.link as ClusterLink;
  const id = packet.messageId as number;
  if (packet.qos === 1) {
    route(client, packet, allowed);
    queuePuback(client, id, packet.retain ? memberBarrier(client) : link.confirmForwarded());
    return;
  }
  const session = client.session as NonNullable<Client['session']>;
  const first = !session.incomingQos2.has(id);
  let wait: Promise<void> | null = null;
  if (first) {
    session.addIncomingQos2(id);
    // Kept until PUBREL, across nodes: a resend of the id on another node is not a new message.
    if (!session.isTransient) journal.incomingQos2(client.clientId, id, true);
    route(client, packet, allowed);
    wait = packet.retain ? memberBarrier(client) : link.confirmForwarded();
  }
  client.queueAck(() => writePubrec(client.conn, id), wait);
}

/**
 * A PUBACK written once `wait` resolves; meanwhile it counts against an MQTT 5 client's
 * receive maximum (the client may not send more than that many unacknowledged).
 */
function queuePuback(client: Client, id: number, wait: Promise<void> | null): void {
  const v5 = client.v5;
  if (v5 === null || (wait === null && client.gatedAcks === null)) {
    client.queueAck(() => writePuback(client.conn, id), wait);
    return;
  }
  v5.unackedQos1++;
  client.queueAck(() => {
    v5.unackedQos1--;
    writePuback(client.conn, id);
  }, wait);
}

/** MQTT 5: a PUBLISH the ACL or the auth plug-in refused is answered 0x87 and dropped. */
function refusePublish(client: Client, packet: PublishPacket): void {
  const acl = client.acl;
  if (acl !== null && !packet.topic.startsWith('$SYS') && !acl.canPublish(packet.topic)) {
    client.broker.stats.aclDenied.publish++;
  }
  if (client.debugEnabled) client.log.debug({ topic: packet.topic, qos: packet.qos }, 'publish refused: answered 0x87');
  const id = packet.messageId as number;
  // A PUBREC with an error ends the QoS 2 flow: no PUBREL will release the id.
  if (packet.qos === 2) client.v5?.qos2Here?.delete(id);
  const cmd = packet.qos === 1 ? 'puback' : 'pubrec';
  client.queueAck(() => writeAckWithReason(client.conn, cmd, id, ReasonCode.NOT_AUTHORIZED), null);
}

/** Resolves once every other member has handled what this one sent so far (null: alone). */
export function memberBarrier(client: Client): Promise<void> | null {
  const link = client.broker.link;
  return link?.hasPeers ? link.barrier() : null;
}

/** Whether route() would pass this PUBLISH on (not $SYS, allowed by the ACL). */
function wouldRoute(client: Client, packet: PublishPacket): boolean {
  return !packet.topic.startsWith('$SYS') && (client.acl === null || client.acl.canPublish(packet.topic));
}

function route(client: Client, packet: PublishPacket, allowed: boolean): void {
  // Clients may not write into the broker's own $SYS tree; such messages are acknowledged and
  // dropped, as Mosquitto does.
  if (packet.topic.startsWith('$SYS')) return;
  // A publish the ACL refuses is acknowledged all the same (3.1.1 has no way to say no) and
  // dropped. Without an ACL file this is one null check.
  const acl = client.acl;
  if (acl !== null && !acl.canPublish(packet.topic)) {
    client.broker.stats.aclDenied.publish++;
    if (client.debugEnabled) {
      client.log.debug({ topic: packet.topic, qos: packet.qos }, 'publish refused by the ACL: dropped');
    }
    return;
  }
  if (!allowed) return;
  const message = new Message(packet.topic, packet.payload, packet.qos, packet.retain, client.clientId);
  if (packet.properties !== undefined) applyPublishProperties(message, packet.properties);
  client.broker.publish(message);
}
