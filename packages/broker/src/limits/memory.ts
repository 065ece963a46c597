/**
 * What a routing worker does while the node is above memoryHighWaterMark (node-limits.ts
 * decides when that is): new CONNECTs are answered 0x03 "server unavailable", and QoS 0
 * deliveries are shed (delivery.ts), so the memory already in use can drain.
 */
import { ConnackReturnCode, encode, ReasonCode } from '@tern/protocol';
import type { Client } from '../client.js';

/** Answers CONNACK 0x03 and closes; counted, never logged one by one (a flood would flood the log). */
export function refuseWhileMemoryHigh(client: Client): void {
  const stats = client.broker.stats;
  stats.connectionsRejected['server-unavailable']++;
  stats.limitsHit['memory-high-water-mark']++;
  client.heldPackets = null;
  client.closeReason ??= 'not-authorized';
  if (client.debugEnabled) client.log.debug('connection refused: memory above memoryHighWaterMark');
  // MQTT 5 has its own code for it: server busy.
  const returnCode = client.version === 5 ? ReasonCode.SERVER_BUSY : ConnackReturnCode.SERVER_UNAVAILABLE;
  client.conn.write(encode({ cmd: 'connack', sessionPresent: false, returnCode }, client.version));
  client.conn.end();
}
