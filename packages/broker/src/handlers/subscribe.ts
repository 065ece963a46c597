import { encode, type QoS, SUBACK_FAILURE, type SubscribePacket } from '@tern/protocol';
import type { Client } from '../client.js';
import { memberBarrier } from './publish.js';

/**
 * SUBSCRIBE: grant each filter (QoS as requested; 0x80 where refused), answer SUBACK with the
 * same packet id [MQTT-3.8.4-2], then send the retained messages that match each granted
 * filter [MQTT-3.3.1-6]. A filter already held is replaced and its retained messages are
 * sent again [MQTT-3.8.4-3]. With an ACL, a filter is refused (0x80) unless one read rule
 * covers it and no deny rule covers it; each delivery, retained ones included, is checked
 * per topic (delivery.ts).
 */
export function handleSubscribe(client: Client, packet: SubscribePacket): void {
  const session = client.session;
  if (session === null) return;
  const broker = client.broker;
  const granted: number[] = [];
  let newRoute = false;
  for (const sub of packet.subscriptions) {
    if (sub.topic.startsWith('$share/') || sub.topic.startsWith('$queue/')) {
      // Shared subscriptions arrive with MQTT 5 support; refuse rather than half-serve them.
      granted.push(SUBACK_FAILURE);
      continue;
    }
    // The ACL grants a filter that one read rule covers whole and no deny rule does.
    if (client.acl !== null && !client.acl.canSubscribe(sub.topic)) {
      broker.stats.aclDenied.subscribe++;
      if (client.debugEnabled) client.log.debug({ filter: sub.topic }, 'subscription refused by the ACL');
      granted.push(SUBACK_FAILURE);
      continue;
    }
    if (broker.subscribe(session, sub.topic, sub.qos)) newRoute = true;
    granted.push(sub.qos);
  }
  const suback = encode({ cmd: 'suback', messageId: packet.messageId, granted }, client.version);
  const answer = (): void => {
    client.conn.write(suback);
    for (let i = 0; i < packet.subscriptions.length; i++) {
      const g = granted[i] as number;
      if (g !== SUBACK_FAILURE) {
        client.broker.sendRetained(session, (packet.subscriptions[i] as { topic: string }).topic, g as QoS);
      }
    }
  };
  // A new filter for this member: SUBACK once every other member routes it here, so a
  // message published anywhere after the SUBACK reaches this subscriber.
  client.queueAck(answer, newRoute ? memberBarrier(client) : null);
}
