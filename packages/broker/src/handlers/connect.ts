import { randomBytes } from 'node:crypto';
import { ConnackReturnCode, type ConnectPacket, encode, ReasonCode } from '@tern/protocol';
import type { AuthOutcome } from '../access/access.js';
import { certificateUser } from '../access/certificate-user.js';
import type { Client } from '../client.js';
import type { Claim } from '../cluster-link.js';
import { resume } from '../delivery.js';
import { refuseWhileMemoryHigh } from '../limits/memory.js';
import { publishTopicAllowed } from '../limits/topic-limits.js';
import { adoptArriving, adoptMovedSession, currentBroker } from '../session-moves.js';
import type { RejectReason } from '../stats.js';
import { decodeStoredSession } from '../stored-session-transfer.js';
import { connackProperties, grantedExpiry, grantedKeepalive, v5RefusalCode } from '../v5/connack.js';
import { addConnackAuth, startEnhancedAuth } from '../v5/enhanced-auth.js';
import { writeFor } from '../v5/fit.js';
import { V5State } from '../v5/v5-state.js';

/**
 * CONNECT: checks the client id and the credentials (password file, anonymous rule, will
 * topic against the ACL), takes over a live connection with the same id, picks up or starts
 * the session, answers CONNACK and resumes what the session had in flight.
 */
export function handleConnect(client: Client, packet: ConnectPacket): void {
  const broker = client.broker;
  client.version = packet.protocolVersion;
  if (packet.protocolVersion === 5) client.v5 = new V5State(packet, broker.config);
  // Above memoryHighWaterMark: refused before any work is spent on it (counted, not logged:
  // the node logs when the state starts and ends).
  if (broker.memoryHigh) {
    refuseWhileMemoryHigh(client);
    return;
  }
  let clientId = packet.clientId;
  if (clientId.length === 0) {
    // A zero-length id is only allowed with cleanSession=1 in 3.1.1, and then the server
    // assigns one [MQTT-3.1.3-6] [MQTT-3.1.3-7]; otherwise CONNACK 0x02 and close
    // [MQTT-3.1.3-8]. MQTT 3.1 requires an id of 1..23 characters. MQTT 5 assigns one with
    // or without clean start and says which in CONNACK [MQTT-3.2.2-16].
    if ((!packet.clean && packet.protocolVersion !== 5) || packet.protocolVersion === 3) {
      refuse(
        client,
        ConnackReturnCode.IDENTIFIER_REJECTED,
        'identifier-rejected',
        'zero-length client id without clean session',
      );
      return;
    }
    clientId = `tern-${randomBytes(9).toString('base64url')}`;
    client.assignedClientId = clientId;
  }
  client.identify(clientId);
  // A will is a PUBLISH made in advance: its topic meets the same limits.
  if (packet.will !== undefined && !publishTopicAllowed(client, packet.will.topic, 'will')) return;

  if (packet.properties?.authenticationMethod !== undefined) {
    // MQTT 5 enhanced authentication: the auth plug-in's authenticateEnhanced decides, in AUTH
    // exchanges, instead of the password file and authenticate (v5/enhanced-auth.ts).
    startEnhancedAuth(client, packet, (outcome) => authenticated(client, packet, outcome));
    return;
  }
  // tlsCnAsUsername: a client certificate verified against tlsCa names the user, no password
  // needed (the CONNECT's user name is ignored).
  const certUser = broker.config.tlsCnAsUsername ? certificateUser(client.conn.socket) : null;
  const remote = client.conn.socket.remoteAddress;
  const outcome =
    certUser !== null
      ? broker.access.authenticateCertificate(remote, certUser, clientId)
      : broker.access.authenticate(remote, packet.username, packet.password, clientId);
  if (outcome instanceof Promise) {
    // A password check (scrypt, in libuv's pool) or the delay for an address that failed
    // recently: packets that follow the CONNECT wait, and the socket is not read meanwhile,
    // so a client cannot pile up input before it is let in.
    client.state = 'connecting';
    client.heldPackets = [];
    client.conn.socket.pause();
    if (client.debugEnabled) client.log.debug({ username: packet.username }, 'checking credentials');
    outcome
      .then((result) => {
        client.conn.socket.resume();
        authenticated(client, packet, result);
      })
      .catch((err: unknown) => {
        client.onInternalError(err);
        client.conn.destroy(err as Error);
      });
    return;
  }
  authenticated(client, packet, outcome);
}

