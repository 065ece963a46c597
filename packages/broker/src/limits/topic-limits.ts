/**
 * maxTopicLength and maxTopicLevels. Production brokers treat them the same way (EMQX's
 * max_topic_length / max_topic_levels, HiveMQ's topic length limit): a PUBLISH topic beyond
 * them is a topic name the server will not take, so the connection is closed as a protocol
 * violation (MQTT 5 would say 0x90 Topic Name invalid); a SUBSCRIBE filter beyond them is
 * refused with 0x80 while the connection stays.
 */
import type { Client } from '../client.js';
import { limitHit } from './client-limits.js';

export type TopicLimit = 'max-topic-length' | 'max-topic-levels';

/**
 * Which limit `topic` breaks, or null; 0 means unlimited. Allocates nothing, and costs a
 * scan only for topics long enough to break one.
 */
export function brokenTopicLimit(topic: string, maxLength: number, maxLevels: number): TopicLimit | null {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: shorter topics cannot be too long.
  if (maxLength !== 0 && topic.length * 3 > maxLength) {
    if (topic.length > maxLength || Buffer.byteLength(topic, 'utf8') > maxLength) return 'max-topic-length';
  }
  // n characters hold at most n + 1 levels.
  if (maxLevels !== 0 && topic.length >= maxLevels) {
    let levels = 1;
    for (let at = topic.indexOf('/'); at !== -1; at = topic.indexOf('/', at + 1)) levels++;
    if (levels > maxLevels) return 'max-topic-levels';
  }
  return null;
}

/** The config key of each limit, for log lines. */
const KEY: Readonly<Record<TopicLimit, 'maxTopicLength' | 'maxTopicLevels'>> = {
  'max-topic-length': 'maxTopicLength',
  'max-topic-levels': 'maxTopicLevels',
};

/**
 * Checks a topic the client wants to publish to (a PUBLISH, or a will at CONNECT). Beyond a
 * limit the connection is closed as a protocol violation, with one line; returns false then.
 */
export function publishTopicAllowed(client: Client, topic: string, what: 'PUBLISH' | 'will'): boolean {
  const config = client.broker.config;
  const broken = brokenTopicLimit(topic, config.maxTopicLength, config.maxTopicLevels);
  if (broken === null) return true;
  const stats = client.broker.stats;
  stats.protocolErrors++;
  stats.limitsHit[broken]++;
  client.closeReason ??= 'protocol-error';
  // The connection ends here, so this is its one line.
  client.log.warn(
    { limit: broken, limitValue: config[KEY[broken]], topicChars: topic.length },
    `closing connection: ${what} topic beyond ${KEY[broken]}`,
  );
  client.close('protocol-error');
  return false;
}

/** Checks a SUBSCRIBE filter: beyond a limit it gets 0x80 (one line per connection). */
export function filterAllowed(client: Client, filter: string): boolean {
  const config = client.broker.config;
  const broken = brokenTopicLimit(filter, config.maxTopicLength, config.maxTopicLevels);
  if (broken === null) return true;
  if (limitHit(client, broken)) {
    client.log.info(
      { limit: broken, limitValue: config[KEY[broken]], filterChars: filter.length },
      `subscription refused: filter beyond ${KEY[broken]}`,
    );
  }
  return false;
}
