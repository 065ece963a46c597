import type { PublishPacket } from '@tern/protocol';
import { Message } from '@tern/session';
import { writePuback, writePubrec } from '../acks.js';
import type { Client } from '../client.js';

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
  const qos = packet.qos;
  broker.stats.publishedByQos[qos]++;
  if (qos === 0) {
    route(client, packet);
    return;
  }
  const id = packet.messageId as number;
  // A retained message is acknowledged once every member holds its copy: a subscriber that
  // arrives on any worker after the PUBACK gets it. The barrier follows the routed copy.
  const gated = packet.retain && broker.link?.hasPeers === true;
  if (qos === 1) {
    if (gated) {
      route(client, packet);
      client.queueAck(() => writePuback(client.conn, id), memberBarrier(client));
      return;
    }
    if (client.gatedAcks === null) writePuback(client.conn, id);
    else client.queueAck(() => writePuback(client.conn, id), null);
    route(client, packet);
    return;
  }
  const ids = (client.session as NonNullable<Client['session']>).incomingQos2;
  const first = !ids.has(id);
  if (first) ids.add(id);
  if (gated && first) {
    route(client, packet);
    client.queueAck(() => writePubrec(client.conn, id), memberBarrier(client));
    return;
  }
  if (client.gatedAcks === null) writePubrec(client.conn, id);
  else client.queueAck(() => writePubrec(client.conn, id), null);
  if (first) route(client, packet);
}

/** Resolves once every other member has handled what this one sent so far (null: alone). */
export function memberBarrier(client: Client): Promise<void> | null {
  const link = client.broker.link;
  return link?.hasPeers ? link.barrier() : null;
}

function route(client: Client, packet: PublishPacket): void {
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
  client.broker.publish(new Message(packet.topic, packet.payload, packet.qos, packet.retain, client.clientId));
}
