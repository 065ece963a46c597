/**
 * The load tool's MQTT 3.1.1 clients on raw sockets: a base Client (CONNECT, SUBSCRIBE,
 * DISCONNECT, acknowledgements batched per received chunk), a Subscriber that counts what it
 * receives (loss, order, duplicates, latency) and a Publisher that writes pre-encoded PUBLISHes
 * in batches under an end-to-end window, at QoS 0, 1 or 2, open loop or at a fixed rate.
 *
 * Every client belongs to a `run` (load.mjs) that holds the shared counters; the fields it reads
 * are named where they are used (host, port, qos, window, publisherCount, sending, recording,
 * now, latency, slice, ...).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  CONNACK,
  connectBytes,
  DISCONNECT_BYTES,
  FrameScanner,
  PAYLOAD_HEADER,
  PUBACK,
  PUBACK_FIRST,
  PUBCOMP,
  PUBCOMP_FIRST,
  PUBLISH,
  PUBREC,
  PUBREC_FIRST,
  PUBREL,
  PUBREL_FIRST,
  PublishTemplate,
  SUBACK,
  subscribeBytes,
} from './wire.mjs';

/** Bytes per write for one publisher's batch of PUBLISHes. */
const BATCH_BYTES = 16 * 1024;

/** Set of sequence numbers seen, as a bitmap that grows by doubling. */
export class SeqSet {
  constructor(bits = 1 << 16) {
    this.words = new Uint32Array(Math.max(1, bits >>> 5));
  }

  /** Adds `seq`; true when it was not in the set. */
  add(seq) {
    const w = seq >>> 5;
    if (w >= this.words.length) {
      let n = this.words.length * 2;
      while (n <= w) n *= 2;
      const grown = new Uint32Array(n);
      grown.set(this.words);
      this.words = grown;
    }
    const bit = 1 << (seq & 31);
    const had = this.words[w] & bit;
    this.words[w] |= bit;
    return had === 0;
  }
}

export class Client {
  constructor(run, clientId, clean) {
    this.run = run;
    this.clientId = clientId;
    this.clean = clean;
    this.socket = null;
    this.closing = false;
    this.closed = false;
    this.waiter = null;
    this.sessionPresent = false;
    this.ackBuf = null;
    this.ackLen = 0;
    this.chunkLength = 0;
    this.scanner = new FrameScanner((first, buf, start, end) => this.onPacket(first, buf, start, end));
    /** Where this client connects: publishers and subscribers may be on different nodes. */
    this.port = run.port;
    run.clients.add(this);
  }

  /** Opens the socket and sends CONNECT; resolves on CONNACK 0 with { sessionPresent }. */
  connect() {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, what: 'CONNACK' };
      const socket = net.connect({ host: this.run.host, port: this.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(connectBytes(this.clientId, this.clean, this.run.keepalive)));
      socket.on('data', (chunk) => this.onData(chunk));
      socket.on('drain', () => this.onDrain());
      socket.on('error', (err) => this.fail(new Error(`${this.clientId}: ${err.message}`)));
      socket.on('close', () => {
        this.closed = true;
        this.run.clients.delete(this);
        if (!this.closing) this.fail(new Error(`${this.clientId}: connection closed by the broker`));
      });
    });
  }

  subscribe(filter, qos) {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, what: 'SUBACK' };
      this.socket.write(subscribeBytes(1, filter, qos));
    });
  }

  /** Sends DISCONNECT and waits for the socket to close (destroys it after 2 s). */
  disconnect() {
    if (this.closed || this.socket === null) return Promise.resolve();
    this.closing = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), 2000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end(DISCONNECT_BYTES);
    });
  }

  destroy() {
    this.closing = true;
    this.socket?.destroy();
  }

  fail(err) {
    if (this.closing) return;
    this.closing = true;
    this.run.errors++;
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w.reject(err);
    else this.run.fail(err);
  }

  onData(chunk) {
    this.run.now = performance.now();
    this.chunkLength = chunk.length;
    try {
      this.scanner.push(chunk);
    } catch (err) {
      this.fail(new Error(`${this.clientId}: ${err.message}`));
      return;
    }
    if (this.ackLen > 0) {
      if (!this.closing) this.socket.write(this.ackBuf.subarray(0, this.ackLen));
      this.ackBuf = null;
      this.ackLen = 0;
    }
    this.afterChunk();
  }

  /**
   * Acknowledgements caused by one chunk leave in one write. Each is 4 bytes and answers a
   * packet of at least 4 bytes, so the chunk's length bounds their total.
   */
  queueAck(first, hi, lo) {
    if (this.ackBuf === null) this.ackBuf = Buffer.allocUnsafe(this.chunkLength + 8);
    const b = this.ackBuf;
    const i = this.ackLen;
    b[i] = first;
    b[i + 1] = 2;
    b[i + 2] = hi;
    b[i + 3] = lo;
    this.ackLen = i + 4;
  }

  afterChunk() {}

  onDrain() {}

  onPacket(first, buf, start, end) {
    const type = first >> 4;
    if (type === PUBLISH) this.onPublish(first, buf, start, end);
    else if (type === PUBACK) this.onPuback((buf[start] << 8) | buf[start + 1]);
    else if (type === PUBREC) this.onPubrec(buf[start], buf[start + 1]);
    else if (type === PUBREL) this.onPubrel(buf[start], buf[start + 1]);
    else if (type === PUBCOMP) this.onPubcomp((buf[start] << 8) | buf[start + 1]);
    else if (type === CONNACK) {
      const rc = buf[start + 1];
      this.sessionPresent = (buf[start] & 1) === 1;
      this.settle(rc === 0, `${this.clientId}: CONNACK return code ${rc}`, { sessionPresent: this.sessionPresent });
    } else if (type === SUBACK) {
      const granted = buf[end - 1];
      this.settle(granted !== 0x80, `${this.clientId}: SUBACK failure (0x80)`, granted);
    }
  }

  settle(ok, message, value) {
    const w = this.waiter;
    this.waiter = null;
    if (w === null) return;
    if (ok) w.resolve(value);
    else w.reject(new Error(message));
  }

  onPublish() {
    this.run.unexpected++;
  }

  onPuback() {
    this.run.unexpected++;
  }

  onPubrec() {
    this.run.unexpected++;
  }

  onPubrel() {
    this.run.unexpected++;
  }

  onPubcomp() {
    this.run.unexpected++;
  }
}

