/**
 * MQTT 5 enhanced authentication (MQTT 5.0 section 4.12): a CONNECT carrying an
 * Authentication Method is put to the auth plug-in's authenticateEnhanced, which answers each
 * step with another round (AUTH 0x18 carrying its data, then the client's AUTH 0x18 is the next
 * step), success, or a refusal:
 *
 *   CONNECT(method, data) -> [AUTH 0x18 <-> AUTH 0x18]* -> CONNACK 0x00 (method, data) | 0x87
 *
 * A connected client that authenticated so may re-authenticate at any time [MQTT-4.12.1-1]:
 *
 *   AUTH 0x19(method, data) -> [AUTH 0x18 <-> AUTH 0x18]* -> AUTH 0x00 | DISCONNECT 0x87
 *
 * Until CONNACK the client may send nothing but AUTH and DISCONNECT [MQTT-3.1.2-30]; the
 * connect timeout covers the whole exchange (the client is 'connecting'). During a
 * re-authentication the other packets flow as before, under the previous authentication.
 * Only connections that used a method carry an Exchange (in a WeakMap), so the others pay
 * nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AuthPacket,
  ConnackReturnCode,
  type ConnectPacket,
  encode,
  type Packet,
  type Properties,
  ReasonCode,
} from '@tern/protocol';
import type { AuthOutcome } from '../access/access.js';
import type { AuthPlugin, EnhancedVerdict } from '../access/plugin.js';
import { addressKey } from '../access/throttle.js';
import type { Client } from '../client.js';
import { writeFor } from './fit.js';

/** One connection's enhanced authentication. */
interface Exchange {
  readonly method: string;
  /** The CONNECT's user name, passed in every step (re-authentications too). */
  readonly username: string | undefined;
  /** The plug-in's per-connection object, the same in every call. */
  readonly state: Record<string, unknown>;
  /** The step the next call is: 0 for the CONNECT or AUTH 0x19, then one per client AUTH 0x18. */
  step: number;
  /**
   * 'plugin': a call is running (an AUTH now is out of turn); 'client': the client's AUTH 0x18
   * is awaited; 'idle': connected, no exchange running; 'over': refused or broken, nothing more.
   */
  phase: 'plugin' | 'client' | 'idle' | 'over';
  /** True from the client's AUTH 0x19 until it ends; false for the CONNECT's exchange. */
  reauth: boolean;
  /** How long the CONNECT's first step waited for the login throttle (ms). */
  delayedMs: number;
  /** Ends the CONNECT's exchange (connect.ts goes on from there); null once called. */
  finish: ((outcome: AuthOutcome) => void) | null;
  /** A successful CONNECT exchange's final data, for the CONNACK. */
  connackData: Buffer | undefined;
}

const exchanges = new WeakMap<Client, Exchange>();

/**
 * Starts the CONNECT's exchange; `finish` gets the outcome once the plug-in has decided. With
 * no plug-in, or one without authenticateEnhanced, the method is refused with 0x8C at once
 * [MQTT-4.12.0-1].
 */
export function startEnhancedAuth(client: Client, packet: ConnectPacket, finish: (outcome: AuthOutcome) => void): void {
  const method = packet.properties?.authenticationMethod as string;
  const plugin = client.broker.access.plugin;
  if (plugin === null || plugin.enhancedFn === null) {
    finish({
      ok: false,
      returnCode: ReasonCode.BAD_AUTHENTICATION_METHOD,
      reason: 'bad-credentials',
      why: 'unsupported authentication method',
      delayedMs: 0,
    });
    return;
  }
  const exchange: Exchange = {
    method,
    username: packet.username,
    state: {},
    step: 0,
    phase: 'plugin',
    reauth: false,
    delayedMs: 0,
    finish,
    connackData: undefined,
  };
  exchanges.set(client, exchange);
  // Only AUTH and DISCONNECT may come now; dispatch() hands them to duringConnectExchange.
  client.state = 'connecting';
  const data = packet.properties?.authenticationData;
  const address = addressKey(client.conn.socket.remoteAddress);
  const delay = address === null ? 0 : client.broker.access.throttle.delayMs(address, Date.now());
  if (delay === 0) {
    ask(client, plugin, exchange, data);
    return;
  }
  // An address that failed recently waits before the plug-in is asked, as for authenticate.
  exchange.delayedMs = delay;
  void sleep(delay, undefined, { ref: false }).then(() => {
    if (client.state !== 'closed' && exchange.phase === 'plugin') ask(client, plugin, exchange, data);
  });
}

