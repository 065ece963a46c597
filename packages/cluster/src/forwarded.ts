import type { QoS } from '@tern/protocol';

/**
 * A publish forwarded from the member that received it to another member (a routing worker of
 * this node, or another node) that has subscribers for it. One record is sent once per
 * interested member, never once per subscriber; the receiving member matches it against its
 * own subscriptions.
 */
/**
 * A `target` that starts with this character names a shared subscription group (the rest is
 * its `$share/...` filter): the receiving member delivers to one of its members of the group.
 * U+0000 never starts a client id (MQTT strings may not contain it [MQTT-1.5.4-2]).
 */
export const GROUP_TARGET = '\u0000';

export interface Forwarded {
  /**
   * Unique per node: memberIndex * 2**32 + counter, a non-negative safe integer. With the
   * node's id it lets a receiver drop a record it has already seen.
   */
  id: number;
  /** Date.now() on the member where the publish came in; last writer wins for retained messages. */
  time: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** Client id of the publisher; '' for the broker itself (e.g. $SYS, wills published for a dead node). */
  origin: string;
  /** MQTT 5 PUBLISH property bytes, passed through unparsed; null for none. */
  properties: Uint8Array | null;
  /**
   * '' to route by topic to the receiving member's subscribers; otherwise the client id of the
   * one session to deliver to (used while a session moves between members).
   */
  target: string;
  /** QoS to deliver with to `target`; meaningful only when target is not ''. */
  targetQos: QoS;
}
