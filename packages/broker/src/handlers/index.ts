import { type Packet, ProtocolError } from '@tern/protocol';
import type { Client } from '../client.js';
import { handleAuth, takenByConnectExchange } from './auth.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handlePingreq } from './pingreq.js';
import { handlePuback } from './puback.js';
import { handlePubcomp } from './pubcomp.js';
import { handlePublish } from './publish.js';
import { handlePubrec } from './pubrec.js';
import { handlePubrel } from './pubrel.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';

/**
 * The one dispatcher from packet to handler. A ProtocolError thrown here closes the
 * connection (the listener catches it and calls Client.onProtocolError).
 */
export function dispatch(client: Client, packet: Packet): void {
  // Packets decoded from the rest of a chunk after the connection was closed (a limit, a
  // DISCONNECT) are not the client's fault: ignore them.
  if (client.state === 'closed') return;
  // MQTT 5 enhanced authentication: before its CONNACK only AUTH and DISCONNECT may come.
  if (client.state === 'connecting' && takenByConnectExchange(client, packet)) return;
  if (client.heldPackets !== null || client.state === 'connecting') {
    // Something async decides an earlier packet (the CONNECT's credentials or client id
    // grant, the auth plug-in): keep the order, handle them after it.
    client.heldPackets?.push(packet);
    return;
  }
  if (client.state !== 'connected') {
    // The first packet from a client must be CONNECT [MQTT-3.1.0-1].
    if (packet.cmd !== 'connect') throw new ProtocolError('TERN_PROTO_FIRST_PACKET', packet.cmd);
    handleConnect(client, packet);
    return;
  }
  switch (packet.cmd) {
    case 'publish':
      handlePublish(client, packet);
      break;
    case 'puback':
      handlePuback(client, packet);
      break;
    case 'pubrec':
      handlePubrec(client, packet);
      break;
    case 'pubrel':
      handlePubrel(client, packet);
      break;
    case 'pubcomp':
      handlePubcomp(client, packet);
      break;
    case 'subscribe':
      handleSubscribe(client, packet);
      break;
    case 'unsubscribe':
      handleUnsubscribe(client, packet);
      break;
    case 'pingreq':
      handlePingreq(client);
      break;
    case 'disconnect':
      handleDisconnect(client, packet);
      break;
    case 'auth':
      handleAuth(client, packet);
      break;
    case 'connect':
      // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
      throw new ProtocolError('TERN_PROTO_SECOND_CONNECT');
    default:
      // Server-to-client packets (CONNACK, SUBACK, ...); AUTH from a 3.1.1 client fails to decode.
      throw new ProtocolError('TERN_PROTO_PACKET_TYPE', `${packet.cmd} is not sent by clients`);
  }
}
