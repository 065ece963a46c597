import { createServer, type Server, type Socket } from 'node:net';

export interface TcpListenerOptions {
  host: string;
  port: number;
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
  let open = 0;
  const server = createServer({ noDelay: true }, (socket) => {
    if (max > 0 && open >= max) {
      options.onRefused?.(socket);
      socket.destroy();
      return;
    }
    open++;
    socket.once('close', () => {
      open--;
    });
    options.onSocket(socket);
  });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(options.host, options.port, err));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      resolve({
        server,
        port,
        get maxConnections() {
          return max;
        },
        set maxConnections(value: number) {
          max = value;
        },
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