/** Whether the CONNECT's exchange is running: every packet then goes to duringConnectExchange. */
export function connectExchangeRunning(client: Client): boolean {
  const exchange = exchanges.get(client);
  return exchange !== undefined && exchange.finish !== null && exchange.phase !== 'over';
}

/**
 * A packet during the CONNECT's exchange: the client's AUTH 0x18 answering ours is the next
 * step; a DISCONNECT gives up; anything else is a protocol error [MQTT-3.1.2-30].
 */
export function duringConnectExchange(client: Client, packet: Packet): void {
  const exchange = exchanges.get(client) as Exchange;
  if (packet.cmd === 'disconnect') {
    exchange.phase = 'over';
    client.closeReason ??= 'client-disconnect';
    client.conn.end();
    return;
  }
  if (packet.cmd !== 'auth') {
    protocolError(client, exchange, `${packet.cmd} before CONNACK of an enhanced authentication [MQTT-3.1.2-30]`);
    return;
  }
  const problem = outOfTurn(exchange, packet);
  if (problem !== null) {
    protocolError(client, exchange, problem);
    return;
  }
  ask(client, client.broker.access.plugin as AuthPlugin, exchange, packet.properties?.authenticationData);
}

/**
 * AUTH from a connected client: AUTH 0x19 starts a re-authentication, AUTH 0x18 answers our
 * AUTH 0x18 in one. From a client that connected without a method it is a protocol error
 * [MQTT-4.12.0-7], as is an AUTH out of turn or with another method.
 */
export function reauthenticate(client: Client, packet: AuthPacket): void {
  const exchange = exchanges.get(client);
  if (exchange === undefined || exchange.phase === 'over') {
    protocolError(
      client,
      null,
      'AUTH from a client that did not connect with an authentication method [MQTT-4.12.0-7]',
    );
    return;
  }
  if (exchange.phase === 'idle' && packet.reasonCode === ReasonCode.RE_AUTHENTICATE) {
    if (packet.properties?.authenticationMethod !== exchange.method) {
      protocolError(client, exchange, 'AUTH 0x19 with another authentication method [MQTT-4.12.1-1]');
      return;
    }
    exchange.reauth = true;
    exchange.step = 0;
  } else {
    const problem = outOfTurn(exchange, packet);
    if (problem !== null) {
      protocolError(client, exchange, problem);
      return;
    }
  }
  ask(client, client.broker.access.plugin as AuthPlugin, exchange, packet.properties?.authenticationData);
}

/**
 * A successful CONNECT exchange's CONNACK carries the method and the final data [MQTT-4.12.0-5].
 * With `keep`, the data stays for the CONNACK itself (a size check before it).
 */
export function addConnackAuth(client: Client, properties: Properties, keep = false): void {
  const exchange = exchanges.get(client);
  if (exchange === undefined) return;
  properties.authenticationMethod = exchange.method;
  if (exchange.connackData !== undefined) properties.authenticationData = exchange.connackData;
  if (!keep) exchange.connackData = undefined;
}

/** Why a client's AUTH is not the AUTH 0x18 with the same method that we wait for; null when it is. */
function outOfTurn(exchange: Exchange, packet: AuthPacket): string | null {
  if (exchange.phase !== 'client') return `AUTH 0x${hex(packet.reasonCode)} out of turn`;
  if (packet.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION) {
    return `AUTH 0x${hex(packet.reasonCode)} where 0x18 continues the authentication [MQTT-4.12.0-3]`;
  }
  if (packet.properties?.authenticationMethod !== exchange.method) {
    return 'AUTH with another authentication method [MQTT-4.12.0-5]';
  }
  return null;
}

/** Puts one step to the plug-in; its answer comes back to answered(). */
function ask(client: Client, plugin: AuthPlugin, exchange: Exchange, data: Buffer | undefined): void {
  exchange.phase = 'plugin';
  const request = {
    clientId: client.clientId,
    username: exchange.username,
    method: exchange.method,
    data,
    remoteAddress: client.conn.socket.remoteAddress,
    step: exchange.step,
    reauth: exchange.reauth,
    state: exchange.state,
  };
  void plugin.authenticateEnhanced(request).then((verdict) => {
    // The connection closed meanwhile (a timeout, a takeover, the client gave up): nothing to say.
    if (client.state === 'closed' || exchange.phase !== 'plugin') return;
    try {
      answered(client, exchange, verdict);
    } catch (err) {
      client.onInternalError(err);
      client.conn.destroy(err as Error);
    }
  });
}

