/**
 * What a routing worker does while the node is above memoryHighWaterMark (node-limits.ts
 * decides when that is): new CONNECTs are answered 0x03 "server unavailable", and QoS 0
 * deliveries are shed (delivery.ts), so the memory already in use can drain.
 */
import { ConnackReturnCode, encode, ReasonCode } from '@tern/protocol';
import type { Client } from '../client.js';
import { writeFor } from '../v5/fit.js';

/** Answers CONNACK 0x03 and closes; counted, never logged one by one (a flood would flood the log). */
export function refuseWhileMemoryHigh(client: Client): void {
  const stats = client.broker.stats;
  stats.connectionsRejected['server-unavailable']++;
  stats.limitsHit['memory-high-water-mark']++;
  client.heldPackets = null;
  client.closeReason ??= 'not-authorized';
  if (client.debugEnabled) client.log.debug('connection refused: memory above memoryHighWaterMark');
  if (client.v5 !== null) {
    // MQTT 5 has its own code for it (server busy), or sends the client to another server
    // when one is configured (0x9C, or 0x9D when this one has moved for good).
    const reference = client.broker.config.serverReference;
    const moved = client.broker.config.serverMoved ? ReasonCode.SERVER_MOVED : ReasonCode.USE_ANOTHER_SERVER;
    const returnCode = reference === '' ? ReasonCode.SERVER_BUSY : moved;
    const properties = reference === '' ? undefined : { serverReference: reference };
    writeFor(client, { cmd: 'connack', sessionPresent: false, returnCode, properties });
  } else {
    const returnCode = ConnackReturnCode.SERVER_UNAVAILABLE;
    client.conn.write(encode({ cmd: 'connack', sessionPresent: false, returnCode }, client.version));
  }
  client.conn.end();
}
