import { type Packet, PacketDecoder, ProtocolError } from '@tern/protocol';
import type { Transport } from './transport.js';

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
 * the turn ends. It knows the codec, nothing of topics or sessions. The socket is a
 * net.Socket or tls.TLSSocket used directly, or a WebSocketTransport.
 */
/** How long a socket closed with a last packet may take to send it before it is cut. */
const CLOSE_GRACE_MS = 2000;

export class Connection {
  readonly socket: Transport;
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
  private pending: Buffer[] = [];
  /** Per pending entry: where to write its packet id, or -1 for bytes sent as they are. */
  private patchOffsets: number[] = [];
  /** Per pending entry: the packet id, with the bits to OR into the first byte above bit 16. */
  private patchValues: number[] = [];
  /**
   * Per pending entry: a large payload sent after it by reference (writeWithPayload), or null.
   * Such payloads are never copied into the turn's Buffer: the turn leaves as one writev.
   */
  private tails: (Buffer | null)[] = [];
  private tailCount = 0;
  private tailBytes = 0;
  private patched = 0;
  /** Bytes of the pending entries, not counting their tails. */
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
    if (!this.closed) {
      if (this.tailCount === 0) this.socket.write(this.gather(count));
      else this.sendWithTails(count);
    }
    // Fresh empty arrays rather than length = 0: an idle connection then holds no backing
    // stores (a few hundred bytes each, times every idle connection); a busy one makes four
    // small arrays per event-loop turn, not per packet.
    this.pending = [];
    this.patchOffsets = [];
    this.patchValues = [];
    this.tails = [];
    this.tailCount = 0;
    this.tailBytes = 0;
    this.patched = 0;
    this.pendingBytes = 0;
  }

  /**
   * One Buffer per turn: a writev of thousands of small buffers costs the event loop far more
   * than one copy, and a slow reader then holds one chunk per turn, not thousands.
   */
  private gather(count: number): Buffer {
    const pending = this.pending;
    if (count === 1 && this.patched === 0) return pending[0] as Buffer;
    const out = Buffer.allocUnsafe(this.pendingBytes);
    for (let i = 0, at = 0; i < count; i++) at = this.copyEntry(i, out, at);
    return out;
  }

  /**
   * The turn's small entries copied into one Buffer as usual, with each large payload written
   * by reference where it belongs: one corked writev, no copy of the payloads.
   */
  private sendWithTails(count: number): void {
    const out = Buffer.allocUnsafe(this.pendingBytes);
    const socket = this.socket;
    socket.cork();
    let runStart = 0;
    let at = 0;
    for (let i = 0; i < count; i++) {
      at = this.copyEntry(i, out, at);
      const tail = this.tails[i];
      if (tail !== null && tail !== undefined) {
        socket.write(out.subarray(runStart, at));
        socket.write(tail);
        runStart = at;
      }
    }
    if (runStart < at) socket.write(out.subarray(runStart, at));
    socket.uncork();
  }

  /** Copies pending entry `i` into `out` at `at`, patching its id; returns the next offset. */
  private copyEntry(i: number, out: Buffer, at: number): number {
    const bytes = this.pending[i] as Buffer;
    bytes.copy(out, at);
    const idOffset = this.patchOffsets[i] as number;
    if (idOffset >= 0) {
      const value = this.patchValues[i] as number;
      out[at] = (out[at] as number) | (value >>> 16);
      out[at + idOffset] = (value >>> 8) & 0xff;
      out[at + idOffset + 1] = value & 0xff;
    }
    return at + bytes.length;
  }

  constructor(socket: Transport, options: ConnectionOptions = {}) {
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
    return this.socket.writableLength + this.pendingBytes + this.tailBytes;
  }

  /** Queues bytes for the peer. They leave at the end of this event-loop turn; don't change them. */
  write(bytes: Buffer): void {
    this.enqueue(bytes, -1, 0, null);
  }

  /**
   * Queues a copy of `template` with the 16-bit `id` at `idOffset` and `firstByteBits` ORed
   * into its first byte (a PUBLISH's DUP flag). The template itself is never changed, so one
   * encoded PUBLISH or ack can serve every recipient.
   */
  writeWithId(template: Buffer, idOffset: number, id: number, firstByteBits = 0): void {
    this.patched++;
    this.enqueue(template, idOffset, id | (firstByteBits << 16), null);
  }

  /**
   * Queues a packet as a head (a PUBLISH up to its payload: patched like writeWithId when
   * `idOffset` >= 0) and its payload, sent by reference after it: a large payload reaches the
   * socket without being copied. Neither may change until written.
   */
  writeWithPayload(head: Buffer, idOffset: number, id: number, firstByteBits: number, payload: Buffer): void {
    if (idOffset >= 0) this.patched++;
    this.enqueue(head, idOffset, id | (firstByteBits << 16), payload);
  }

  private enqueue(bytes: Buffer, idOffset: number, value: number, tail: Buffer | null): void {
    if (this.closed) return;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
    const length = tail === null ? bytes.length : bytes.length + tail.length;
    this.bytesSent += length;
    const counters = this.counters;
    if (counters !== null) {
      const type = (bytes[0] as number) >> 4;
      counters.packetsSent[type]++;
      counters.bytesSent[type] += length;
    }
    this.pending.push(bytes);
    this.patchOffsets.push(idOffset);
    this.patchValues.push(value);
    this.tails.push(tail);
    if (tail !== null) {
      this.tailCount++;
      this.tailBytes += tail.length;
    }
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

  /**
   * Sends what was written and then `last` (an MQTT 5 DISCONNECT saying why), and closes: the
   * handler's onClose runs before this returns, as with destroy(), so a takeover finds the
   * old connection gone; the socket itself ends once the bytes are out (cut after
   * CLOSE_GRACE_MS if the peer does not take them).
   */
  closeWith(last: Buffer): void {
    if (this.closed) return;
    this.write(last);
    this.sendPending();
    this.closed = true;
    const socket = this.socket;
    socket.destroySoon();
    setTimeout(() => {
      if (!socket.destroyed) socket.destroy();
    }, CLOSE_GRACE_MS).unref();
    this.handler?.onClose(undefined);
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
