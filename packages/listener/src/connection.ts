import type { Socket } from 'node:net';
import { type Packet, PacketDecoder, ProtocolError } from '@tern/protocol';

/** What a connection tells its owner. One object per connection, no closure per packet. */
export interface ConnectionHandler {
  /** A whole packet arrived. May throw a ProtocolError to close the connection. */
  onPacket(packet: Packet): void;
  /** The peer broke the protocol; the connection is being destroyed. */
  onProtocolError(error: ProtocolError): void;
  /** Handling a packet threw something other than a ProtocolError (a bug); the connection is destroyed. */
  onInternalError(error: unknown): void;
  /** The socket is gone (after a protocol error, a socket error, or either side closing). */
  onClose(error: Error | undefined): void;
}

/**
 * Tallies of what connections write, indexed by packet type (the first byte's high nibble,
 * 1 CONNECT ... 15 AUTH), so 16 slots each. One object is shared by every connection of a
 * worker and read by its metrics; a write costs two typed-array increments.
 */
export interface ConnectionCounters {
  packetsSent: Float64Array;
  bytesSent: Float64Array;
}

export interface ConnectionOptions {
  /** Largest packet accepted from the peer, checked from the fixed header. @default 268435460 */
  maxPacketSize?: number;
  /** Where writes are counted (every `write` and `writeWithId` is one packet). @default none */
  counters?: ConnectionCounters;
}

/**
 * One MQTT connection over a stream socket: frames incoming bytes into packets and batches
 * outgoing writes. Writes in one event-loop turn are gathered and leave as one Buffer when
 * the turn ends. It knows the codec, nothing of topics or sessions.
 */
export class Connection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly decoder: PacketDecoder;
  handler: ConnectionHandler | null = null;
  bytesReceived = 0;
  bytesSent = 0;
  private readonly counters: ConnectionCounters | null;
  private flushScheduled = false;
  private closed = false;
  /** Set by a protocol error: the rest of the input is ignored while the socket closes. */
  private failed = false;
  /**
   * Bytes written in this event-loop turn, sent as one Buffer when the turn ends. A write
   * with an id (`writeWithId`) keeps a reference to a shared template and records the patch
   * here; the copy happens once, into the turn's Buffer, so a delivery allocates nothing.
   */
  private readonly pending: Buffer[] = [];
  /** Per pending entry: where to write its packet id, or -1 for bytes sent as they are. */
  private readonly patchOffsets: number[] = [];
  /** Per pending entry: the packet id, with the bits to OR into the first byte above bit 16. */
  private readonly patchValues: number[] = [];
  private patched = 0;
  private pendingBytes = 0;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.sendPending();
  };

  /**
   * Sends what this turn has written so far now, instead of at the end of the turn (the
   * scheduled flush still runs and sends whatever is written after this).
   */
  flushNow(): void {
    this.sendPending();
  }

  private sendPending(): void {
    const count = this.pending.length;
    if (count === 0) return;
    const out = this.closed ? null : this.gather(count);
    this.pending.length = 0;
    this.patchOffsets.length = 0;
    this.patchValues.length = 0;
    this.patched = 0;
    this.pendingBytes = 0;
    if (out !== null) this.socket.write(out);
  }

  /**
   * One Buffer per turn: a writev of thousands of small buffers costs the event loop far more
   * than one copy, and a slow reader then holds one chunk per turn, not thousands.
   */
  private gather(count: number): Buffer {
    const pending = this.pending;
    if (count === 1 && this.patched === 0) return pending[0] as Buffer;
    const out = Buffer.allocUnsafe(this.pendingBytes);
    const offsets = this.patchOffsets;
    const values = this.patchValues;
    let at = 0;
    for (let i = 0; i < count; i++) {
      const bytes = pending[i] as Buffer;
      bytes.copy(out, at);
      const idOffset = offsets[i] as number;
      if (idOffset >= 0) {
        const value = values[i] as number;
        out[at] = (out[at] as number) | (value >>> 16);
        out[at + idOffset] = (value >>> 8) & 0xff;
        out[at + idOffset + 1] = value & 0xff;
      }
      at += bytes.length;
    }
    return out;
  }

  constructor(socket: Socket, options: ConnectionOptions = {}) {
    this.socket = socket;
    this.counters = options.counters ?? null;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.decoder = new PacketDecoder((packet) => this.handler?.onPacket(packet), {
      maxPacketSize: options.maxPacketSize,
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(undefined));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes written but not yet taken by the kernel: how far behind this reader is. */
  get writableLength(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  /** Queues bytes for the peer. They leave at the end of this event-loop turn; don't change them. */
  write(bytes: Buffer): void {
    this.enqueue(bytes, -1, 0);
  }

  /**
   * Queues a copy of `template` with the 16-bit `id` at `idOffset` and `firstByteBits` ORed
   * into its first byte (a PUBLISH's DUP flag). The template itself is never changed, so one
   * encoded PUBLISH or ack can serve every recipient.
   */
  writeWithId(template: Buffer, idOffset: number, id: number, firstByteBits = 0): void {
    this.patched++;
    this.enqueue(template, idOffset, id | (firstByteBits << 16));
  }

  private enqueue(bytes: Buffer, idOffset: number, value: number): void {
    if (this.closed) return;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
    this.bytesSent += bytes.length;
    const counters = this.counters;
    if (counters !== null) {
      const type = (bytes[0] as number) >> 4;
      counters.packetsSent[type]++;
      counters.bytesSent[type] += bytes.length;
    }
    this.pending.push(bytes);
    this.patchOffsets.push(idOffset);
    this.patchValues.push(value);
    this.pendingBytes += bytes.length;
  }

  /** Flushes what was written, then closes the socket. */
  end(): void {
    if (this.closed) return;
    this.flush();
    // destroySoon: end, and destroy once written, so a peer that never closes its side does
    // not hold the socket half-open.
    this.socket.destroySoon();
  }

  /** Closes at once; pending writes are discarded. */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.socket.destroy();
    this.finish(error);
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.failed) return;
    this.bytesReceived += chunk.length;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.failed = true;
      if (!(err instanceof ProtocolError)) {
        // A bug in a handler must cost this one connection, never the process.
        this.handler?.onInternalError(err);
        this.destroy(err as Error);
        return;
      }
      this.handler?.onProtocolError(err);
      // The handler may have written a last answer and ended the socket to flush it.
      if (!this.socket.writableEnded) this.destroy(err);
    }
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.destroyed) this.socket.destroy();
    this.handler?.onClose(error);
  }
}
