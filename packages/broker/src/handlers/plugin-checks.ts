/**
 * Asking the auth plug-in about a PUBLISH or a SUBSCRIBE. Its answer is async, so the packets
 * that follow are held (and the socket is not read) until it comes: a client's packets are
 * handled in the order they were sent, whatever the plug-in takes [MQTT-4.6.0-6]. A refusal
 * has the outcome of an ACL refusal: a PUBLISH is acknowledged and dropped, a filter gets
 * 0x80. Only clients of a broker with a plug-in come here; the others never build a promise.
 */
import type { PublishPacket, SubscribePacket } from '@tern/protocol';
import type { AuthPlugin, SubscribeVerdict } from '../access/plugin.js';
import type { Client } from '../client.js';
import type { PluginAction } from '../stats.js';
import { acceptPublish } from './publish.js';

/** Clients whose plug-in failure was logged at warn: one such line per connection. */
const failureLogged = new WeakSet<Client>();

export function authorizePublish(client: Client, packet: PublishPacket): void {
  const plugin = client.broker.access.plugin as AuthPlugin;
  client.holdPackets();
  const request = {
    clientId: client.clientId,
    username: client.username,
    topic: packet.topic,
    qos: packet.qos,
    retain: packet.retain,
  };
  void plugin.authorizePublish(request).then((verdict) => {
    if (client.state !== 'connected') return;
    if (!verdict.allow) refused(client, 'publish', verdict, { topic: packet.topic, qos: packet.qos });
    proceed(client, () => acceptPublish(client, packet, verdict.allow));
  });
}

/**
 * Asks about every filter of `packet` that `asked` marks (the others are refused by the broker
 * already), then calls `grant` with one answer per filter (null where not asked).
 */
export function authorizeSubscribe(
  client: Client,
  packet: SubscribePacket,
  asked: readonly boolean[],
  grant: (verdicts: readonly (SubscribeVerdict | null)[]) => void,
): void {
  const plugin = client.broker.access.plugin as AuthPlugin;
  client.holdPackets();
  const answers = packet.subscriptions.map((sub, i) =>
    asked[i] === true
      ? plugin.authorizeSubscribe({
          clientId: client.clientId,
          username: client.username,
          filter: sub.topic,
          qos: sub.qos,
        })
      : null,
  );
  void Promise.all(answers).then((verdicts) => {
    if (client.state !== 'connected') return;
    verdicts.forEach((verdict, i) => {
      if (verdict !== null && verdict.granted === 0x80) {
        refused(client, 'subscribe', verdict, { filter: packet.subscriptions[i]?.topic });
      }
    });
    proceed(client, () => grant(verdicts));
  });
}

/** Handles the decided packet, then the packets held behind it. */
function proceed(client: Client, step: () => void): void {
  try {
    step();
  } catch (err) {
    // A bug must cost this one connection, as it would for a packet straight off the socket.
    client.onInternalError(err);
    client.conn.destroy(err as Error);
    return;
  }
  client.releaseHeld();
}

/** Counts a refusal; a failure (throw, timeout) logs at warn once per connection. */
function refused(
  client: Client,
  action: PluginAction,
  verdict: { failed: boolean; reason: string },
  fields: Record<string, unknown>,
): void {
  const stats = client.broker.stats;
  stats.pluginDenied[action]++;
  if (verdict.failed) {
    stats.pluginFailures[action]++;
    if (!failureLogged.has(client)) {
      failureLogged.add(client);
      client.log.warn({ ...fields, why: verdict.reason }, `auth plug-in failed: ${action} refused`);
      return;
    }
  }
  if (client.debugEnabled) {
    const outcome =
      action === 'publish'
        ? 'publish refused by the auth plug-in: dropped'
        : 'subscription refused by the auth plug-in';
    client.log.debug({ ...fields, why: verdict.reason || undefined }, outcome);
  }
}