/** The credentials were checked: refuse, or check the will against the ACL and go on. */
function authenticated(client: Client, packet: ConnectPacket, outcome: AuthOutcome): void {
  if (client.state === 'closed') return;
  const broker = client.broker;
  if (!outcome.ok) {
    if (outcome.plugin !== undefined) {
      broker.stats.pluginDenied.connect++;
      if (outcome.plugin === 'failed') broker.stats.pluginFailures.connect++;
    }
    const method = packet.properties?.authenticationMethod;
    const fields = { username: packet.username, method, delayedMs: outcome.delayedMs || undefined };
    refuse(client, outcome.returnCode, outcome.reason, outcome.why, fields);
    return;
  }
  client.username = outcome.user;
  const rules = broker.access.acl;
  const acl = rules === null ? null : rules.compile(outcome.user, client.clientId);
  client.acl = acl;
  // A will is a publish made in advance: its topic is checked now, so a client learns at
  // once that it cannot have it (and again when it fires, in case a reload revoked it).
  const will = packet.will;
  if (will !== undefined && acl !== null && !acl.canPublish(will.topic)) {
    broker.stats.aclDenied.will++;
    const fields = { username: packet.username, willTopic: will.topic };
    refuse(client, ConnackReturnCode.NOT_AUTHORIZED, 'not-authorized', 'the ACL does not allow the will topic', fields);
    return;
  }
  if (!connackFits(client, packet)) {
    // MQTT 5: a CONNACK larger than the client's maximum packet size is never sent
    // [MQTT-3.1.2-24], and without one the client would wait for ever: refused before its
    // session is touched, with a CONNACK 0x95 bare enough to fit.
    const fields = { maximumPacketSize: client.v5?.maxPacketSize };
    const why = 'the CONNACK would be larger than the client’s maximum packet size';
    refuse(client, ReasonCode.PACKET_TOO_LARGE, 'packet-too-large', why, fields);
    return;
  }
  const link = broker.link;
  if (link === null) {
    accept(client, packet);
    replayHeld(client);
    return;
  }
  // The client id is node-wide: wait for the supervisor to grant it (a holder on another
  // worker lets go first, and its session moves here). Packets that follow the CONNECT wait.
  client.state = 'connecting';
  client.heldPackets ??= [];
  link.claim(client.clientId, packet.clean, grantedExpiry(packet, broker.config)).then(
    (claim) => claimed(client, packet, claim),
    (err: unknown) => client.onInternalError(err),
  );
}

/** The node granted the client id: take in a session that moved here, then accept. */
function claimed(client: Client, packet: ConnectPacket, claim: Claim): void {
  const broker = currentBroker(client);
  if (claim.refused !== null) {
    if (client.state === 'closed') return;
    // The id cannot be taken cluster-wide without Redis: refuse clearly, lose nothing.
    refuse(
      client,
      ConnackReturnCode.SERVER_UNAVAILABLE,
      'server-unavailable',
      `the cluster cannot take the client id (${claim.refused})`,
    );
    return;
  }
  if (claim.session !== null) {
    // A session read from the store arrives like one moved from another worker, with the
    // gateway as its old holder: what reaches it directly is held until the gateway has sent
    // what was queued in the store after it was read (see NodeGateway.catchUp).
    if (claim.from === -1) {
      const gateway = broker.link?.gatewayMember ?? -1;
      adoptArriving(broker, decodeStoredSession(claim.session, broker.sessionLimits), gateway);
    } else {
      adoptMovedSession(broker, claim.session, claim.from);
    }
  }
  if (client.state === 'closed') {
    // The socket went away meanwhile. A session that moved here stays (offline); with a
    // clean start there is nothing to keep.
    if (!broker.sessions.has(client.clientId)) broker.link?.sessionGone(client.clientId);
    return;
  }
  accept(client, packet);
  replayHeld(client);
}

