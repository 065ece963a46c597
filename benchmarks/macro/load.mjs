/**
 * Tern macro load tool: drives one MQTT 3.1.1 broker on the loopback interface with a
 * scenario and reports delivered msgs/s, loss and latency. Every run is bounded in messages
 * or time and by --timeout, and stops by itself.
 *
 *   node benchmarks/macro/load.mjs --port 1883 --scenario fanin [--duration 5 --warmup 1]
 *   node benchmarks/macro/load.mjs --port 1883 --scenario qos1 --messages 200000
 *   node benchmarks/macro/load.mjs --port 1883 --scenario persistent [--messages 10000]
 *
 * Scenarios (all subscribers use the filter 'bench/#'):
 *   fanin       8 publishers (topic bench/<i>) -> 1 subscriber, QoS 0
 *   fanout      1 publisher (topic bench/fanout) -> 64 subscribers, QoS 0
 *   qos1        4 publishers, QoS 1 with --window unacknowledged PUBLISHes each -> 1 subscriber at
 *               QoS 1 that acks every PUBLISH; latency publish -> delivery from the payload stamp
 *   persistent  'bench-persist' (cleanSession=false) subscribes at QoS 1 and disconnects; 10,000
 *               QoS 1 messages are published (all PUBACKed) while it is away; it reconnects and the
 *               tool times how long until all have arrived, acking each one
 *   pub-only    publishers only (tool capacity against benchmarks/macro/null-broker.mjs)
 *   sub-only    subscribers only (tool capacity: the null broker streams PUBLISHes to them)
 *
 * Flow control. Each publisher keeps at most --window messages not yet seen by every subscriber
 * (end to end: the tool sees both ends), and at QoS 1 also at most --window PUBLISHes without
 * PUBACK. Without the end-to-end bound a fast publisher only measures how much a broker buffers
 * or drops (a broker acks QoS 1 on receipt and queues); with it the figure is the rate the broker
 * sustains. --window 0 makes QoS 0 open loop (TCP backpressure only). Socket backpressure
 * ('drain') is always honoured.
 *
 * --broker-pid <pid> adds the broker's CPU use over the measured window (from /proc, Linux),
 * next to the tool's own, to show which side was saturated.
 *
 * Output: a summary, or one JSON object with --json (benchmarks/macro/compare.mjs reads it).
 * Exit code 0 when the run completed (loss is reported, not an error), 1 on error or timeout.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  CONNACK,
  connectBytes,
  DISCONNECT_BYTES,
  FrameScanner,
  PAYLOAD_HEADER,
  PUBACK,
  PUBLISH,
  PublishTemplate,
  SUBACK,
  subscribeBytes,
} from './wire.mjs';

const SCENARIOS = {
  fanin: { publishers: 8, subscribers: 1, qos: 0, window: 256 },
  fanout: { publishers: 1, subscribers: 64, qos: 0, window: 256 },
  qos1: { publishers: 4, subscribers: 1, qos: 1, window: 32 },
  persistent: { publishers: 1, subscribers: 1, qos: 1, window: 1000, messages: 10000 },
  'pub-only': { publishers: 8, subscribers: 0, qos: 0, window: 0 },
  'sub-only': { publishers: 0, subscribers: 1, qos: 0, window: 0 },
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
/** Bytes per write for one publisher's batch of PUBLISHes. */
const BATCH_BYTES = 16 * 1024;
/** A run with no delivery for this long after publishing stopped is over (the rest is lost). */
const IDLE_MS = 1000;

// ---------------------------------------------------------------------------------------
// Latency samples: a reservoir that halves itself (keeping every other sample) when full,
// so a long run keeps an evenly spread sample in bounded memory.
// ---------------------------------------------------------------------------------------

class Reservoir {
  constructor(capacity = 1 << 20) {
    this.data = new Float64Array(capacity);
    this.n = 0;
    this.stride = 1;
    this.skip = 0;
    this.count = 0;
  }

  add(v) {
    this.count++;
    if (++this.skip < this.stride) return;
    this.skip = 0;
    if (this.n === this.data.length) {
      const d = this.data;
      const half = d.length >> 1;
      for (let i = 0; i < half; i++) d[i] = d[2 * i];
      this.n = half;
      this.stride *= 2;
    }
    this.data[this.n++] = v;
  }

