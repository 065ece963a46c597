/**
 * Whether one topic name matches one topic filter, by the rules the subscription index
 * applies to many at once [MQTT-4.7.1-*]: '+' is one whole level, '#' (last) is the parent and
 * everything under it, and a filter starting with a wildcard never matches a '$' topic
 * [MQTT-4.7.2-1]. For a single pair (a session's own subscriptions), no trie is needed.
 */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 && (filter.charCodeAt(0) === 0x2b || filter.charCodeAt(0) === 0x23)) return false;
  let f = 0;
  let t = 0;
  const fl = filter.length;
  const tl = topic.length;
  while (f < fl) {
    const c = filter.charCodeAt(f);
    if (c === 0x23) return true;
    if (c === 0x2b) {
      // Skip one topic level.
      while (t < tl && topic.charCodeAt(t) !== 0x2f) t++;
      f++;
    } else {
      // A literal level: compare up to its end.
      while (f < fl && filter.charCodeAt(f) !== 0x2f) {
        if (t >= tl || topic.charCodeAt(t) !== filter.charCodeAt(f)) return false;
        f++;
        t++;
      }
      if (t < tl && topic.charCodeAt(t) !== 0x2f) return false;
    }
    if (f >= fl) return t >= tl;
    // Both at a '/': step over it. 'a/#' matches 'a' too [MQTT-4.7.1-2].
    if (t >= tl) return filter.charCodeAt(f + 1) === 0x23 && f + 2 === fl;
    f++;
    t++;
  }
  return t >= tl;
}
