import { ProtocolError, type QoS, ReasonCode, SUBACK_FAILURE, type SubscribePacket } from '@tern/protocol';
import { parseSharedFilter } from '@tern/router';
import { packOptions, type Session } from '@tern/session';
import type { SubscribeVerdict } from '../access/plugin.js';
import type { Client } from '../client.js';
import { limitHit } from '../limits/client-limits.js';
import { brokenTopicLimit, filterAllowed } from '../limits/topic-limits.js';
import { encodeFor } from '../v5/fit.js';
import { authorizeSubscribe } from './plugin-checks.js';
import { memberBarrier } from './publish.js';

/**
 * SUBSCRIBE: grant each filter (QoS as requested; 0x80, or the MQTT 5 reason code, where
 * refused), answer SUBACK with the same packet id [MQTT-3.8.4-2], then send the retained
 * messages that match each granted filter [MQTT-3.3.1-6] (MQTT 5 retain handling permitting;
 * never for a shared subscription). A filter already held is replaced and its retained
 * messages are sent again [MQTT-3.8.4-3]. A filter is refused when it is a malformed shared
 * subscription or `$queue/`, when the ACL does not grant it (one read rule must cover it and
 * no deny rule may; a shared subscription's topic filter is what is checked), when it is
 * beyond maxTopicLength or maxTopicLevels, when the auth plug-in says no, and when it would
 * take the session past maxSubscriptions; the checks run in that order. With an ACL, each
 * delivery, retained ones included, is checked per topic (delivery.ts).
 */
export function handleSubscribe(client: Client, packet: SubscribePacket): void {
  const session = client.session;
  if (session === null) return;
  for (const sub of packet.subscriptions) {
    // No local on a shared subscription is a protocol error [MQTT-3.8.3-4].
    if (sub.noLocal === true && sub.topic.startsWith('$share/')) {
      throw new ProtocolError('TERN_PROTO_SHARED_NO_LOCAL', sub.topic);
    }
  }
  if (client.broker.access.plugin?.subscribeFn != null) {
    // Filters refused here already are not put to the plug-in.
    const local = packet.subscriptions.map((sub) => refusal(client, sub.topic, false) === null);
    authorizeSubscribe(client, packet, local, (verdicts) => grant(client, session, packet, verdicts));
    return;
  }
  grant(client, session, packet, null);
}

type Refusal = 'unsupported' | 'invalid-share' | 'acl' | 'topic-limit';

/** The MQTT 5 SUBACK reason code for each refusal (MQTT 5 section 3.9.3). */
const V5_REFUSALS: Record<Refusal, number> = {
  unsupported: ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
  'invalid-share': ReasonCode.TOPIC_FILTER_INVALID,
  acl: ReasonCode.NOT_AUTHORIZED,
  'topic-limit': ReasonCode.TOPIC_FILTER_INVALID,
};

/**
 * Why the broker itself refuses `full`, or null; counted and logged when `count`. A shared
 * subscription's share name is checked here; its topic filter meets the ACL and the limits
 * like any other.
 */
function refusal(client: Client, full: string, count: boolean): Refusal | null {
  // EMQX's older `$queue/` prefix is not taken: `$share/` is the standard one.
  if (full.startsWith('$queue/')) return 'unsupported';
  const shared = parseSharedFilter(full);
  if (shared === 'invalid') return 'invalid-share';
  const filter = shared === null ? full : shared.filter;
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
  /** Per filter: whether its retained messages are sent (MQTT 5 retain handling). */
  const sendRetained: boolean[] = [];
  let newRoute = false;
  // A persistent session's subscriptions are kept cluster-wide (a node of a cluster).
  const journal = broker.journal;
  let stored = false;
  const v5 = client.v5 !== null;
  // MQTT 5: one subscription identifier for every filter of the packet (MQTT 5 section 3.8.2.1.2).
  const subscriptionId = v5 ? (packet.properties?.subscriptionIdentifiers?.[0] ?? 0) : 0;
  for (let i = 0; i < packet.subscriptions.length; i++) {
    const sub = packet.subscriptions[i] as SubscribePacket['subscriptions'][number];
    sendRetained.push(false);
    const refused = refusal(client, sub.topic, true);
    if (refused !== null) {
      granted.push(v5 ? V5_REFUSALS[refused] : SUBACK_FAILURE);
      continue;
    }
    const verdict = verdicts?.[i] ?? null;
    if (verdict !== null && verdict.granted === SUBACK_FAILURE) {
      granted.push(v5 ? ReasonCode.NOT_AUTHORIZED : SUBACK_FAILURE);
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
      granted.push(v5 ? ReasonCode.QUOTA_EXCEEDED : SUBACK_FAILURE);
      continue;
    }
    const shared = sub.topic.startsWith('$share/');
    const existed = session.subscriptions.has(sub.topic);
    const options = packOptions({
      qos,
      noLocal: sub.noLocal === true,
      retainAsPublished: sub.retainAsPublished === true,
      retainHandling: sub.retainHandling ?? 0,
      subscriptionId,
    });
    if (broker.subscribe(session, sub.topic, options)) newRoute = true;
    if (journal !== null && !session.isTransient) {
      journal.subscribed(session.clientId, sub.topic, options);
      stored = true;
    }
    granted.push(qos);
    // Retain handling: 0 send, 1 send only for a new subscription, 2 never [MQTT-3.3.1-9..11].
    const handling = sub.retainHandling ?? 0;
    // A shared subscription gets no retained messages when it is made (MQTT 5 section 4.8.2).
    sendRetained[i] = !shared && (handling === 0 || (handling === 1 && !existed));
  }
  const suback = encodeFor(client, { cmd: 'suback', messageId: packet.messageId, granted });
  const answer = (): void => {
    if (suback !== null) client.conn.write(suback);
    for (let i = 0; i < packet.subscriptions.length; i++) {
      if (sendRetained[i] === true) {
        const g = granted[i] as QoS;
        client.broker.sendRetained(session, (packet.subscriptions[i] as { topic: string }).topic, g);
      }
    }
  };
  // A new filter for this member: SUBACK once every other member routes it here, so a
  // message published anywhere after the SUBACK reaches this subscriber. A stored
  // subscription: once every node can queue for it.
  client.queueAck(answer, newRoute || stored ? memberBarrier(client) : null);
}