export class Subscriber extends Client {
  /**
   * `exact`: track distinct sequence numbers of every publisher (loss and duplicates counted
   * exactly); on for QoS 1 and 2 and for the persistent and retained scenarios.
   */
  constructor(run, clientId, clean, exact = false) {
    super(run, clientId, clean);
    this.port = run.subPort;
    const pubs = Math.max(1, run.publisherCount);
    this.high = new Int32Array(pubs).fill(-1);
    this.received = 0;
    this.late = 0;
    this.gaps = 0;
    this.seen = exact ? Array.from({ length: pubs }, () => new SeqSet()) : null;
    this.unique = 0;
    this.pubrels = 0;
  }

  onPublish(first, buf, start, end) {
    const run = this.run;
    let p = start + 2 + ((buf[start] << 8) | buf[start + 1]);
    const qos = (first >> 1) & 3;
    if (qos !== 0) {
      this.queueAck(qos === 1 ? PUBACK_FIRST : PUBREC_FIRST, buf[p], buf[p + 1]);
      p += 2;
    }
    if (end - p < PAYLOAD_HEADER) {
      run.foreign++;
      return;
    }
    const pub = (buf[p] << 8) | buf[p + 1];
    if (pub >= this.high.length) {
      run.foreign++;
      return;
    }
    const seq = buf.readUInt32BE(p + 2);
    this.received++;
    run.received++;
    const high = this.high[pub];
    if (seq > high) {
      if (seq !== high + 1) this.gaps++;
      this.high[pub] = seq;
    } else {
      this.late++;
    }
    if (this.seen?.[pub].add(seq)) {
      this.unique++;
      run.unique++;
    }
    if (run.recording) {
      run.windowReceived++;
      const ms = run.now - buf.readDoubleBE(p + 6);
      run.latency.recordMs(ms);
      if (run.slice !== null) run.slice.recordMs(ms);
    }
  }

  /** QoS 2, receiver side: PUBREL releases the id; answer PUBCOMP. */
  onPubrel(hi, lo) {
    this.pubrels++;
    this.queueAck(PUBCOMP_FIRST, hi, lo);
  }

  afterChunk() {
    this.run.onProgress();
  }
}

export class Publisher extends Client {
  /**
   * `topics`: one topic, or an array (message `seq` goes to topics[seq % length]).
   * `rate`: messages per second for this publisher (0: as fast as the window allows).
   */
  constructor(run, index, clientId, topics, quota, { retain = false, rate = 0 } = {}) {
    super(run, clientId, true);
    this.port = run.pubPort;
    this.index = index;
    this.qos = run.qos;
    this.window = run.window;
    const list = Array.isArray(topics) ? topics : [topics];
    this.templates = list.map((t) => new PublishTemplate(t, run.qos, run.payload, index, retain));
    this.maxLength = Math.max(...this.templates.map((t) => t.length));
    this.batchMax = Math.max(1, Math.floor(BATCH_BYTES / this.maxLength));
    this.wakeAt = rate > 0 ? 1 : Math.min(this.batchMax, Math.max(1, this.window >> 2));
    this.rate = rate;
    this.paceTimer = null;
    this.quota = quota;
    this.seq = 0;
    this.sent = 0;
    this.inflight = 0;
    this.acked = 0;
    this.nextId = 0;
    /** Per packet id: 0 free, 1 awaiting PUBACK or PUBREC, 2 awaiting PUBCOMP. */
    this.outstanding = this.qos > 0 ? new Uint8Array(65536) : null;
    /** Sequence numbers written off by the stall watchdog (QoS 0 window only). */
    this.released = -1;
    this.waitingDrain = false;
    this.waitingWindow = false;
    this.scheduled = false;
    this.pumpBound = () => this.pump();
    this.paceBound = () => {
      this.paceTimer = null;
      this.pump();
    };
    this.onAllAcked = null;
  }

