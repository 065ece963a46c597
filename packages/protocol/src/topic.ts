import { ProtocolError } from './errors.js';

const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const SLASH = 0x2f; // '/'

/**
 * A topic name (what PUBLISH carries) is at least one character [MQTT-4.7.3-1] and has no
 * wildcard characters [MQTT-3.3.2-2]. Returns the violation code instead of throwing so
 * callers that only ask (validation of config, ACL patterns) pay no exception.
 */
export function topicNameViolation(topic: string): 'TERN_PROTO_TOPIC_EMPTY' | 'TERN_PROTO_TOPIC_WILDCARD' | null {
  const n = topic.length;
  if (n === 0) return 'TERN_PROTO_TOPIC_EMPTY';
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return 'TERN_PROTO_TOPIC_WILDCARD';
  }
  return null;
}

/**
 * A topic filter is at least one character [MQTT-4.7.3-1]; '#' must be the last character
 * and alone in its level [MQTT-4.7.1-2]; '+' must be alone in its level [MQTT-4.7.1-3].
 */
export function topicFilterViolation(
  filter: string,
): 'TERN_PROTO_TOPIC_EMPTY' | 'TERN_PROTO_FILTER_HASH' | 'TERN_PROTO_FILTER_PLUS' | null {
  const n = filter.length;
  if (n === 0) return 'TERN_PROTO_TOPIC_EMPTY';
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === HASH) {
      if (i !== n - 1 || (i > 0 && filter.charCodeAt(i - 1) !== SLASH)) return 'TERN_PROTO_FILTER_HASH';
    } else if (c === PLUS) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH)) {
        return 'TERN_PROTO_FILTER_PLUS';
      }
    }
  }
  return null;
}

export function isValidTopicName(topic: string): boolean {
  return topicNameViolation(topic) === null;
}

export function isValidTopicFilter(filter: string): boolean {
  return topicFilterViolation(filter) === null;
}

export function assertTopicName(topic: string): void {
  const v = topicNameViolation(topic);
  if (v !== null) throw new ProtocolError(v, JSON.stringify(topic));
}

export function assertTopicFilter(filter: string): void {
  const v = topicFilterViolation(filter);
  if (v !== null) throw new ProtocolError(v, JSON.stringify(filter));
}
