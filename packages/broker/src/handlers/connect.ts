import { randomBytes } from 'node:crypto';
import { ConnackReturnCode, type ConnectPacket, encode, ReasonCode } from '@tern/protocol';
import type { Client } from '../client.js';
import type { Claim } from '../cluster-link.js';
import { resume } from '../delivery.js';
import { adoptMovedSession, currentBroker } from '../session-moves.js';
import type { RejectReason } from '../stats.js';

/**
 * CONNECT: checks the client id, takes over a live connection with the same id, picks up or
 * starts the session, answers CONNACK and resumes what the session had in flight.
 */
export function handleConnect(client: Client, packet: ConnectPacket): void {
  const broker = client.broker;
  client.version = packet.protocolVersion;
  if (packet.protocolVersion === 5) {
    // MQTT 5 sessions (properties, reason codes, flow control) are not served yet: refuse
    // cleanly with "unsupported protocol version" in MQTT 5 form rather than half-serve them.
    refuse(
      client,
      ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
      'unsupported-protocol-version',
      'MQTT 5 is not supported yet',
    );
    return;
  }
  let clientId = packet.clientId;
  if (clientId.length === 0) {
    // A zero-length id is only allowed with cleanSession=1, and then the server assigns one
    // [MQTT-3.1.3-6] [MQTT-3.1.3-7]; otherwise CONNACK 0x02 and close [MQTT-3.1.3-8].
    // MQTT 3.1 requires an id of 1..23 characters.
    if (!packet.clean || packet.protocolVersion === 3) {
      refuse(
        client,
        ConnackReturnCode.IDENTIFIER_REJECTED,
        'identifier-rejected',
        'zero-length client id without clean session',
      );
      return;
    }
    clientId = `tern-${randomBytes(9).toString('base64url')}`;
  }
  client.clientId = clientId;
  client.log = client.log.child({ clientId });

  const link = broker.link;
  if (link === null) {
    accept(client, packet);
    return;
  }
  // The client id is node-wide: wait for the supervisor to grant it (a holder on another
  // worker lets go first, and its session moves here). Packets that follow the CONNECT wait.
  client.state = 'connecting';
  client.heldPackets = [];
  link.claim(clientId, packet.clean).then(
    (claim) => claimed(client, packet, claim),
    (err: unknown) => client.onInternalError(err),
  );
}

/** The node granted the client id: take in a session that moved here, then accept. */
function claimed(client: Client, packet: ConnectPacket, claim: Claim): void {
  const broker = currentBroker(client);
  if (claim.session !== null) adoptMovedSession(broker, claim.session, claim.from);
  if (client.state === 'closed') {
    // The socket went away meanwhile. A session that moved here stays (offline); with a
    // clean start there is nothing to keep.
    if (!broker.sessions.has(client.clientId)) broker.link?.sessionGone(client.clientId);
    return;
  }
  accept(client, packet);
  const held = client.heldPackets ?? [];
  client.heldPackets = null;
  for (const next of held) {
    if (client.state !== 'connected') return;
    client.replay(next);
  }
}

/** Attaches the session, answers CONNACK and resumes what the session had in flight. */
function accept(client: Client, packet: ConnectPacket): void {
  const broker = client.broker;
  const clientId = client.clientId;
  const sessionPresent = broker.attach(client, clientId, packet.clean);
  const session = client.session as NonNullable<Client['session']>;
  session.will = packet.will ?? null;
  client.keepaliveMs = packet.keepalive * 1000;
  client.state = 'connected';
  broker.stats.clientsConnected++;
  if (broker.stats.clientsConnected > broker.stats.clientsMaximum) {
    broker.stats.clientsMaximum = broker.stats.clientsConnected;
  }
  broker.stats.messagesSent++;
  // Session present is 0 for a clean session [MQTT-3.2.2-1], 1 when a stored session was
  // resumed [MQTT-3.2.2-2], 0 when none existed [MQTT-3.2.2-3].
  client.conn.write(encode({ cmd: 'connack', sessionPresent, returnCode: 0 }, packet.protocolVersion));
  client.log.debug({ clean: packet.clean, keepalive: packet.keepalive, sessionPresent }, 'client connected');
  if (sessionPresent) resume(broker, session, client);
}

/** Answers CONNACK with a refusal (session present 0 [MQTT-3.2.2-4]) and closes. */
function refuse(client: Client, returnCode: number, reason: RejectReason, why: string): void {
  client.log.info({ returnCode }, `connection refused: ${why}`);
  client.closeReason ??= 'not-authorized';
  client.broker.stats.connectionsRejected[reason]++;
  client.broker.stats.messagesSent++;
  client.conn.write(encode({ cmd: 'connack', sessionPresent: false, returnCode }, client.version));
  client.conn.end();
}
