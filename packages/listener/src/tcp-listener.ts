import { createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type BindOptions, bindServer, closeServer } from './bind.js';
import { ConnectionGate } from './connection-gate.js';

/** How a listener counts and refuses connections; shared by the TCP, TLS and WebSocket listeners. */
export interface AdmissionOptions {
  /**
   * The gate every listener of this thread shares (maxConnections over all of them). Without
   * one, a gate is made from maxConnections and openCount.
   */
  gate?: ConnectionGate;
  /**
   * Where open connections are counted for maxConnections: pass the same shared counter to
   * every listener of a node to make the limit node-wide. @default a private counter
   */
  openCount?: Int32Array;
  /** Connections held at once; more are closed on accept. 0 = unlimited. @default 0 */
  maxConnections?: number;
  /** Called with the raw socket when it is refused because of maxConnections. */
  onRefused?: (socket: Socket) => void;
}

export interface TcpListenerOptions extends BindOptions, AdmissionOptions {
  onSocket: (socket: Socket) => void;
}

/** What every listener offers its owner. */
export interface Listener {
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** The listening socket's descriptor, for other threads of this process to accept on. */
  readonly fd: number;
  /** Connections held at once (over every listener sharing the gate); 0 = unlimited. */
  maxConnections: number;
  /** Stops accepting; existing sockets are left to their owners. */
  close(): Promise<void>;
}

export type TcpListener = Listener;

/** The options' gate, or a new one from maxConnections and openCount. */
export function gateOf(options: AdmissionOptions): ConnectionGate {
  return options.gate ?? new ConnectionGate(options.maxConnections ?? 0, options.openCount);
}

/**
 * Counts every socket `server` accepts through `gate` and closes the ones over the limit,
 * before any TLS handshake or HTTP request is read. Runs after the server's own 'connection'
 * listener (a TLS or HTTP server wraps the socket there); destroying the raw socket ends that
 * wrapper too.
 */
export function guardAccepts(server: Server, gate: ConnectionGate, onRefused?: (socket: Socket) => void): void {
  server.on('connection', (socket: Socket) => {
    // Read now: Node caches the peer address, so a TLS handshake that fails after the socket
    // is gone can still say where it came from (see handshakePeer).
    void socket.remoteAddress;
    if (gate.admit(socket)) return;
    onRefused?.(socket);
    socket.destroy();
  });
}

/**
 * Where a TLS socket whose handshake failed came from. The TLSSocket may already have lost
 * its handle; the raw socket under it (Node's `_parent`) kept the address read at accept.
 */
export function handshakePeer(socket: TLSSocket): string | undefined {
  return socket.remoteAddress ?? (socket as unknown as { _parent?: Socket | null })._parent?.remoteAddress;
}

/** The listener object handed back by every listen function, with `extra` methods added. */
export function describeListener<E extends object = object>(
  server: Server,
  gate: ConnectionGate,
  port: number,
  fd: number,
  extra?: E,
): Listener & E {
  const listener: Listener = {
    server,
    port,
    fd,
    get maxConnections() {
      return gate.max;
    },
    set maxConnections(value: number) {
      gate.max = value;
    },
    close: () => closeServer(server),
  };
  return Object.assign(listener, extra);
}

/** Binds a TCP server and hands every accepted socket to `onSocket`. */
export async function listenTcp(options: TcpListenerOptions): Promise<TcpListener> {
  const gate = gateOf(options);
  const onSocket = options.onSocket;
  const server = createServer({ noDelay: true }, (socket) => {
    if (!gate.admit(socket)) {
      options.onRefused?.(socket);
      socket.destroy();
      return;
    }
    onSocket(socket);
  });
  const { port, fd } = await bindServer(server, options);
  return describeListener(server, gate, port, fd);
}