  summary() {
    if (this.n === 0) return null;
    const s = this.data.subarray(0, this.n).sort();
    const at = (p) => s[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))];
    return {
      p50: round3(at(50)),
      p90: round3(at(90)),
      p99: round3(at(99)),
      max: round3(s[this.n - 1]),
      samples: this.n,
    };
  }
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

class Client {
  constructor(run, clientId, clean) {
    this.run = run;
    this.clientId = clientId;
    this.clean = clean;
    this.socket = null;
    this.closing = false;
    this.closed = false;
    this.waiter = null;
    this.sessionPresent = false;
    this.scanner = new FrameScanner((first, buf, start, end) => this.onPacket(first, buf, start, end));
    run.clients.add(this);
  }

  /** Opens the socket and sends CONNECT; resolves on CONNACK 0. */
  connect() {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, what: 'CONNACK' };
      const socket = net.connect({ host: this.run.host, port: this.run.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(connectBytes(this.clientId, this.clean)));
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
    if (this.closed) return Promise.resolve();
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
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w.reject(err);
    else this.run.fail(err);
  }

  onData(chunk) {
    this.run.now = performance.now();
    try {
      this.scanner.push(chunk);
    } catch (err) {
      this.fail(new Error(`${this.clientId}: ${err.message}`));
      return;
    }
    this.afterChunk();
  }

  afterChunk() {}

  onDrain() {}

  onPacket(first, buf, start, end) {
    const type = first >> 4;
    if (type === PUBLISH) this.onPublish(first, buf, start, end);
    else if (type === PUBACK) this.onPuback((buf[start] << 8) | buf[start + 1]);
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
}

class Subscriber extends Client {
  /** `exact`: the number of distinct sequence numbers expected from publisher 0 (persistent). */
  constructor(run, clientId, clean, exact = 0) {
    super(run, clientId, clean);
    this.high = new Int32Array(Math.max(1, run.publisherCount)).fill(-1);
    this.received = 0;
    this.late = 0;
    this.gaps = 0;
    this.seen = exact > 0 ? new Uint8Array(exact) : null;
    this.unique = 0;
    this.ackBuf = null;
    this.ackLen = 0;
  }

  onData(chunk) {
    this.ackBuf = null;
    this.ackLen = 0;
    this.chunkLength = chunk.length;
    super.onData(chunk);
  }

  onPublish(first, buf, start, end) {
    const run = this.run;
    let p = start + 2 + ((buf[start] << 8) | buf[start + 1]);
    if ((first & 0x06) !== 0) {
      this.queueAck(buf[p], buf[p + 1]);
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
    if (this.seen !== null && seq < this.seen.length && this.seen[seq] === 0) {
      this.seen[seq] = 1;
      this.unique++;
    }
    if (run.recording) {
      run.windowReceived++;
      run.latency.add(run.now - buf.readDoubleBE(p + 6));
    }
  }

  /** PUBACKs of one chunk leave in one write. A QoS 1 PUBLISH is at least 6 bytes, its PUBACK 4. */
  queueAck(hi, lo) {
    if (this.ackBuf === null) this.ackBuf = Buffer.allocUnsafe(Math.ceil((this.chunkLength * 2) / 3) + 8);
    const b = this.ackBuf;
    const i = this.ackLen;
    b[i] = 0x40;
    b[i + 1] = 2;
    b[i + 2] = hi;
    b[i + 3] = lo;
    this.ackLen = i + 4;
  }

  afterChunk() {
    if (this.ackLen > 0 && !this.closing) this.socket.write(this.ackBuf.subarray(0, this.ackLen));
    this.ackBuf = null;
    this.run.onProgress();
  }
}

class Publisher extends Client {
  constructor(run, index, clientId, topic, quota) {
    super(run, clientId, true);
    this.index = index;
    this.qos = run.qos;
    this.window = run.window;
    this.template = new PublishTemplate(topic, run.qos, run.payload, index);
    this.batchMax = Math.max(1, Math.floor(BATCH_BYTES / this.template.length));
    this.wakeAt = Math.min(this.batchMax, Math.max(1, this.window >> 2));
    this.quota = quota;
    this.seq = 0;
    this.sent = 0;
    this.inflight = 0;
    this.acked = 0;
    this.nextId = 0;
    this.outstanding = this.qos > 0 ? new Uint8Array(65536) : null;
    /** Sequence numbers written off by the stall watchdog (QoS 0 window only). */
    this.released = -1;
    this.waitingDrain = false;
    this.waitingWindow = false;
    this.scheduled = false;
    this.pumpBound = () => this.pump();
    this.onAllAcked = null;
  }

