import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { type RawData, WebSocket } from 'ws';
import type { Transport } from './transport.js';

/** A WebSocket broke MQTT's framing rules (a text frame [MQTT-6.0.0-1]). */
export class WebSocketFrameError extends Error {
  override readonly name = 'WebSocketFrameError';
  readonly code = 'TERN_WS_TEXT_FRAME';
}

/**
 * MQTT over one WebSocket, seen by a Connection as a byte stream: every binary message is
 * handed on as it came (a message may hold part of a packet or several; the decoder frames
 * them as it does TCP chunks), and every write leaves as one binary message. Corking and the
 * write backlog are the underlying socket's, so a turn's writes still leave together and slow
 * readers are measured the same way as on TCP.
 */
export class WebSocketTransport extends EventEmitter implements Transport {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  writableEnded = false;
  destroyed = false;
  private readonly ws: WebSocket;
  /** The socket under the WebSocket (a TLSSocket for WSS). */
  private readonly raw: Socket;

  constructor(ws: WebSocket, raw: Socket) {
    super();
    this.ws = ws;
    this.raw = raw;
    // Read once: a closed socket no longer knows its peer, and the address is wanted in the
    // log line of that close.
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        // Control packets travel in binary frames only; anything else closes the connection.
        this.emit('error', new WebSocketFrameError('a text frame: MQTT travels in binary WebSocket frames only'));
        this.destroy();
        return;
      }
      // binaryType is 'nodebuffer' (ws's default): a message is one Buffer.
      this.emit('data', data as Buffer);
    });
    ws.on('error', (error: Error) => this.emit('error', error));
    ws.on('close', () => {
      this.destroyed = true;
      this.emit('close');
    });
  }

  /** Bytes queued by send() and not yet taken by the kernel (the raw socket's backlog included). */
  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  get authorized(): boolean | undefined {
    return (this.raw as Partial<TLSSocket>).authorized;
  }

  getPeerCertificate(): PeerCertificate {
    const tls = this.raw as Partial<TLSSocket>;
    return tls.getPeerCertificate === undefined ? ({} as PeerCertificate) : tls.getPeerCertificate();
  }

  write(chunk: Buffer): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(chunk);
    return true;
  }

  cork(): void {
    this.raw.cork();
  }

  uncork(): void {
    this.raw.uncork();
  }

  setNoDelay(noDelay = true): this {
    this.raw.setNoDelay(noDelay);
    return this;
  }

  pause(): this {
    this.ws.pause();
    return this;
  }

  resume(): this {
    this.ws.resume();
    return this;
  }

  /**
   * A WebSocket close: what was sent goes first, then the close frame; ws cuts the socket if
   * the peer does not answer the close within its timeout.
   */
  destroySoon(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    this.ws.close(1000);
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writableEnded = true;
    this.ws.terminate();
    return this;
  }
}
