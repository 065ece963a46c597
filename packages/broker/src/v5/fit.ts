/**
 * Every packet sent to an MQTT 5 client stays within the maximum packet size it announced
 * [MQTT-3.1.2-24]: what is only informative (a reason string, user properties) is left out
 * when that makes it fit [MQTT-3.2.2-19] [MQTT-3.14.2-3] [MQTT-3.15.2-2]; a packet that still
 * does not fit is not sent (and counted). A 3.1.1 client gets the packet as it is.
 */
import { encode, type Packet, type Properties } from '@tern/protocol';
import type { Client } from '../client.js';

/** The bytes of `packet` for `client`, or null when it cannot fit the client's limit. */
export function encodeFor(client: Client, packet: Packet): Buffer | null {
  const bytes = encode(packet, client.version);
  const v5 = client.v5;
  if (v5 === null || bytes.length <= v5.maxPacketSize) return bytes;
  const props = (packet as { properties?: Properties }).properties;
  if (props !== undefined && (props.reasonString !== undefined || props.userProperties !== undefined)) {
    const { reasonString: _reason, userProperties: _user, ...rest } = props;
    const slim = encode({ ...packet, properties: rest } as Packet, client.version);
    if (slim.length <= v5.maxPacketSize) return slim;
  }
  client.broker.stats.droppedTooLarge++;
  return null;
}

/** Writes `packet` to `client` when it fits (see encodeFor); returns whether it was written. */
export function writeFor(client: Client, packet: Packet): boolean {
  const bytes = encodeFor(client, packet);
  if (bytes === null) return false;
  client.conn.write(bytes);
  return true;
}