  /** Messages this publisher may write now (window, quota, batch size; not the rate). */
  allowed() {
    const run = this.run;
    if (!run.sending) return 0;
    let n = this.quota - this.seq;
    if (this.qos > 0) n = Math.min(n, this.window - this.inflight);
    if (this.window > 0) {
      const seen = Math.max(run.deliveredHigh(this.index), this.released);
      n = Math.min(n, this.window - (this.seq - 1 - seen));
    }
    return Math.min(n, this.batchMax);
  }

  /**
   * A publisher blocked on its window writes again once a quarter of the window (or all it has
   * left to send) is free, so that it writes batches rather than a message at a time.
   */
  enough(n) {
    return n > 0 && n >= Math.min(this.wakeAt, this.quota - this.seq);
  }

  shouldWake() {
    return this.waitingWindow && !this.scheduled && this.enough(this.allowed());
  }

  schedule() {
    if (this.scheduled || this.closing) return;
    this.scheduled = true;
    setImmediate(this.pumpBound);
  }

  /** Fixed rate: wakes when the next message is due (at once if it already is). */
  pace(now) {
    if (this.paceTimer !== null || this.closing) return;
    const at = this.run.paceStart + (this.seq * 1000) / this.rate;
    if (at <= now) this.schedule();
    else this.paceTimer = setTimeout(this.paceBound, at - now);
  }

  pump() {
    this.scheduled = false;
    if (this.waitingDrain || this.closing || !this.run.sending || this.seq >= this.quota) return;
    let n = this.allowed();
    const now = performance.now();
    if (this.rate > 0) {
      const due = Math.floor(((now - this.run.paceStart) * this.rate) / 1000) + 1 - this.seq;
      if (due <= 0) {
        this.pace(now);
        return;
      }
      n = Math.min(n, due);
    }
    if (!this.enough(n)) {
      this.waitingWindow = true;
      return;
    }
    this.waitingWindow = false;
    const templates = this.templates;
    const single = templates.length === 1 ? templates[0] : null;
    const buf = Buffer.allocUnsafe(n * this.maxLength);
    let off = 0;
    for (let k = 0; k < n; k++) {
      let id = 0;
      if (this.qos > 0) {
        id = this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
        this.outstanding[id] = 1;
        this.inflight++;
      }
      const t = single ?? templates[this.seq % templates.length];
      off = t.fill(buf, off, this.seq++, now, id);
    }
    this.sent += n;
    this.run.sent += n;
    if (this.run.recording) this.run.windowSent += n;
    if (!this.socket.write(off === buf.length ? buf : buf.subarray(0, off))) {
      this.waitingDrain = true;
      return;
    }
    if (this.rate > 0) this.pace(now);
    else this.schedule();
  }

  onDrain() {
    this.waitingDrain = false;
    this.schedule();
  }

  onPuback(id) {
    if (this.qos !== 1 || this.outstanding[id] !== 1) {
      this.run.unexpected++;
      return;
    }
    this.complete(id);
  }

  /** QoS 2, sender side: PUBREC -> PUBREL, then PUBCOMP completes the message. */
  onPubrec(hi, lo) {
    const id = (hi << 8) | lo;
    if (this.qos !== 2 || this.outstanding[id] === 0) {
      this.run.unexpected++;
      return;
    }
    // A repeated PUBREC (state 2 already) is answered again, as the spec asks [MQTT-4.3.3-1].
    this.outstanding[id] = 2;
    this.queueAck(PUBREL_FIRST, hi, lo);
  }

  onPubcomp(id) {
    if (this.qos !== 2 || this.outstanding[id] !== 2) {
      this.run.unexpected++;
      return;
    }
    this.complete(id);
  }

  complete(id) {
    this.outstanding[id] = 0;
    this.inflight--;
    this.acked++;
    this.run.acked++;
    if (this.run.recording) this.run.windowAcked++;
    if (this.shouldWake()) this.schedule();
    if (this.inflight === 0 && this.seq === this.quota && this.onAllAcked !== null) this.onAllAcked();
  }

  /** Resolves when every PUBLISH written has been acknowledged (QoS 1 and 2). */
  allAcked() {
    if (this.inflight === 0 && this.seq === this.quota) return Promise.resolve();
    return new Promise((resolve) => {
      this.onAllAcked = resolve;
    });
  }

  destroy() {
    if (this.paceTimer !== null) clearTimeout(this.paceTimer);
    super.destroy();
  }

  disconnect() {
    if (this.paceTimer !== null) clearTimeout(this.paceTimer);
    this.paceTimer = null;
    return super.disconnect();
  }
}