  /** Messages this publisher may write now. */
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

  pump() {
    this.scheduled = false;
    if (this.waitingDrain || this.closing || !this.run.sending || this.seq >= this.quota) return;
    const n = this.allowed();
    if (!this.enough(n)) {
      this.waitingWindow = true;
      return;
    }
    this.waitingWindow = false;
    const t = this.template;
    const buf = Buffer.allocUnsafe(n * t.length);
    const now = performance.now();
    let off = 0;
    for (let k = 0; k < n; k++) {
      let id = 0;
      if (this.qos > 0) {
        id = this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
        this.outstanding[id] = 1;
        this.inflight++;
      }
      off = t.fill(buf, off, this.seq++, now, id);
    }
    this.sent += n;
    this.run.sent += n;
    if (this.run.recording) this.run.windowSent += n;
    if (!this.socket.write(buf)) {
      this.waitingDrain = true;
      return;
    }
    this.schedule();
  }

  onDrain() {
    this.waitingDrain = false;
    this.schedule();
  }

  onPuback(id) {
    if (this.outstanding === null || this.outstanding[id] === 0) {
      this.run.unexpected++;
      return;
    }
    this.outstanding[id] = 0;
    this.inflight--;
    this.acked++;
    this.run.acked++;
    if (this.run.recording) this.run.windowAcked++;
    if (this.shouldWake()) this.schedule();
    if (this.inflight === 0 && this.seq === this.quota && this.onAllAcked !== null) this.onAllAcked();
  }

  /** Resolves when every PUBLISH written has been acknowledged (QoS 1). */
  allAcked() {
    if (this.inflight === 0 && this.seq === this.quota) return Promise.resolve();
    return new Promise((resolve) => {
      this.onAllAcked = resolve;
    });
  }
}

// ---------------------------------------------------------------------------------------
// A run
// ---------------------------------------------------------------------------------------

class Run {
  constructor(opts) {
    Object.assign(this, opts);
    this.clients = new Set();
    this.publishers = [];
    this.subscribers = [];
    this.sending = false;
    this.recording = false;
    this.now = performance.now();
    this.sent = 0;
    this.acked = 0;
    this.received = 0;
    this.windowSent = 0;
    this.windowAcked = 0;
    this.windowReceived = 0;
    this.windowStart = 0;
    this.windowEnd = 0;
    this.lastProgress = 0;
    this.lastProgressCount = 0;
    this.unexpected = 0;
    this.foreign = 0;
    this.stalls = 0;
    this.latency = new Reservoir();
    this.cpu = null;
    this.cpuEnd = null;
    this.failure = null;
    this.failWaiters = [];
    this.progressHook = null;
  }

  fail(err) {
    if (this.failure !== null) return;
    this.failure = err;
    for (const reject of this.failWaiters) reject(err);
  }

  /** Rejects when the run fails (a connection dies, a timeout). */
  failed() {
    return new Promise((_, reject) => {
      if (this.failure !== null) reject(this.failure);
      else this.failWaiters.push(reject);
    });
  }

  /** Highest sequence number of publisher `index` seen by every subscriber. */
  deliveredHigh(index) {
    const subs = this.subscribers;
    if (subs.length === 0) return this.publishers[index].seq - 1;
    let min = subs[0].high[index];
    for (let i = 1; i < subs.length; i++) {
      const h = subs[i].high[index];
      if (h < min) min = h;
    }
    return min;
  }

  /** After each subscriber chunk: wake window-blocked publishers, run scenario hooks. */
  onProgress() {
    if (this.received !== this.lastProgressCount) {
      this.lastProgressCount = this.received;
      this.lastProgress = this.now;
    }
    for (const p of this.publishers) {
      if (p.shouldWake()) p.schedule();
    }
    if (this.progressHook !== null) this.progressHook();
  }