/**
 * Whether the CONNACK accepting `packet` fits the MQTT 5 client's maximum packet size
 * [MQTT-3.1.2-24]; its size does not depend on the session (session present is a flag).
 */
function connackFits(client: Client, packet: ConnectPacket): boolean {
  const v5 = client.v5;
  if (v5 === null || v5.maxPacketSize === Number.POSITIVE_INFINITY) return true;
  const config = client.broker.config;
  const expiry = grantedExpiry(packet, config);
  const keepalive = grantedKeepalive(packet, config);
  const properties = connackProperties(packet, config, client.clientId, client.assignedClientId, expiry, keepalive);
  if (packet.properties?.authenticationMethod !== undefined) addConnackAuth(client, properties, true);
  const bytes = encode({ cmd: 'connack', sessionPresent: false, returnCode: 0, properties }, 5);
  return bytes.length <= v5.maxPacketSize;
}

/** Handles, in order, the packets that waited behind the CONNECT. */
function replayHeld(client: Client): void {
  const held = client.heldPackets;
  if (held === null) return;
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
  const expiry = grantedExpiry(packet, broker.config);
  const sessionPresent = broker.attach(client, clientId, packet.clean, expiry);
  const session = client.session as NonNullable<Client['session']>;
  session.will = packet.will ?? null;
  // The client takes at most this many QoS 1/2 PUBLISHes unacknowledged [MQTT-3.3.4-9].
  session.receiveMaximum = packet.properties?.receiveMaximum ?? 0xffff;
  // The cluster keeps the will, so a survivor publishes it if this node dies.
  if (packet.will !== undefined) broker.journal?.will(clientId, packet.will);
  // What this client may read decides what the session is delivered, online or not.
  session.readFilter = client.acl;
  const keepalive = grantedKeepalive(packet, broker.config);
  client.keepaliveMs = keepalive * 1000;
  client.state = 'connected';
  broker.stats.clientsConnected++;
  if (broker.stats.clientsConnected > broker.stats.clientsMaximum) {
    broker.stats.clientsMaximum = broker.stats.clientsConnected;
  }
  // Session present is 0 for a clean session [MQTT-3.2.2-1], 1 when a stored session was
  // resumed [MQTT-3.2.2-2], 0 when none existed [MQTT-3.2.2-3].
  const properties =
    client.v5 === null
      ? undefined
      : connackProperties(packet, broker.config, clientId, client.assignedClientId, expiry, keepalive);
  if (properties !== undefined && packet.properties?.authenticationMethod !== undefined) {
    addConnackAuth(client, properties);
  }
  writeFor(client, { cmd: 'connack', sessionPresent, returnCode: 0, properties });
  if (client.debugEnabled) {
    client.log.debug({ clean: packet.clean, keepalive: packet.keepalive, sessionPresent }, 'client connected');
  }
  if (sessionPresent) resume(broker, session, client);
}

/**
 * Answers CONNACK with a refusal (session present 0 [MQTT-3.2.2-4]) and closes. Packets that
 * waited behind the CONNECT are dropped. `fields` go into the log line (never a password).
 */
function refuse(
  client: Client,
  returnCode: number,
  reason: RejectReason,
  why: string,
  fields: Record<string, unknown> = {},
): void {
  client.heldPackets = null;
  client.log.info({ returnCode, ...fields }, `connection refused: ${why}`);
  client.closeReason ??= 'not-authorized';
  client.broker.stats.connectionsRejected[reason]++;
  if (client.v5 !== null) {
    // MQTT 5 says why in words too, unless the client asked not to be told [MQTT-3.1.2-29]
    // (CONNACK may carry it either way; the client's wish is kept).
    const code = v5RefusalCode(returnCode);
    const properties = client.v5.problemInformation ? { reasonString: why } : undefined;
    writeFor(client, { cmd: 'connack', sessionPresent: false, returnCode: code, properties });
  } else {
    client.conn.write(encode({ cmd: 'connack', sessionPresent: false, returnCode }, client.version));
  }
  client.conn.end();
}
