import type { Server } from 'node:net';

/** A listen failure with a stable code and a one-line message naming the address. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  readonly code: 'TERN_LISTEN_ADDRESS_IN_USE' | 'TERN_LISTEN_ACCESS_DENIED' | 'TERN_LISTEN_FAILED';

  constructor(host: string, port: number, cause: NodeJS.ErrnoException) {
    const code =
      cause.code === 'EADDRINUSE'
        ? 'TERN_LISTEN_ADDRESS_IN_USE'
        : cause.code === 'EACCES'
          ? 'TERN_LISTEN_ACCESS_DENIED'
          : 'TERN_LISTEN_FAILED';
    const why =
      code === 'TERN_LISTEN_ADDRESS_IN_USE'
        ? 'address already in use'
        : code === 'TERN_LISTEN_ACCESS_DENIED'
          ? 'permission denied'
          : cause.message;
    super(`cannot listen on ${host}:${port}: ${why}`, { cause });
    this.code = code;
  }
}

/** Where a listener should accept: host:port, or a socket another thread already bound. */
export interface BindOptions {
  host: string;
  port: number;
  /**
   * Accept on this already-bound socket instead of binding host:port: how the routing workers
   * of one node share one listening socket (the kernel hands each connection to one of them).
   */
  fd?: number;
}

/** The bound port (useful with port 0) and the listening descriptor (for other threads). */
export interface Bound {
  port: number;
  fd: number;
}

/**
 * Starts `server` (net, tls, http or https: all are net.Servers) listening; rejects with a
 * ListenError.
 */
export function bindServer(server: Server, options: BindOptions): Promise<Bound> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(options.host, options.port, err));
    server.once('error', onError);
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      // net.Server keeps its libuv handle in _handle; the descriptor is what another thread
      // needs to accept on the same socket (listen({ fd })).
      const fd = (server as unknown as { _handle: { fd: number } | null })._handle?.fd ?? -1;
      resolve({ port, fd });
    };
    if (options.fd !== undefined) server.listen({ fd: options.fd }, onListening);
    else server.listen(options.port, options.host, onListening);
  });
}

/** Stops accepting; open connections are left to their owners. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((done) => server.close(() => done()));
}