  expected() {
    return this.sent * this.subscribers.length;
  }

  destroyAll() {
    for (const c of this.clients) c.destroy();
  }
}

const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) of a process from /proc, or null. */
function procCpuSeconds(pid) {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine (all cores, everything but idle and iowait), or null. */
function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * Marks CPU counters; `end()` gives cores used over the span by the tool, the broker, the whole
 * machine, and everything else ('other': other processes on the machine, which make a run
 * unreliable when high).
 */
function cpuSpan(run) {
  const tool = process.cpuUsage();
  const broker = procCpuSeconds(run.brokerPid);
  const machine = machineBusySeconds();
  const t = performance.now();
  return () => {
    const seconds = (performance.now() - t) / 1000;
    const used = process.cpuUsage(tool);
    const brokerEnd = procCpuSeconds(run.brokerPid);
    const machineEnd = machineBusySeconds();
    const cores = {
      tool: round3((used.user + used.system) / 1e6 / seconds),
      broker: broker === null || brokerEnd === null ? null : round3((brokerEnd - broker) / seconds),
      machine: machine === null || machineEnd === null ? null : round3((machineEnd - machine) / seconds),
      other: null,
    };
    if (cores.broker !== null && cores.machine !== null) {
      cores.other = round3(Math.max(0, cores.machine - cores.tool - cores.broker));
    }
    return cores;
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `done()` every 10 ms; resolves true when it holds, false when nothing was sent, acked
 * or received for `idleMs`.
 */
async function waitUntil(run, done, idleMs) {
  let last = -1;
  let lastAt = 0;
  for (;;) {
    if (run.failure !== null) throw run.failure;
    if (done()) return true;
    const count = run.sent + run.acked + run.received;
    const now = performance.now();
    if (count !== last) {
      last = count;
      lastAt = now;
    } else if (now - lastAt > idleMs) return false;
    await sleep(10);
  }
}

/**
 * QoS 0 with a window: a publisher whose window has not moved for a second while it waits has
 * lost its window's worth of messages in the broker; the watchdog writes them off (counted as
 * stalls, the loss shows in the accounting) so the run goes on.
 */
function startWatchdog(run) {
  const marks = run.publishers.map(() => ({ high: -2, at: performance.now() }));
  const timer = setInterval(() => {
    const now = performance.now();
    run.publishers.forEach((p, i) => {
      if (p.window === 0) return;
      const high = Math.max(run.deliveredHigh(i), p.released);
      const m = marks[i];
      if (high !== m.high || !p.waitingWindow) {
        m.high = high;
        m.at = now;
      } else if (now - m.at > 1000) {
        p.released = p.seq - 1;
        run.stalls++;
        m.at = now;
        p.schedule();
      }
    });
  }, 250);
  return () => clearInterval(timer);
}

/** Loss and ordering counts once a run has drained. */
function accounting(run) {
  let late = 0;
  let gaps = 0;
  for (const s of run.subscribers) {
    late += s.late;
    gaps += s.gaps;
  }
  const expected = run.expected();
  const lost = run.subscribers.length === 0 || run.publishers.length === 0 ? null : expected - (run.received - late);
  return {
    sent: run.sent,
    acked: run.qos > 0 ? run.acked : undefined,
    expected: run.publishers.length === 0 ? null : expected,
    received: run.received,
    lost,
    lossPct: lost === null || expected === 0 ? null : round3((lost / expected) * 100),
    outOfOrder: late,
    gaps,
    stalls: run.stalls,
    unexpectedPackets: run.unexpected,
    foreignPublishes: run.foreign,
  };
}

async function connectAll(run) {
  const { publisherCount: pubCount, subscriberCount: subCount, scenario } = run;
  const tag = process.pid;
  for (let i = 0; i < subCount; i++) run.subscribers.push(new Subscriber(run, `bench-sub-${tag}-${i}`, true));
  for (let i = 0; i < pubCount; i++) {
    const topic = scenario === 'fanout' ? 'bench/fanout' : `bench/${i}`;
    const quota =
      run.messages > 0 ? Math.floor(run.messages / pubCount) + (i < run.messages % pubCount ? 1 : 0) : 2 ** 31 - 1;
    run.publishers.push(new Publisher(run, i, `bench-pub-${tag}-${i}`, topic, quota));
  }
  await Promise.all(
    run.subscribers.map(async (s) => {
      await s.connect();
      await s.subscribe('bench/#', run.qos);
    }),
  );
  await Promise.all(run.publishers.map((p) => p.connect()));
}

/** fanin, fanout, qos1, pub-only, sub-only: a flow measured in a window after a warmup. */
async function runFlow(run) {
  await connectAll(run);
  const t0 = performance.now();
  const stopWatchdog = startWatchdog(run);
  run.sending = true;
  for (const p of run.publishers) p.schedule();

  if (run.messages > 0) {
    // Count mode: the window opens once --warmup-fraction of the deliveries have arrived and
    // closes at the last delivery.
    const expectedTotal = run.messages * run.subscribers.length;
    const warmupCount = Math.floor(expectedTotal * run.warmupFraction);
    run.progressHook = () => {
      if (!run.recording && run.windowStart === 0 && run.received >= warmupCount) {
        run.recording = true;
        run.windowStart = run.now;
        run.cpuEnd = cpuSpan(run);
      }
    };
    const allSent = () => run.publishers.every((p) => p.seq === p.quota && (p.qos === 0 || p.inflight === 0));
    await waitUntil(run, () => allSent() && run.received >= run.expected(), IDLE_MS);
    run.recording = false;
    run.windowEnd = run.lastProgress;
    run.cpu = run.cpuEnd?.() ?? null;
  } else {
    await sleep(run.warmup * 1000);
    run.windowStart = performance.now();
    run.recording = true;
    const cpuEnd = cpuSpan(run);
    await sleep(run.duration * 1000);
    run.recording = false;
    run.windowEnd = performance.now();
    run.cpu = cpuEnd();
    run.sending = false;
    if (run.subscribers.length > 0 && run.publishers.length > 0) {
      const deadline = performance.now() + run.drainTimeout * 1000;
      await waitUntil(
        run,
        () =>
          (run.received >= run.expected() && run.publishers.every((p) => p.inflight === 0)) ||
          performance.now() > deadline,
        IDLE_MS,
      );
    } else if (run.qos > 0) {
      await waitUntil(run, () => run.publishers.every((p) => p.inflight === 0), IDLE_MS);
    }
  }
  stopWatchdog();
  const seconds = (run.windowEnd - run.windowStart) / 1000;
  const rate = (n) => (seconds > 0 ? Math.round(n / seconds) : 0);
  await Promise.all([...run.clients].map((c) => c.disconnect()));
  return {
    seconds: round3(seconds),
    totalSeconds: round3((performance.now() - t0) / 1000),
    deliveredRate: rate(run.windowReceived),
    offeredRate: rate(run.windowSent),
    ackedRate: run.qos > 0 ? rate(run.windowAcked) : undefined,
    cpuCores: run.cpu,
    // sub-only is fed by another process: its send stamps are on another clock.
    latencyMs: run.publisherCount > 0 ? run.latency.summary() : undefined,
    ...accounting(run),
  };
}

/** persistent: an offline queue of QoS 1 messages drained on reconnect. */
async function runPersistent(run) {
  const id = 'bench-persist';
  const n = run.messages;
  // Start from no session, whatever an earlier run left.
  let s = new Subscriber(run, id, true);
  await s.connect();
  await s.disconnect();
  s = new Subscriber(run, id, false);
  await s.connect();
  await s.subscribe('bench/persist/#', 1);
  await s.disconnect();

  const pub = new Publisher(run, 0, `bench-persist-pub-${process.pid}`, 'bench/persist/0', n);
  run.publishers.push(pub);
  await pub.connect();
  const tp = performance.now();
  run.sending = true;
  pub.schedule();
  await Promise.race([pub.allAcked(), run.failed()]);
  const publishSeconds = (performance.now() - tp) / 1000;
  run.sending = false;

  const sub = new Subscriber(run, id, false, n);
  run.subscribers.push(sub);
  let doneAt = 0;
  run.progressHook = () => {
    if (doneAt === 0 && sub.unique === n) doneAt = run.now;
  };
  const t0 = performance.now();
  run.recording = false;
  const cpuEnd = cpuSpan(run);
  const connack = await sub.connect();
  const allArrived = await waitUntil(run, () => doneAt > 0, 3000);
  const cpu = cpuEnd();
  const end = allArrived ? doneAt : run.lastProgress;
  // Leave no session behind.
  await sub.disconnect();
  const wipe = new Subscriber(run, id, true);
  await wipe.connect();
  await wipe.disconnect();
  await pub.disconnect();
  const drainSeconds = (end - t0) / 1000;
  return {
    drainSeconds: round3(drainSeconds),
    drainRate: drainSeconds > 0 ? Math.round(sub.unique / drainSeconds) : 0,
    allArrived,
    sessionPresent: connack.sessionPresent,
    unique: sub.unique,
    duplicates: sub.received - sub.unique,
    publishSeconds: round3(publishSeconds),
    publishRate: Math.round(n / publishSeconds),
    cpuCores: cpu,
    ...accounting(run),
    lost: n - sub.unique,
    lossPct: round3(((n - sub.unique) / n) * 100),
  };
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

const USAGE = `usage: node benchmarks/macro/load.mjs --scenario <${Object.keys(SCENARIOS).join('|')}> [options]
  --host <addr>             loopback address of the broker (default 127.0.0.1)
  --port <n>                broker port (default 1883)
  --duration <s>            measured seconds (default 5)
  --warmup <s>              seconds before the window opens (default 1)
  --messages <n>            count mode: publish n messages in all, then drain
                            (persistent: default 10000)
  --warmup-fraction <f>     count mode: share of deliveries before the window opens (default 0.1)
  --payload <bytes>         payload size, at least ${PAYLOAD_HEADER} (default 64)
  --publishers <n>          override the scenario's publisher count
  --subscribers <n>         override the scenario's subscriber count
  --qos <0|1>               override the scenario's QoS (pub-only, sub-only)
  --window <n>              per publisher: QoS 0 messages not yet delivered, QoS 1 unacked
                            PUBLISHes (0 = QoS 0 open loop)
  --drain-timeout <s>       longest wait for in-flight messages after publishing (default 10)
  --timeout <s>             hard limit for the whole run (default 60)
  --label <name>            broker name copied into the result
  --broker-pid <pid>        report the broker's CPU use over the window (Linux /proc)
  --json                    print one JSON object`;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '1883' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      messages: { type: 'string' },
      'warmup-fraction': { type: 'string', default: '0.1' },
      payload: { type: 'string', default: '64' },
      publishers: { type: 'string' },
      subscribers: { type: 'string' },
      qos: { type: 'string' },
      window: { type: 'string' },
      'drain-timeout': { type: 'string', default: '10' },
      timeout: { type: 'string', default: '60' },
      label: { type: 'string', default: '' },
      'broker-pid': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const preset = SCENARIOS[values.scenario];
  if (preset === undefined) throw new Error(`unknown --scenario ${values.scenario}\n${USAGE}`);
  if (!LOOPBACK.test(values.host)) throw new Error(`--host must be a loopback address, got ${values.host}`);
  const num = (name, v, min, max = Number.MAX_SAFE_INTEGER) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min || x > max) throw new Error(`bad --${name} ${v}`);
    return x;
  };
  const opts = {
    scenario: values.scenario,
    label: values.label,
    host: values.host,
    port: num('port', values.port, 1, 65535),
    duration: num('duration', values.duration, 0.1, 600),
    warmup: num('warmup', values.warmup, 0, 600),
    messages: num('messages', values.messages ?? preset.messages ?? 0, 0, 2 ** 31 - 1),
    warmupFraction: num('warmup-fraction', values['warmup-fraction'], 0, 0.9),
    payload: num('payload', values.payload, PAYLOAD_HEADER, 256 * 1024 * 1024),
    publisherCount: num('publishers', values.publishers ?? preset.publishers, 0, 65535),
    subscriberCount: num('subscribers', values.subscribers ?? preset.subscribers, 0, 10000),
    qos: num('qos', values.qos ?? preset.qos, 0, 1),
    window: num('window', values.window ?? preset.window, 0, 60000),
    drainTimeout: num('drain-timeout', values['drain-timeout'], 0, 600),
    timeout: num('timeout', values.timeout, 1, 3600),
    json: values.json,
    brokerPid: values['broker-pid'] ? num('broker-pid', values['broker-pid'], 1) : 0,
  };
  if (opts.qos > 0 && opts.window === 0 && opts.publisherCount > 0) throw new Error('QoS 1 needs --window >= 1');
  if (opts.scenario === 'persistent' && opts.messages === 0) throw new Error('persistent needs --messages >= 1');
  if (opts.messages > 0 && (opts.publisherCount === 0 || opts.subscriberCount === 0)) {
    throw new Error(
      'count mode (--messages) needs publishers and subscribers; pub-only and sub-only run for --duration',
    );
  }
  return opts;
}

function cpuText(c) {
  return `tool ${c.tool}, broker ${c.broker ?? 'n/a'}, machine ${c.machine ?? 'n/a'}, other processes ${c.other ?? 'n/a'}`;
}

function describe(r) {
  const lines = [`${r.scenario}${r.label ? ` on ${r.label}` : ''} (${r.host}:${r.port}, payload ${r.payload} B)`];
  if (r.error) lines.push(`  error: ${r.error}`);
  if (r.scenario === 'persistent') {
    lines.push(
      `  published ${r.sent} QoS 1 while away in ${r.publishSeconds} s (${r.publishRate} msgs/s)`,
      `  drained ${r.unique}/${r.sent} in ${r.drainSeconds} s (${r.drainRate} msgs/s); all arrived: ${r.allArrived}; session present: ${r.sessionPresent}; duplicates: ${r.duplicates}`,
    );
    if (r.cpuCores) lines.push(`  cpu cores used while draining: ${cpuText(r.cpuCores)}`);
    return lines.join('\n');
  }
  if (r.deliveredRate !== undefined) {
    lines.push(
      `  delivered ${r.deliveredRate} msgs/s, offered ${r.offeredRate} msgs/s${r.ackedRate !== undefined ? `, acked ${r.ackedRate} msgs/s` : ''} over ${r.seconds} s`,
    );
    if (r.latencyMs)
      lines.push(
        `  latency ms: p50 ${r.latencyMs.p50}  p90 ${r.latencyMs.p90}  p99 ${r.latencyMs.p99}  max ${r.latencyMs.max}`,
      );
    if (r.cpuCores) lines.push(`  cpu cores used: ${cpuText(r.cpuCores)}`);
    lines.push(
      `  sent ${r.sent}, expected ${r.expected}, received ${r.received}, lost ${r.lost} (${r.lossPct}%), out of order ${r.outOfOrder}, stalls ${r.stalls}`,
    );
  }
  return lines.join('\n');
}

async function main() {
  let opts;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  const run = new Run(opts);
  const base = {
    tool: 'tern-load',
    scenario: opts.scenario,
    label: opts.label,
    host: opts.host,
    port: opts.port,
    qos: opts.qos,
    publishers: opts.publisherCount,
    subscribers: opts.subscriberCount,
    payload: opts.payload,
    window: opts.window,
    mode: opts.scenario === 'persistent' ? 'persistent' : opts.messages > 0 ? 'count' : 'duration',
    messages: opts.messages || undefined,
    duration: opts.messages > 0 ? undefined : opts.duration,
    warmup: opts.messages > 0 ? undefined : opts.warmup,
  };
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${opts.timeout} s`)), opts.timeout * 1000);
  });
  let result;
  let code = 0;
  try {
    const flow = opts.scenario === 'persistent' ? runPersistent(run) : runFlow(run);
    result = { ...base, ...(await Promise.race([flow, timeout, run.failed()])) };
  } catch (err) {
    code = 1;
    result = { ...base, error: err.message, timedOut: /timed out/.test(err.message), ...accounting(run) };
    run.destroyAll();
  } finally {
    clearTimeout(timer);
  }
  if (opts.json) console.log(JSON.stringify(result));
  else console.log(describe(result));
  // Sockets are closed; exit without waiting for stray timers of a failed run.
  process.exit(code);
}

await main();
