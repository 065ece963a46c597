/**
 * The MQTT listeners of one broker (or one routing worker): plain TCP, TLS, WebSocket and
 * WSS, each enabled on its own, all handing their connections to the same broker. Worker 0
 * binds them; the other workers accept on the same descriptors, so accepted sockets never
 * pass through the main thread. One connection gate (and the node's shared counter) makes
 * maxConnections cover them all.
 */
import type { Socket } from 'node:net';
import {
  ConnectionGate,
  type Listener,
  listenTcp,
  listenTls,
  listenWebSocket,
  type SecureListener,
  type TlsMaterial,
  type Transport,
  type WebSocketListener,
} from '@tern/listener';
import type { Broker } from './broker.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import { tlsSettings } from './tls-files.js';

/** Which listener a connection came through: a label of tern_connections_accepted_total. */
export type ListenerKind = 'tcp' | 'tls' | 'ws' | 'wss';

export const LISTENER_KINDS: readonly ListenerKind[] = ['tcp', 'tls', 'ws', 'wss'];

/** The URL scheme clients use for each listener, as logged. */
const PROTOCOL: Record<ListenerKind, string> = { tcp: 'mqtt', tls: 'mqtts', ws: 'ws', wss: 'wss' };

/** A bound listener: what worker 0 tells the supervisor and the others listen on. */
export interface BoundListener {
  kind: ListenerKind;
  port: number;
  fd: number;
}

/** Listening descriptors by listener, from worker 0. */
export type ListenerFds = Partial<Record<ListenerKind, number>>;

export interface ListenerSetOptions {
  config: BrokerConfig;
  /** The certificate, key and CA (read by readTlsMaterial); needed when TLS or WSS is enabled. */
  tls: TlsMaterial | null;
  /** Accept on these descriptors (bound by another thread) instead of binding; null = bind. */
  fds: ListenerFds | null;
  /** The node's shared count of open connections. @default a private one */
  openCount?: Int32Array;
  /** The broker that takes the connections (a routing worker's may be replaced after a crash). */
  broker: () => Broker;
}

function enabled(config: BrokerConfig, kind: ListenerKind): boolean {
  switch (kind) {
    case 'tcp':
      return config.tcpEnabled;
    case 'tls':
      return config.tlsEnabled;
    case 'ws':
      return config.wsEnabled;
    case 'wss':
      return config.wssEnabled;
  }
}

function configuredPort(config: BrokerConfig, kind: ListenerKind): number {
  switch (kind) {
    case 'tcp':
      return config.port;
    case 'tls':
      return config.tlsPort;
    case 'ws':
      return config.wsPort;
    case 'wss':
      return config.wssPort;
  }
}

export class ListenerSet {
  private readonly listeners = new Map<ListenerKind, Listener>();
  private readonly gate: ConnectionGate;

  private constructor(gate: ConnectionGate) {
    this.gate = gate;
  }

  /** Opens every enabled listener; if one fails, closes the others and throws its ListenError. */
  static async open(options: ListenerSetOptions): Promise<ListenerSet> {
    const { config, fds } = options;
    const set = new ListenerSet(new ConnectionGate(config.maxConnections, options.openCount));
    try {
      for (const kind of LISTENER_KINDS) {
        if (!enabled(config, kind)) continue;
        const fd = fds === null ? undefined : fds[kind];
        set.listeners.set(kind, await set.listen(kind, options, fd));
      }
    } catch (err) {
      await set.close();
      throw err;
    }
    return set;
  }

  private listen(kind: ListenerKind, options: ListenerSetOptions, fd: number | undefined): Promise<Listener> {
    const { config, broker } = options;
    const common = {
      host: config.host,
      port: configuredPort(config, kind),
      fd,
      gate: this.gate,
      onRefused: (socket: Socket) => refused(broker(), socket, kind),
      onHandshakeError: (error: Error, remote: string | undefined) => handshakeFailed(broker(), error, remote, kind),
    };
    const accept = (socket: Transport): void => broker().accept(socket, kind);
    const material = options.tls;
    if ((kind === 'tls' || kind === 'wss') && material === null) {
      throw new Error(`the ${kind} listener needs the TLS certificate and key`);
    }
    switch (kind) {
      case 'tcp':
        return listenTcp({ ...common, onSocket: accept });
      case 'tls':
        return listenTls({ ...common, tls: tlsSettings(config, material as TlsMaterial), onSocket: accept });
      case 'ws':
      case 'wss':
        return listenWebSocket({
          ...common,
          path: config.wsPath,
          tls: kind === 'wss' ? tlsSettings(config, material as TlsMaterial) : null,
          maxMessageSize: config.maxPacketSize,
          onSocket: accept,
        });
    }
  }

  /** Every open listener with its bound port and descriptor. */
  get bound(): BoundListener[] {
    return [...this.listeners].map(([kind, l]) => ({ kind, port: l.port, fd: l.fd }));
  }

  /** The bound port of `kind`, or undefined when that listener is off. */
  port(kind: ListenerKind): number | undefined {
    return this.listeners.get(kind)?.port;
  }

  /** Changes the limit for every listener of this thread (the next accept sees it). */
  set maxConnections(value: number) {
    this.gate.max = value;
  }

  /** A WebSocket message may carry one largest packet; applies to WebSockets opened from now on. */
  setMaxPacketSize(bytes: number): void {
    for (const listener of this.listeners.values()) {
      if ('setMaxMessageSize' in listener) (listener as WebSocketListener).setMaxMessageSize(bytes);
    }
  }

  /** New TLS and WSS connections get this certificate; open ones keep theirs. */
  setSecureContext(material: TlsMaterial): void {
    for (const kind of ['tls', 'wss'] as const)
      (this.listeners.get(kind) as SecureListener | undefined)?.setSecureContext(material);
  }

  /** Stops accepting on every listener; open connections are left to the broker. */
  async close(): Promise<void> {
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(listeners.map((l) => l.close()));
  }
}

function refused(broker: Broker, socket: Socket, listener: ListenerKind): void {
  // Counted and logged by the broker: one line for the node, not one per refused socket.
  broker.connectionRefused(socket.remoteAddress, { listener });
}

function handshakeFailed(broker: Broker, error: Error, remote: string | undefined, listener: ListenerKind): void {
  // At debug: port scanners and load-balancer probes fail handshakes all day long.
  if (!broker.log.isLevelEnabled('debug')) return;
  const code = (error as { code?: string }).code;
  broker.log.debug({ remote, listener, code }, `TLS handshake failed: ${error.message}`);
}

/** One line per listener: its protocol (the URL scheme clients use), host and port. */
export function logListening(log: Logger, config: BrokerConfig, bound: readonly BoundListener[]): void {
  for (const { kind, port } of bound) {
    const path = kind === 'ws' || kind === 'wss' ? config.wsPath : undefined;
    const fields = { protocol: PROTOCOL[kind], listener: kind, host: config.host, port, path };
    log.info(fields, 'listening');
  }
}
