import { type Packet, PacketDecoder, type PacketSink, ProtocolError } from '@tern/protocol';
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

/** How long a socket closed with a last packet may take to send it before it is cut. */
const CLOSE_GRACE_MS = 2000;

/** Where a connection's packets go before it has a handler: nowhere. */
const NO_HANDLER: PacketSink = { onPacket() {} };

/** Slots per pending write (see Connection.pending). */
const STRIDE = 4;

/**
 * The socket's own key to its Connection: the socket listeners below are three functions for
 * every connection of a thread (EventEmitter calls them with the socket as `this`), where
 * closures would cost about 200 bytes per idle connection.
 */
const OWNER = Symbol('tern.connection');
type OwnedTransport = Transport & { [OWNER]: Connection };

function onSocketData(this: OwnedTransport, chunk: Buffer): void {
  this[OWNER].onData(chunk);
}
function onSocketError(this: OwnedTransport, error: Error): void {
  this[OWNER].finish(error);
}
function onSocketClose(this: OwnedTransport): void {
  this[OWNER].finish(undefined);
}

/**
 * Connections written to in this event-loop turn, flushed together when the turn ends: one
 * nextTick for all of them, and no flush closure per connection.
 */
const dirty: Connection[] = [];
function flushDirty(): void {
  let i = 0;
  try {
    // A flush may write to a connection not yet in the list; reading the length each time
    // sends that one too, in this same turn.
    while (i < dirty.length) (dirty[i++] as Connection).flushTurn();
  } finally {
    // Should one throw, the rest still go, on the next tick.
    if (i < dirty.length) {
      dirty.splice(0, i);
      process.nextTick(flushDirty);
    } else dirty.length = 0;
  }
}

/**
 * One MQTT connection over a stream socket: frames incoming bytes into packets and batches
 * outgoing writes. Writes in one event-loop turn are gathered and leave as one Buffer when
 * the turn ends. It knows the codec, nothing of topics or sessions. The socket is a
 * net.Socket or tls.TLSSocket used directly, or a WebSocketTransport.
 */
export class Connection {
  readonly socket: Transport;
  readonly decoder: PacketDecoder;
  private handlerRef: ConnectionHandler | null = null;
  bytesReceived = 0;
  bytesSent = 0;
  private readonly counters: ConnectionCounters | null;
  private flushScheduled = false;
  private closed = false;
  /** Set by a protocol error: the rest of the input is ignored while the socket closes. */
  private failed = false;
  /**
   * Writes of this event-loop turn, sent as one Buffer when the turn ends, four slots each:
   * the bytes; where to write a packet id in them, or -1 for bytes sent as they are; the id,
   * with the bits to OR into the first byte above bit 16; and a large payload sent after them
   * by reference (writeWithPayload), or null. A write with an id (`writeWithId`) keeps a
   * reference to a shared template; the copy happens once, into the turn's Buffer, so a
   * delivery allocates nothing. Null between turns: an idle connection holds no array.
   */
  private pending: (Buffer | number | null)[] | null = null;
  private tailCount = 0;
  private tailBytes = 0;
  private patched = 0;
  /** Bytes of the pending entries, not counting their tails. */
  private pendingBytes = 0;

  /** The end of the turn: sends what it wrote (called once per turn, by flushDirty). */
  flushTurn(): void {
    this.flushScheduled = false;
    this.sendPending();
  }

  /**
   * Sends what this turn has written so far now, instead of at the end of the turn (the
   * scheduled flush still runs and sends whatever is written after this).
   */
  flushNow(): void {
    this.sendPending();
  }

  private sendPending(): void {
    const pending = this.pending;
    if (pending === null) return;
    const count = pending.length / STRIDE;
    if (!this.closed) {
      if (this.tailCount === 0) this.socket.write(this.gather(pending, count));
      else this.sendWithTails(pending, count);
    }
    // A fresh array next turn rather than length = 0: an idle connection then holds none (a
    // busy one makes one small array per event-loop turn, not per packet).
    this.pending = null;
    this.tailCount = 0;
    this.tailBytes = 0;
    this.patched = 0;
    this.pendingBytes = 0;
  }

