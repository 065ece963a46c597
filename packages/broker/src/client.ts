import type { Connection, ConnectionHandler } from '@tern/listener';
import { type Packet, ProtocolError, type ProtocolVersion, TYPE_BY_CMD } from '@tern/protocol';
import type { Session } from '@tern/session';
import type { ClientAcl } from './access/acl.js';
import type { Broker } from './broker.js';
import { dispatch } from './handlers/index.js';
import type { Logger } from './logger.js';
import { disconnectBytes, reasonCodeFor } from './v5/disconnect-reasons.js';
import type { V5State } from './v5/v5-state.js';

/** Why a connection ended; each one is logged and counted under this name. */
export type CloseReason =
  | 'client-disconnect'
  /** MQTT 5 DISCONNECT with a reason other than 0x00 (0x04 asks for the will): the will is published. */
  | 'disconnect-with-will'
  | 'socket-closed'
  | 'socket-error'
  | 'protocol-error'
  | 'keepalive-timeout'
  | 'connect-timeout'
  | 'takeover'
  | 'server-shutdown'
  | 'not-authorized'
  | 'internal-error';

/**
 * One connected socket seen by the broker: its protocol state, session and keepalive. It
 * implements the connection's handler interface, so packets reach the dispatcher without a
 * closure per packet.
 */
export class Client implements ConnectionHandler {
  readonly broker: Broker;
  readonly conn: Connection;
  /**
   * This connection's logger (remote address and, once known, client id bound), made on first
   * use: most connections never log, and a child logger per idle connection is memory (each
   * one also turns its parent into a prototype with a map of its own).
   */
  private logger: Logger | null = null;
  /**
   * 'new' until a CONNECT arrives; 'connecting' while its credentials are checked or the node
   * grants the client id (workers);
   * 'connected' once CONNACK is sent; 'closed' once the socket is gone.
   */
  state: 'new' | 'connecting' | 'connected' | 'closed' = 'new';
  clientId = '';
  /** The client id Tern made up for a CONNECT without one (MQTT 5 tells the client); null otherwise. */
  assignedClientId: string | null = null;
  version: ProtocolVersion = 4;
  /** What an MQTT 5 connection adds (its limits, topic aliases); null for 3.1/3.1.1. */
  v5: V5State | null = null;
  session: Session | null = null;
  /** The user name checked against the password file at CONNECT; null for an anonymous client. */
  username: string | null = null;
  /**
   * The topic ACL compiled for this client at CONNECT (again after a reload); null when no
   * ACL file is configured, so a publish or delivery pays one null check.
   */
  acl: ClientAcl | null = null;
  /** Keepalive in ms (0 = off); the connection dies after 1.5 x this of silence [MQTT-3.1.2-24]. */
  keepaliveMs = 0;
  /** Coarse-clock time of the last packet received. */
  lastSeen: number;
  readonly acceptedAt: number;
  /** Set by the first reason to close, so the close handler knows whether the will fires. */
  closeReason: CloseReason | null = null;
  /** True while QoS 0 is being dropped for this slow reader (one log line per episode). */
  dropping = false;
  /**
   * Acknowledgements waiting for the other members (a SUBACK until they know the new route, a
   * retained PUBACK until they hold the copy), with every later ack queued behind them: acks
   * leave in the order their packets came [MQTT-4.6.0-2]. Null when none wait, which is the
   * usual case and costs one check per ack.
   */
  gatedAcks: Array<{ ready: boolean; write: () => void }> | null = null;
  /**
   * Packets that arrived while something async decided an earlier one (the CONNECT's
   * credentials check or client id grant, the auth plug-in's check of a PUBLISH or SUBSCRIBE):
   * they are handled after it, in order. Null when nothing waits.
   */
  heldPackets: Packet[] | null = null;
  /** Limits already logged for this connection (bits by limit, limits.ts): one line each. */
  limitsLogged = 0;
  /** maxPublishRate's token bucket (publish-rate.ts): tokens left, and when it was last filled. */
  rateTokens = 0;
  rateStamp = 0;
  /** Set while reading is paused for the publish rate; it resumes reading when it fires. */
  rateTimer: NodeJS.Timeout | null = null;
  /** Reasons reading is paused for (publish rate, a plug-in check): read again when none is left. */
  private readHolds = 0;

  constructor(broker: Broker, conn: Connection, now: number) {
    this.broker = broker;
    this.conn = conn;
    this.lastSeen = now;
    this.acceptedAt = now;

    conn.handler = this;
  }

  get log(): Logger {
    if (this.logger === null) {
      const bindings: Record<string, string> = { remote: this.conn.remoteAddress };
      if (this.clientId !== '') bindings.clientId = this.clientId;
      this.logger = this.broker.log.child(bindings);
    }
    return this.logger;
  }

  /** Whether debug lines are wanted (checked before building one, so the logger stays unmade). */
  get debugEnabled(): boolean {
    return this.broker.log.isLevelEnabled('debug');
  }

  /** The client id is known: later lines carry it. */
  identify(clientId: string): void {
    this.clientId = clientId;
    this.logger = null;
  }

  /** A run-time level change, for a logger that exists (one made later inherits it). */
  setLogLevel(level: string): void {
    if (this.logger !== null) this.logger.level = level;
  }

  onPacket(packet: Packet): void {
    this.lastSeen = this.broker.clock.now;
    const stats = this.broker.stats;
    const type = TYPE_BY_CMD[packet.cmd];
    stats.packetsReceived[type]++;
    stats.bytesReceivedByType[type] += this.conn.decoder.packetLength;
    dispatch(this, packet);
  }