function answered(client: Client, exchange: Exchange, verdict: EnhancedVerdict): void {
  if (verdict.kind === 'continue') {
    const bytes = encode(
      {
        cmd: 'auth',
        reasonCode: ReasonCode.CONTINUE_AUTHENTICATION,
        properties: { authenticationMethod: exchange.method, authenticationData: verdict.data },
      },
      5,
    );
    // The client said how large a packet it takes [MQTT-3.1.2-24]: a round it cannot read fails.
    if (bytes.length > (client.v5?.maxPacketSize ?? Number.POSITIVE_INFINITY)) {
      const reason = 'continue data larger than the client takes';
      refused(client, exchange, { kind: 'deny', failed: true, reason, badMethod: false });
      return;
    }
    exchange.step++;
    exchange.phase = 'client';
    client.conn.write(bytes);
    return;
  }
  if (verdict.kind === 'deny') {
    refused(client, exchange, verdict);
    return;
  }
  exchange.phase = 'idle';
  if (exchange.reauth) {
    exchange.reauth = false;
    const properties = { authenticationMethod: exchange.method, authenticationData: verdict.data };
    writeFor(client, { cmd: 'auth', reasonCode: ReasonCode.SUCCESS, properties });
    if (client.debugEnabled) client.log.debug({ method: exchange.method }, 're-authenticated');
    return;
  }
  exchange.connackData = verdict.data;
  const finish = exchange.finish as (outcome: AuthOutcome) => void;
  exchange.finish = null;
  // The plug-in's yes is final: the client is the user it named, else the CONNECT's user name.
  finish({ ok: true, user: verdict.username ?? exchange.username ?? null, delayedMs: exchange.delayedMs });
}

/**
 * The plug-in said no, failed, or answered what cannot be sent. At CONNECT: CONNACK 0x87 (0x8C
 * for { allow: false, badMethod: true }), logged and counted by connect.ts. In a
 * re-authentication: DISCONNECT 0x87 and close [MQTT-4.12.1-2], counted and logged here. A real
 * no slows the address down, as a wrong password does; a failure does not.
 */
function refused(client: Client, exchange: Exchange, verdict: EnhancedVerdict & { kind: 'deny' }): void {
  exchange.phase = 'over';
  const badMethod = verdict.badMethod;
  const why = verdict.failed
    ? `the auth plug-in failed (${verdict.reason})`
    : badMethod
      ? 'the auth plug-in does not offer the authentication method'
      : `the auth plug-in refused${verdict.reason === '' ? '' : ` (${verdict.reason})`}`;
  if (!verdict.failed && !badMethod) {
    const access = client.broker.access;
    const address = addressKey(client.conn.socket.remoteAddress);
    if (address !== null) {
      access.throttle.failed(address, Date.now());
      access.onFailure?.(address);
    }
  }
  if (exchange.reauth) {
    const stats = client.broker.stats;
    stats.pluginDenied.connect++;
    if (verdict.failed) stats.pluginFailures.connect++;
    client.log.info({ method: exchange.method, step: exchange.step }, `re-authentication refused: ${why}`);
    client.close('not-authorized', ReasonCode.NOT_AUTHORIZED, why);
    return;
  }
  const finish = exchange.finish as (outcome: AuthOutcome) => void;
  exchange.finish = null;
  finish({
    ok: false,
    returnCode: badMethod ? ReasonCode.BAD_AUTHENTICATION_METHOD : ConnackReturnCode.NOT_AUTHORIZED,
    reason: badMethod ? 'bad-credentials' : 'not-authorized',
    why,
    delayedMs: exchange.delayedMs,
    plugin: verdict.failed ? 'failed' : 'denied',
  });
}

/**
 * A protocol error in the exchange: before CONNACK the answer is CONNACK 0x82 (a DISCONNECT
 * may only follow a CONNACK [MQTT-3.14.0-1]), after it DISCONNECT 0x82; then the close.
 */
function protocolError(client: Client, exchange: Exchange | null, why: string): void {
  if (exchange !== null) exchange.phase = 'over';
  client.broker.stats.protocolErrors++;
  client.log.warn({ method: exchange?.method }, `closing connection: ${why}`);
  if (client.state === 'connected') {
    client.close('protocol-error', ReasonCode.PROTOCOL_ERROR, why);
    return;
  }
  client.closeReason ??= 'protocol-error';
  const properties = client.v5?.problemInformation === false ? undefined : { reasonString: why };
  writeFor(client, { cmd: 'connack', sessionPresent: false, returnCode: ReasonCode.PROTOCOL_ERROR, properties });
  client.conn.end();
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');