  /**
   * One Buffer per turn: a writev of thousands of small buffers costs the event loop far more
   * than one copy, and a slow reader then holds one chunk per turn, not thousands.
   */
  private gather(pending: (Buffer | number | null)[], count: number): Buffer {
    if (count === 1 && this.patched === 0) return pending[0] as Buffer;
    const out = Buffer.allocUnsafe(this.pendingBytes);
    for (let i = 0, at = 0; i < count; i++) at = copyEntry(pending, i * STRIDE, out, at);
    return out;
  }

  /**
   * The turn's small entries copied into one Buffer as usual, with each large payload written
   * by reference where it belongs: one corked writev, no copy of the payloads.
   */
  private sendWithTails(pending: (Buffer | number | null)[], count: number): void {
    const out = Buffer.allocUnsafe(this.pendingBytes);
    const socket = this.socket;
    socket.cork();
    let runStart = 0;
    let at = 0;
    for (let i = 0; i < count; i++) {
      at = copyEntry(pending, i * STRIDE, out, at);
      const tail = pending[i * STRIDE + 3] as Buffer | null;
      if (tail !== null) {
        socket.write(out.subarray(runStart, at));
        socket.write(tail);
        runStart = at;
      }
    }
    if (runStart < at) socket.write(out.subarray(runStart, at));
    socket.uncork();
  }

  constructor(socket: Transport, options: ConnectionOptions = {}) {
    this.socket = socket;
    this.counters = options.counters ?? null;
    // Read once now: the socket caches its peer's address, so it can still be named in a log
    // line after it closes.
    void socket.remotePort;
    this.decoder = new PacketDecoder(NO_HANDLER, { maxPacketSize: options.maxPacketSize });
    socket.setNoDelay(true);
    (socket as OwnedTransport)[OWNER] = this;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** The peer's address and port, for log lines (made when asked: most connections never log). */
  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  /** Who hears of this connection's packets and its end (null: nobody yet; packets are dropped). */
  get handler(): ConnectionHandler | null {
    return this.handlerRef;
  }

  set handler(handler: ConnectionHandler | null) {
    this.handlerRef = handler;
    // The decoder hands packets to the handler itself: no call in between, per packet.
    this.decoder.sink = handler ?? NO_HANDLER;
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
      if (dirty.push(this) === 1) process.nextTick(flushDirty);
    }
    const length = tail === null ? bytes.length : bytes.length + tail.length;
    this.bytesSent += length;
    const counters = this.counters;
    if (counters !== null) {
      const type = (bytes[0] as number) >> 4;
      counters.packetsSent[type]++;
      counters.bytesSent[type] += length;
    }
    const pending = this.pending;
    if (pending === null) this.pending = [bytes, idOffset, value, tail];
    else pending.push(bytes, idOffset, value, tail);
    if (tail !== null) {
      this.tailCount++;
      this.tailBytes += tail.length;
    }
    this.pendingBytes += bytes.length;
  }

  /** Flushes what was written, then closes the socket. */
  end(): void {
    if (this.closed) return;
    this.sendPending();
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

  /** Bytes from the socket (socket listener). */
  onData(chunk: Buffer): void {
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

  /** The socket is gone, or going (socket listeners, destroy). */
  finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.destroyed) this.socket.destroy();
    this.handler?.onClose(error);
  }
}

/** Copies the pending entry at `slot` into `out` at `at`, patching its id; returns the next offset. */
function copyEntry(pending: (Buffer | number | null)[], slot: number, out: Buffer, at: number): number {
  const bytes = pending[slot] as Buffer;
  bytes.copy(out, at);
  const idOffset = pending[slot + 1] as number;
  if (idOffset >= 0) {
    const value = pending[slot + 2] as number;
    out[at] = (out[at] as number) | (value >>> 16);
    out[at + idOffset] = (value >>> 8) & 0xff;
    out[at + idOffset + 1] = value & 0xff;
  }
  return at + bytes.length;
}
