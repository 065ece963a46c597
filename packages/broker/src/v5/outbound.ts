/**
 * The PUBLISH an MQTT 5 client is sent. Most deliveries share the message's MQTT 5 bytes;
 * one of its own is encoded when the recipient needs something only it gets: the expiry
 * interval left [MQTT-3.3.2-6], a topic alias (MQTT 5 section 3.3.2.3.4), or the identifiers
 * of its matching subscriptions [MQTT-3.3.4-3]. A packet above the client's maximum packet
 * size is never sent [MQTT-3.1.2-24].
 */
import { encodePublishV5, type QoS } from '@tern/protocol';
import { parseSharedFilter, topicMatchesFilter } from '@tern/router';
import { LARGE_PAYLOAD, type Message, type PublishTemplate, type Session, subscriptionId } from '@tern/session';
import type { V5State } from './v5-state.js';

/**
 * The bytes for this delivery, or null when they would be larger than the client allows (the
 * caller drops the delivery and counts it [MQTT-3.1.2-25]).
 */
export function v5Publish(
  v5: V5State,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
): PublishTemplate | null {
  const expiry = message.expiryInterval === 0 ? 0 : message.secondsLeft(Date.now());
  const ids = session.identifiedSubscriptions > 0 ? subscriptionIds(session, message.topic) : null;
  let alias = 0;
  let newAlias = false;
  if (v5.aliasMaximum > 0) {
    const aliases = v5.outAliases;
    const known = aliases?.get(message.topic);
    if (known !== undefined) alias = known;
    else if ((aliases?.size ?? 0) < v5.aliasMaximum) {
      alias = (aliases?.size ?? 0) + 1;
      newAlias = true;
    }
  }
  if (expiry === 0 && ids === null && alias === 0) {
    const shared = message.template5(qos, retain);
    return fits(shared, v5) ? shared : null;
  }
  const large = message.payload.length >= LARGE_PAYLOAD;
  const { bytes, idOffset } = encodePublishV5(
    {
      // A known alias stands for the topic; a new one is sent with it [MQTT-3.3.2-12].
      topic: alias !== 0 && !newAlias ? '' : message.topic,
      qos,
      retain,
      messageId: 0,
      payload: message.payload,
      ownProperties: message.properties,
      extras: { messageExpiryInterval: expiry, topicAlias: alias, subscriptionIdentifiers: ids },
    },
    large,
  );
  const own: PublishTemplate = { bytes, idOffset, payload: large ? message.payload : null };
  if (!fits(own, v5)) return null;
  if (newAlias) {
    v5.outAliases ??= new Map();
    v5.outAliases.set(message.topic, alias);
  }
  return own;
}

function fits(t: PublishTemplate, v5: V5State): boolean {
  return t.bytes.length + (t.payload === null ? 0 : t.payload.length) <= v5.maxPacketSize;
}

/** The identifiers of `session`'s subscriptions that match `topic`, or null for none. */
function subscriptionIds(session: Session, topic: string): number[] | null {
  let ids: number[] | null = null;
  for (const [filter, options] of session.subscriptions) {
    if (options < 64) continue;
    // A shared subscription's identifier too: its topic filter is what follows the share name.
    const shared = filter.startsWith('$share/') ? parseSharedFilter(filter) : null;
    const topicFilter = shared !== null && shared !== 'invalid' ? shared.filter : filter;
    if (!topicMatchesFilter(topicFilter, topic)) continue;
    ids ??= [];
    ids.push(subscriptionId(options));
  }
  return ids;
}
