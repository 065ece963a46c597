import { encode, type QoS, SUBACK_FAILURE, type SubscribePacket } from '@tern/protocol';
import type { Session } from '@tern/session';
import type { SubscribeVerdict } from '../access/plugin.js';
import type { Client } from '../client.js';
import { limitHit } from '../limits/client-limits.js';
import { brokenTopicLimit, filterAllowed } from '../limits/topic-limits.js';
import { authorizeSubscribe } from './plugin-checks.js';
import { memberBarrier } from './publish.js';

/**
 * SUBSCRIBE: grant each filter (QoS as requested; 0x80 where refused), answer SUBACK with the
 * same packet id [MQTT-3.8.4-2], then send the retained messages that match each granted
 * filter [MQTT-3.3.1-6]. A filter already held is replaced and its retained messages are
 * sent again [MQTT-3.8.4-3]. A filter is refused (0x80) when it is a shared subscription,
 * when the ACL does not grant it (one read rule must cover it and no deny rule may), when it
 * is beyond maxTopicLength or maxTopicLevels, when the auth plug-in says no, and when it
 * would take the session past maxSubscriptions; the checks run in that order. With an ACL,
 * each delivery, retained ones included, is checked per topic (delivery.ts).
 */
export function handleSubscribe(client: Client, packet: SubscribePacket): void {
  const session = client.session;
  if (session === null) return;
  if (client.broker.access.plugin?.subscribeFn != null) {
    // Filters refused here already are not put to the plug-in.
    const local = packet.subscriptions.map((sub) => refusal(client, sub.topic, false) === null);
    authorizeSubscribe(client, packet, local, (verdicts) => grant(client, session, packet, verdicts));
    return;
  }
  grant(client, session, packet, null);
}

/** Why the broker itself refuses `filter`, or null; counted and logged when `count`. */
function refusal(client: Client, filter: string, count: boolean): string | null {
  if (filter.startsWith('$share/') || filter.startsWith('$queue/')) {
    // Shared subscriptions arrive with MQTT 5 support; refuse rather than half-serve them.
    return 'shared';
  }
  // The ACL grants a filter that one read rule covers whole and no deny rule does.
  if (client.acl !== null && !client.acl.canSubscribe(filter)) {
    if (count) {
      client.broker.stats.aclDenied.subscribe++;
      if (client.debugEnabled) client.log.debug({ filter }, 'subscription refused by the ACL');
    }
    return 'acl';
  }
  const config = client.broker.config;
  if (config.maxTopicLength !== 0 || config.maxTopicLevels !== 0) {
    const fits = count
      ? filterAllowed(client, filter)
      : brokenTopicLimit(filter, config.maxTopicLength, config.maxTopicLevels) === null;
    if (!fits) return 'topic-limit';
  }
  return null;
}

/** Grants or refuses each filter (with the plug-in's answers, when one was asked) and answers. */
function grant(
  client: Client,
  session: Session,
  packet: SubscribePacket,
  verdicts: readonly (SubscribeVerdict | null)[] | null,
): void {
  const broker = client.broker;
  const max = broker.config.maxSubscriptions;
  const granted: number[] = [];
  let newRoute = false;
  // A persistent session's subscriptions are kept cluster-wide (a node of a cluster).
  const journal = broker.journal;
  let stored = false;
  for (let i = 0; i < packet.subscriptions.length; i++) {
    const sub = packet.subscriptions[i] as SubscribePacket['subscriptions'][number];
    if (refusal(client, sub.topic, true) !== null) {
      granted.push(SUBACK_FAILURE);
      continue;
    }
    const verdict = verdicts?.[i] ?? null;
    if (verdict !== null && verdict.granted === SUBACK_FAILURE) {
      granted.push(SUBACK_FAILURE);
      continue;
    }
    const qos = (verdict === null ? sub.qos : verdict.granted) as QoS;
    // Replacing a filter the session holds does not add one.
    if (max !== 0 && session.subscriptions.size >= max && !session.subscriptions.has(sub.topic)) {
      if (limitHit(client, 'max-subscriptions')) {
        client.log.info(
          { limit: 'max-subscriptions', limitValue: max, filter: sub.topic },
          'subscription refused: maxSubscriptions reached',
        );
      }
      granted.push(SUBACK_FAILURE);
      continue;
    }
    if (broker.subscribe(session, sub.topic, qos)) newRoute = true;
    if (journal !== null && !session.isTransient) {
      journal.subscribed(session.clientId, sub.topic, qos);
      stored = true;
    }
    granted.push(qos);
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
  // message published anywhere after the SUBACK reaches this subscriber. A stored
  // subscription: once every node can queue for it.
  client.queueAck(answer, newRoute || stored ? memberBarrier(client) : null);
}
