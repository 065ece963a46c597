import { createServer, type Server, type Socket } from 'node:net';

export interface TcpListenerOptions {
  host: string;
  port: number;
  /**
   * Accept on this already-bound socket instead of binding host:port: how the routing workers
   * of one node share one listening socket (the kernel hands each connection to one of them).
   */
  fd?: number;
  /**
   * Where open connections are counted for maxConnections: pass the same shared counter to
   * every listener of a node to make the limit node-wide. @default a private counter
   */
  openCount?: Int32Array;
  /** Connections held at once; more are closed on accept. 0 = unlimited. @default 0 */
  maxConnections?: number;
  onSocket: (socket: Socket) => void;
  /** Called when a socket is refused because of maxConnections. */
  onRefused?: (socket: Socket) => void;
}

export interface TcpListener {
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** The listening socket's descriptor, for other threads of this process to accept on. */
  readonly fd: number;
  /** Connections held at once; 0 = unlimited. Changing it affects the next accept. */
  maxConnections: number;
  /** Stops accepting; existing sockets are left to their owners. */
  close(): Promise<void>;
}

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

/** Binds a TCP server and hands every accepted socket to `onSocket`. */
export function listenTcp(options: TcpListenerOptions): Promise<TcpListener> {
  let max = options.maxConnections ?? 0;
  const open = options.openCount ?? new Int32Array(1);
  const server = createServer({ noDelay: true }, (socket) => {
    // add-then-check: two threads accepting at once cannot both take the last place.
    if (max > 0 && Atomics.add(open, 0, 1) >= max) {
      Atomics.sub(open, 0, 1);
      options.onRefused?.(socket);
      socket.destroy();
      return;
    }
    if (max === 0) Atomics.add(open, 0, 1);
    socket.once('close', () => {
      Atomics.sub(open, 0, 1);
    });
    options.onSocket(socket);
  });
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
      resolve({
        server,
        port,
        fd,
        get maxConnections() {
          return max;
        },
        set maxConnections(value: number) {
          max = value;
        },
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    };
    if (options.fd !== undefined) server.listen({ fd: options.fd }, onListening);
    else server.listen(options.port, options.host, onListening);
  });
}
