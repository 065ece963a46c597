import { PINGRESP_BYTES } from '@tern/protocol';
import type { Client } from '../client.js';

/** PINGREQ -> PINGRESP [MQTT-3.12.4-1]; receiving it already refreshed the keepalive. */
export function handlePingreq(client: Client): void {
  client.conn.write(PINGRESP_BYTES);
}
