import type { Socket } from 'node:net';

/**
 * Counts open connections against maxConnections. Every listener of a thread shares one gate,
 * and every thread of a node shares its counter (shared memory), so the limit is node-wide
 * and covers TCP, TLS and WebSocket connections alike. Sockets are counted when accepted,
 * before any TLS handshake or WebSocket upgrade: a refused one costs nothing more.
 */
export class ConnectionGate {
  /** Connections held at once; 0 = unlimited. Changing it affects the next accept. */
  max: number;
  private readonly open: Int32Array;
  /** One function for every socket's 'close': no closure per connection. */
  private readonly release = (): void => {
    Atomics.sub(this.open, 0, 1);
  };

  /** `open`: the node's shared counter. @default a private counter */
  constructor(max = 0, open: Int32Array = new Int32Array(1)) {
    this.max = max;
    this.open = open;
  }

  /** Connections open now, over every listener sharing the counter. */
  get count(): number {
    return Atomics.load(this.open, 0);
  }

  /** Counts `socket` in until it closes; false when the limit is reached (the caller closes it). */
  admit(socket: Socket): boolean {
    const max = this.max;
    // add-then-check: two threads accepting at once cannot both take the last place.
    if (max > 0 && Atomics.add(this.open, 0, 1) >= max) {
      Atomics.sub(this.open, 0, 1);
      return false;
    }
    if (max === 0) Atomics.add(this.open, 0, 1);
    // 'close' comes once: on() is once() without a wrapper per socket.
    socket.on('close', this.release);
    return true;
  }
}
