import type { PeerCertificate } from 'node:tls';

/**
 * What a Connection needs from the byte stream under it. A net.Socket (plain TCP) and a
 * tls.TLSSocket satisfy it as they are, so the TCP path calls the socket directly with no
 * wrapper; a WebSocket is adapted by WebSocketTransport.
 */
export interface Transport {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** Bytes accepted by write() and not yet handed to the kernel. */
  readonly writableLength: number;
  /** True once destroySoon() (or end()) was called. */
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  /** TLS only: whether the peer's certificate was verified against the CA. */
  readonly authorized?: boolean;
  /** TLS only: the peer's certificate ({} when it sent none). */
  getPeerCertificate?(): PeerCertificate;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  setNoDelay(noDelay?: boolean): unknown;
  pause(): unknown;
  resume(): unknown;
  /** Ends once everything written has left, then closes. */
  destroySoon(): void;
  destroy(error?: Error): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}