  /**
   * Handles a packet that waited while the CONNECT was being granted, with the same outcome
   * as if it had come straight from the socket (a violation closes the connection).
   */
  replay(packet: Packet): void {
    try {
      dispatch(this, packet);
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.onProtocolError(err);
      } else {
        this.onInternalError(err);
      }
      this.conn.destroy(err as Error);
    }
  }

  onProtocolError(error: ProtocolError): void {
    this.broker.stats.protocolErrors++;
    if (error.code === 'TERN_PROTO_PACKET_TOO_LARGE') this.broker.stats.limitsHit['max-packet-size']++;
    this.closeReason ??= 'protocol-error';
    this.log.warn({ code: error.code, specId: error.specId }, `closing connection: ${error.message}`);
    if (this.v5 !== null && this.state === 'connected') {
      // MQTT 5: say why before closing [MQTT-4.13.1-1].
      this.sendDisconnect(error.reasonCode, error.message);
      return;
    }
    // An unsupported protocol level still gets its answer before the close [MQTT-3.1.2-2].
    if (
      this.state === 'new' &&
      (error.code === 'TERN_PROTO_PROTOCOL_LEVEL' || error.code === 'TERN_PROTO_PROTOCOL_NAME')
    ) {
      this.broker.stats.connectionsRejected['unsupported-protocol-version']++;
      this.conn.write(UNACCEPTABLE_PROTOCOL_CONNACK);
      this.conn.end();
    }
  }

  onInternalError(error: unknown): void {
    this.closeReason ??= 'internal-error';
    this.log.error({ err: error }, 'closing connection: internal error while handling a packet');
  }

  onClose(error: Error | undefined): void {
    if (this.rateTimer !== null) clearTimeout(this.rateTimer);
    this.rateTimer = null;
    if (this.closeReason === null) this.closeReason = error === undefined ? 'socket-closed' : 'socket-error';
    this.broker.stats.disconnects[this.closeReason]++;
    this.broker.clientClosed(this, error);
  }

  /** Stops reading the socket until every pause is resumed (the kernel then slows the sender). */
  pauseReading(): void {
    if (this.readHolds++ === 0) this.conn.socket.pause();
  }

  resumeReading(): void {
    if (--this.readHolds === 0 && this.state !== 'closed') this.conn.socket.resume();
  }

  /**
   * Holds the packets that follow while an async check decides the current one, and stops
   * reading meanwhile, so what waits is at most one chunk. releaseHeld() ends the hold.
   */
  holdPackets(): void {
    this.heldPackets ??= [];
    this.pauseReading();
  }

  /**
   * Ends a hold: the held packets are handled in order, as if they had just arrived. One that
   * starts a new hold holds the rest behind it again (dispatch() appends to the new hold).
   */
  releaseHeld(): void {
    this.resumeReading();
    const held = this.heldPackets;
    this.heldPackets = null;
    if (held === null) return;
    for (const packet of held) {
      if (this.state !== 'connected') return;
      this.replay(packet);
    }
  }

  /**
   * Writes an ack after `barrier` resolves (or, with no barrier, as soon as every ack before
   * it has been written).
   */
  queueAck(write: () => void, barrier: Promise<void> | null): void {
    if (barrier === null && this.gatedAcks === null) {
      write();
      return;
    }
    const entry = { ready: barrier === null, write };
    if (this.gatedAcks === null) this.gatedAcks = [];
    this.gatedAcks.push(entry);
    barrier?.then(() => {
      entry.ready = true;
      this.flushAcks();
    });
  }

  private flushAcks(): void {
    const acks = this.gatedAcks;
    if (acks === null) return;
    let i = 0;
    while (i < acks.length && (acks[i] as { ready: boolean }).ready) {
      if (this.state !== 'closed') (acks[i] as { write: () => void }).write();
      i++;
    }
    acks.splice(0, i);
    if (acks.length === 0) this.gatedAcks = null;
  }

  /** Sends what is already written, then closes for `reason` (a graceful server-side close). */
  end(reason: CloseReason): void {
    this.closeReason ??= reason;
    if (this.v5 !== null && this.state === 'connected') {
      this.sendDisconnect(reasonCodeFor(reason), null);
      return;
    }
    this.conn.end();
  }

  /**
   * Closes the connection for `reason`; the will fires unless the reason is a DISCONNECT. An
   * MQTT 5 client is told why first: `code` (default: the reason's), and `why` as the reason
   * string. Either way the close is complete (clientClosed has run) when this returns.
   */
  close(reason: CloseReason, code = reasonCodeFor(reason), why: string | null = null): void {
    this.closeReason ??= reason;
    if (this.v5 !== null && this.state === 'connected') {
      this.sendDisconnect(code, why);
      return;
    }
    this.conn.destroy();
  }

  /** MQTT 5: the server's DISCONNECT with `code`, then the close [MQTT-3.14.2-1]. */
  private sendDisconnect(code: number, why: string | null): void {
    const v5 = this.v5 as V5State;
    const reference = this.broker.config.serverReference;
    // With a serverReference configured, clients leaving at shutdown are sent there: 0x9C, or
    // 0x9D when the server has moved for good.
    const moving = code === 0x8b && reference !== '';
    const bytes = disconnectBytes(
      this,
      moving ? (this.broker.config.serverMoved ? 0x9d : 0x9c) : code,
      v5.problemInformation ? why : null,
      moving ? reference : null,
    );
    // Larger than the client takes even without its reason string: closed without it.
    if (bytes === null) this.conn.destroy();
    else this.conn.closeWith(bytes);
  }
}

/** CONNACK return code 0x01 in 3.1.1 form: understood by every protocol level. */
const UNACCEPTABLE_PROTOCOL_CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x01]);
