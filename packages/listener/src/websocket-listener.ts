import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { type BindOptions, bindServer } from './bind.js';
import {
  type AdmissionOptions,
  describeListener,
  gateOf,
  guardAccepts,
  handshakePeer,
  type Listener,
} from './tcp-listener.js';
import { secureContextOptions, type TlsMaterial, type TlsSettings, tlsServerOptions } from './tls-listener.js';
import { WebSocketTransport } from './websocket-transport.js';

export interface WebSocketListenerOptions extends BindOptions, AdmissionOptions {
  /** The only path a WebSocket may be opened on (query strings are ignored). @default '/mqtt' */
  path?: string;
  /** Serve WSS (WebSocket over TLS) with these settings; null or absent = plain WS. */
  tls?: TlsSettings | null;
  /**
   * Largest WebSocket message accepted (ws buffers a whole message before handing it on);
   * a larger one closes the connection. @default 268435460 (MQTT's largest packet)
   */
  maxMessageSize?: number;
  onSocket: (socket: WebSocketTransport) => void;
  /** A WSS handshake failed (see TlsListenerOptions.onHandshakeError). */
  onHandshakeError?: (error: Error, remoteAddress: string | undefined) => void;
}

export interface WebSocketListener extends Listener {
  /** Applies to WebSockets opened from now on. */
  setMaxMessageSize(bytes: number): void;
  /** WSS only (a no-op for WS): new connections get this certificate, key and CA. */
  setSecureContext(material: TlsMaterial): void;
}

/**
 * Subprotocols a client may ask for, in the order they are preferred: 'mqtt' (MQTT 3.1.1 and
 * 5 [MQTT-6.0.0-3]) and 'mqttv3.1' (MQTT 3.1 clients).
 */
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

function chooseSubprotocol(offered: Set<string>): string | false {
  for (const name of SUBPROTOCOLS) if (offered.has(name)) return name;
  return false;
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query < 0 ? raw : raw.slice(0, query);
}

/**
 * Binds an HTTP (or HTTPS) server that only upgrades to WebSocket on `path`, with the 'mqtt'
 * subprotocol, and hands every WebSocket to `onSocket` as a byte-stream transport. Other
 * requests get 404 (another path) or 426 (a plain request on the MQTT path).
 */
export async function listenWebSocket(options: WebSocketListenerOptions): Promise<WebSocketListener> {
  const path = options.path ?? '/mqtt';
  const gate = gateOf(options);
  const settings = options.tls ?? null;
  const answerPlainRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const onPath = pathOf(req.url) === path;
    res.writeHead(onPath ? 426 : 404, { Connection: 'close', ...(onPath ? { Upgrade: 'websocket' } : {}) });
    res.end();
  };
  const server =
    settings === null
      ? createHttpServer(answerPlainRequest)
      : createHttpsServer(tlsServerOptions(settings), answerPlainRequest);
  guardAccepts(server, gate, options.onRefused);
  if (settings !== null) {
    const onHandshakeError = options.onHandshakeError;
    server.on('tlsClientError', (error, socket) => onHandshakeError?.(error, handshakePeer(socket)));
  }
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    // MQTT payloads are often already compact, and compression costs CPU on every message.
    perMessageDeflate: false,
    maxPayload: options.maxMessageSize ?? 268_435_460,
    handleProtocols: chooseSubprotocol,
  });
  const onSocket = options.onSocket;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (pathOf(req.url) !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(new WebSocketTransport(ws, socket)));
  });
  const { port, fd } = await bindServer(server, options);
  return describeListener(server, gate, port, fd, {
    setMaxMessageSize: (bytes: number) => {
      wss.options.maxPayload = bytes;
    },
    setSecureContext: (material: TlsMaterial) => {
      if ('setSecureContext' in server) server.setSecureContext(secureContextOptions(material));
    },
  });
}
