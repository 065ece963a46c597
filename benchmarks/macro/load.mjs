#!/usr/bin/env node
/**
 * Tern macro load tool (`tern-bench`, `npm run bench -- ...`): drives one MQTT 3.1.1 broker on the
 * loopback interface with a scenario and reports rates, loss, duplicates, latency (HdrHistogram
 * layout: p50/p99/p99.9/max), memory and CPU. Every run is bounded in messages or time and by
 * --timeout, and stops by itself.
 *
 *   node benchmarks/macro/load.mjs --port 1883 --scenario fanin [--duration 5 --warmup 1]
 *   node benchmarks/macro/load.mjs --port 1883 --scenario qos2 --messages 200000
 *   node benchmarks/macro/load.mjs --port 1883 --scenario idle --connections 10000 --broker-pid 1234
 *
 * Scenarios (subscribers use the filter 'bench/#' unless said otherwise):
 *   fanin       8 publishers (topic bench/<i>) -> 1 subscriber, QoS 0
 *   fanout      1 publisher (topic bench/fanout) -> 64 subscribers, QoS 0
 *   qos1        4 publishers, QoS 1 with --window unacknowledged PUBLISHes each -> 1 subscriber at
 *               QoS 1 that acks every PUBLISH; loss and duplicates counted per sequence number
 *   qos2        as qos1 with QoS 2 and the whole flow on both sides (PUBREC, PUBREL, PUBCOMP),
 *               window 16 (Mosquitto closes a connection with more than 20 incoming in flight)
 *   latency     1 publisher -> 1 subscriber, QoS 0, at a fixed --rate (default 1000 msgs/s, open
 *               loop): publish -> delivery latency p50/p99/p99.9/max over --duration (default 10 s)
 *   persistent  'bench-persist' (cleanSession=false) subscribes at QoS 1 and disconnects; 10,000
 *               QoS 1 messages are published (all PUBACKed) while it is away; it reconnects and the
 *               tool times how long until all have arrived, acking each one
 *   retained    10,000 retained QoS 1 messages on bench/retained/<i> (all PUBACKed), then a new
 *               subscriber to 'bench/retained/#' (QoS --sub-qos, default 0): time from SUBSCRIBE
 *               until all have arrived; the retained messages are deleted afterwards
 *   idle        --connections (default 10,000) connections with CONNECT, at most --concurrency
 *               handshakes at once (and at most --ramp per second if set); connect rate and
 *               CONNACK latency; with --broker-pid the broker's RSS (VmRSS, still for 3 s) before and
 *               after, and KiB per idle connection
 *   soak        4 publishers -> 4 subscribers, QoS 1, at a fixed --rate (default 4000 msgs/s) for
 *               --duration (default 60 s); per slice (--slice, default a tenth) delivered rate,
 *               p50/p99 and the broker's RSS; drift of p99 and RSS from the first to the last slice
 *   fanin-cross       fanin with the publishers on node A (--pub-port) and the subscriber on
 *                     node B (--sub-port) of a cluster: every message crosses between nodes
 *   persistent-cross  persistent with the session made on node A (--pub-port, where the messages
 *                     are published too) and resumed on node B (--sub-port): the queue must
 *                     follow the session to the other node
 *   pub-only    publishers only (tool capacity against benchmarks/macro/null-broker.mjs)
 *   sub-only    subscribers only (tool capacity: the null broker streams PUBLISHes to them)
 *
 * Flow control. Each publisher keeps at most --window messages not yet seen by every subscriber
 * (end to end: the tool sees both ends), and at QoS 1/2 also at most --window PUBLISHes without
 * their last acknowledgement. Without the end-to-end bound a fast publisher only measures how much
 * a broker buffers or drops; with it the figure is the rate the broker sustains. --window 0 makes
 * QoS 0 open loop (TCP backpressure only); --rate paces publishers at a fixed rate. Socket
 * backpressure ('drain') is always honoured.
 *
 * --broker-pid <pid> adds the broker's CPU use over the measured window (from /proc, Linux), next
 * to the tool's own, to show which side was saturated, and its RSS where a scenario reports it.
 *
 * Output: progress on stderr once a second (not with --json or --quiet), then a summary, or one
 * JSON object with --json (benchmarks/macro/compare.mjs reads it). Exit code 0 when the run
 * completed (loss is reported, not an error), 1 on error or timeout, 2 on a bad option.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Publisher, Subscriber } from './clients.mjs';
import { Histogram } from './histogram.mjs';
import { cpuSpan, ephemeralPorts, fdLimits, round3, rssKiB, settledRss } from './proc.mjs';
import { connectBytes, DISCONNECT_BYTES, emptyPublishBytes, PAYLOAD_HEADER } from './wire.mjs';

const SCENARIOS = {
  fanin: { publishers: 8, subscribers: 1, qos: 0, window: 256 },
  fanout: { publishers: 1, subscribers: 64, qos: 0, window: 256 },
  qos1: { publishers: 4, subscribers: 1, qos: 1, window: 32 },
  // 16: Mosquitto 2.0 closes a 3.1.1 connection with more than max_inflight_messages (20) QoS 2
  // PUBLISHes awaiting PUBREL.
  qos2: { publishers: 4, subscribers: 1, qos: 2, window: 16 },
  latency: { publishers: 1, subscribers: 1, qos: 0, window: 0, rate: 1000, duration: 10 },
  persistent: { publishers: 1, subscribers: 1, qos: 1, window: 1000, messages: 10000 },
  retained: { publishers: 1, subscribers: 1, qos: 1, subQos: 0, window: 1000, messages: 10000 },
  idle: { publishers: 0, subscribers: 0, qos: 0, window: 0, connections: 10000 },
  soak: { publishers: 4, subscribers: 4, qos: 1, window: 32, rate: 4000, duration: 60 },
  'pub-only': { publishers: 8, subscribers: 0, qos: 0, window: 0 },
  // Across two nodes of a cluster: publishers on --pub-port (node A), subscribers on --sub-port
  // (node B). `like` names the scenario whose flow they run.
  'fanin-cross': { like: 'fanin', cross: true, publishers: 8, subscribers: 1, qos: 0, window: 256 },
  'persistent-cross': {
    like: 'persistent',
    cross: true,
    publishers: 1,
    subscribers: 1,
    qos: 1,
    window: 1000,
    messages: 10000,
  },
  'sub-only': { publishers: 0, subscribers: 1, qos: 0, window: 0 },
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
/** A run with no delivery for this long after publishing stopped is over (the rest is lost). */
const IDLE_MS = 1000;
/** File descriptors the tool needs besides its connections (stdio, /proc reads, libuv). */
const FD_MARGIN = 64;

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
    this.paceStart = 0;
    this.sent = 0;
    this.acked = 0;
    this.received = 0;
    this.unique = 0;
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
    this.errors = 0;
    this.latency = new Histogram();
    /** Soak: the current slice's latency, recorded beside the whole run's. */
    this.slice = null;
    this.idle = { opened: 0, connected: 0, failed: 0, closed: 0 };
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

function fmtCount(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return String(Math.round(x));
}

/** Progress on stderr once a second: rates, connections, errors. A no-op with --json/--quiet. */
function startProgress(run) {
  if (run.json || run.quiet) return () => {};
  const tty = process.stderr.isTTY === true;
  const t0 = performance.now();
  let last = { t: t0, sent: 0, received: 0, acked: 0, connected: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const dt = (now - last.t) / 1000;
    const parts = [`${run.scenario} ${((now - t0) / 1000).toFixed(1)} s`];
    if (run.scenario === 'idle') {
      const c = run.idle;
      parts.push(
        `connected ${c.connected}/${run.connections}`,
        `${fmtCount((c.connected - last.connected) / dt)} conn/s`,
        `open ${c.opened - c.closed}`,
      );
      last = { ...last, t: now, connected: c.connected };
    } else {
      parts.push(
        `connections ${run.clients.size}`,
        `sent ${fmtCount((run.sent - last.sent) / dt)}/s`,
        `received ${fmtCount((run.received - last.received) / dt)}/s`,
      );
      if (run.qos > 0) parts.push(`acked ${fmtCount((run.acked - last.acked) / dt)}/s`);
      if (run.stalls > 0) parts.push(`stalls ${run.stalls}`);
      last = { ...last, t: now, sent: run.sent, received: run.received, acked: run.acked };
    }
    parts.push(`errors ${run.errors + run.idle.failed}`);
    const line = parts.join(', ');
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty) process.stderr.write('\r\x1b[K');
  };
}

/** Loss, duplicate and ordering counts once a run has drained. */
function accounting(run) {
  let late = 0;
  let gaps = 0;
  for (const s of run.subscribers) {
    late += s.late;
    gaps += s.gaps;
  }
  const subs = run.subscribers;
  const exact = subs.length > 0 && subs.every((s) => s.seen !== null);
  const expected = run.expected();
  const measurable = subs.length > 0 && run.publishers.length > 0;
  // With every sequence number tracked, loss and duplicates are exact; at QoS 0 (untracked, to
  // keep the receive path lean) a repeat shows as out of order and loss as expected - in order.
  const lost = !measurable ? null : exact ? expected - run.unique : expected - (run.received - late);
  return {
    sent: run.sent,
    acked: run.qos > 0 ? run.acked : undefined,
    expected: run.publishers.length === 0 ? null : expected,
    received: run.received,
    unique: exact ? run.unique : undefined,
    lost,
    lossPct: lost === null || expected === 0 ? null : round3((lost / expected) * 100),
    duplicates: exact ? run.received - run.unique : null,
    outOfOrder: late,
    gaps,
    stalls: run.stalls,
    unexpectedPackets: run.unexpected,
    foreignPublishes: run.foreign,
  };
}

function quotaOf(run, i, count) {
  return run.messages > 0 ? Math.floor(run.messages / count) + (i < run.messages % count ? 1 : 0) : 2 ** 31 - 1;
}

async function connectAll(run) {
  const { publisherCount: pubCount, subscriberCount: subCount } = run;
  const tag = process.pid;
  const exact = run.qos > 0 || run.subQos > 0;
  for (let i = 0; i < subCount; i++) {
    const id = run.clean ? `bench-sub-${tag}-${i}` : `bench-sub-${i}`;
    run.subscribers.push(new Subscriber(run, id, run.clean, exact));
  }
  const rate = run.rate > 0 && pubCount > 0 ? run.rate / pubCount : 0;
  for (let i = 0; i < pubCount; i++) {
    const topic = run.topic.replaceAll('{i}', String(i));
    const quota = quotaOf(run, i, pubCount);
    run.publishers.push(new Publisher(run, i, `bench-pub-${tag}-${i}`, topic, quota, { retain: run.retain, rate }));
  }
  await Promise.all(
    run.subscribers.map(async (s) => {
      await s.connect();
      await s.subscribe(run.filter, run.subQos);
    }),
  );
  await Promise.all(run.publishers.map((p) => p.connect()));
}

/**
 * Subscribers with cleanSession=false leave a session behind: end it with a clean connect, on
 * every node the run used (a cluster without shared sessions keeps one per node).
 */
async function wipeSessions(run, ids) {
  for (const id of ids) {
    for (const port of new Set([run.subPort, run.pubPort])) {
      const c = new Subscriber(run, id, true);
      c.port = port;
      await c.connect();
      await c.disconnect();
    }
  }
}

/**
 * Soak: every `sliceSeconds` of the window, the slice's delivered rate, latency and the
 * broker's RSS; the slice histogram starts afresh.
 */
function startSlices(run) {
  const slices = [];
  run.slice = new Histogram();
  let from = { t: performance.now(), received: run.windowReceived };
  const take = () => {
    const now = performance.now();
    const s = run.slice.summary();
    slices.push({
      atSeconds: round3((now - run.windowStart) / 1000),
      deliveredRate: Math.round((run.windowReceived - from.received) / ((now - from.t) / 1000)),
      p50: s?.p50 ?? null,
      p99: s?.p99 ?? null,
      max: s?.max ?? null,
      brokerRssKiB: rssKiB(run.brokerPid),
    });
    run.slice.reset();
    from = { t: now, received: run.windowReceived };
  };
  const timer = setInterval(take, run.sliceSeconds * 1000);
  return () => {
    clearInterval(timer);
    // The last slice, unless the timer has just taken it.
    if (performance.now() - from.t > run.sliceSeconds * 500) take();
    run.slice = null;
    return slices;
  };
}

function drift(slices) {
  if (slices.length < 2) return null;
  const a = slices[0];
  const b = slices[slices.length - 1];
  return {
    p99StartMs: a.p99,
    p99EndMs: b.p99,
    p99Ratio: a.p99 && b.p99 ? round3(b.p99 / a.p99) : null,
    rssStartKiB: a.brokerRssKiB,
    rssEndKiB: b.brokerRssKiB,
    rssGrowthKiB: a.brokerRssKiB !== null && b.brokerRssKiB !== null ? b.brokerRssKiB - a.brokerRssKiB : null,
    rateStart: a.deliveredRate,
    rateEnd: b.deliveredRate,
  };
}

/** fanin, fanout, qos1, qos2, latency, soak, pub-only, sub-only: a flow measured in a window. */
async function runFlow(run) {
  await connectAll(run);
  const t0 = performance.now();
  const stopWatchdog = startWatchdog(run);
  run.sending = true;
  run.paceStart = performance.now();
  for (const p of run.publishers) p.schedule();
  let slices = null;

  if (run.messages > 0) {
    // Count mode: the window opens once --warmup-fraction of the deliveries have arrived and
    // closes at the last delivery.
    const expectedTotal = run.messages * run.subscribers.length;
    const warmupCount = Math.floor(expectedTotal * run.warmupFraction);
    run.progressHook = () => {
      if (!run.recording && run.windowStart === 0 && run.received >= warmupCount) {
        run.recording = true;
        run.windowStart = run.now;
        run.cpuEnd = cpuSpan(run.brokerPid);
      }
    };
    const allSent = () => run.publishers.every((p) => p.seq === p.quota && (p.qos === 0 || p.inflight === 0));
    const done = () =>
      allSent() && (run.subscribers.every((s) => s.seen === null) ? run.received : run.unique) >= run.expected();
    await waitUntil(run, done, IDLE_MS);
    run.recording = false;
    run.windowEnd = run.lastProgress;
    run.cpu = run.cpuEnd?.() ?? null;
  } else {
    await sleep(run.warmup * 1000);
    run.windowStart = performance.now();
    run.recording = true;
    const cpuEnd = cpuSpan(run.brokerPid);
    const stopSlices = run.sliceSeconds > 0 ? startSlices(run) : null;
    await Promise.race([sleep(run.duration * 1000), run.failed()]);
    if (stopSlices !== null) slices = stopSlices();
    run.recording = false;
    run.windowEnd = performance.now();
    run.cpu = cpuEnd();
    run.sending = false;
    if (run.subscribers.length > 0 && run.publishers.length > 0) {
      const deadline = performance.now() + run.drainTimeout * 1000;
      const count = () => (run.subscribers.every((s) => s.seen === null) ? run.received : run.unique);
      await waitUntil(
        run,
        () =>
          (count() >= run.expected() && run.publishers.every((p) => p.inflight === 0)) || performance.now() > deadline,
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
  if (!run.clean)
    await wipeSessions(
      run,
      run.subscribers.map((s) => s.clientId),
    );
  return {
    seconds: round3(seconds),
    totalSeconds: round3((performance.now() - t0) / 1000),
    deliveredRate: rate(run.windowReceived),
    offeredRate: rate(run.windowSent),
    ackedRate: run.qos > 0 ? rate(run.windowAcked) : undefined,
    cpuCores: run.cpu,
    // sub-only is fed by another process: its send stamps are on another clock.
    latencyMs: run.publisherCount > 0 ? run.latency.summary() : undefined,
    slices: slices ?? undefined,
    drift: slices ? drift(slices) : undefined,
    brokerRssKiB: run.brokerPid ? rssKiB(run.brokerPid) : undefined,
    ...accounting(run),
  };
}

/** Connects `pub`, sends all its messages and waits for every PUBACK; returns the seconds it took. */
async function publishEverything(run, pub) {
  run.publishers.push(pub);
  await pub.connect();
  const tp = performance.now();
  run.sending = true;
  pub.schedule();
  await Promise.race([pub.allAcked(), run.failed()]);
  run.sending = false;
  return (performance.now() - tp) / 1000;
}

/**
 * persistent: an offline queue of QoS 1 messages drained on reconnect. The session is made
 * where the publisher connects (--pub-port) and resumed on --sub-port: the same broker unless
 * the run is across nodes (persistent-cross).
 */
async function runPersistent(run) {
  const id = 'bench-persist';
  const n = run.messages;
  // Start from no session, whatever an earlier run left.
  await wipeSessions(run, [id]);
  const s = new Subscriber(run, id, false);
  s.port = run.pubPort;
  await s.connect();
  await s.subscribe('bench/persist/#', 1);
  await s.disconnect();

  const pub = new Publisher(run, 0, `bench-persist-pub-${process.pid}`, 'bench/persist/0', n);
  const publishSeconds = await publishEverything(run, pub);

  const sub = new Subscriber(run, id, false, true);
  run.subscribers.push(sub);
  let doneAt = 0;
  run.progressHook = () => {
    if (doneAt === 0 && sub.unique === n) doneAt = run.now;
  };
  const t0 = performance.now();
  run.recording = false;
  const cpuEnd = cpuSpan(run.brokerPid);
  const connack = await sub.connect();
  const allArrived = await waitUntil(run, () => doneAt > 0, 3000);
  const cpu = cpuEnd();
  // Nothing at all may arrive (a session that did not follow the client to another node).
  const end = allArrived ? doneAt : Math.max(run.lastProgress, t0);
  // Leave no session behind.
  await sub.disconnect();
  await wipeSessions(run, [id]);
  await pub.disconnect();
  const drainSeconds = (end - t0) / 1000;
  return {
    drainSeconds: round3(drainSeconds),
    drainRate: drainSeconds > 0 ? Math.round(sub.unique / drainSeconds) : 0,
    allArrived,
    sessionPresent: connack.sessionPresent,
    publishSeconds: round3(publishSeconds),
    publishRate: Math.round(n / publishSeconds),
    cpuCores: cpu,
    ...accounting(run),
    lost: n - sub.unique,
    lossPct: round3(((n - sub.unique) / n) * 100),
    duplicates: sub.received - sub.unique,
  };
}

/** retained: n retained messages, then a new wildcard subscriber; time until all arrive. */
async function runRetained(run) {
  const n = run.messages;
  const tag = process.pid;
  const topics = Array.from({ length: n }, (_, i) => `bench/retained/${i}`);
  const pub = new Publisher(run, 0, `bench-retain-pub-${tag}`, topics, n, { retain: true });
  const publishSeconds = await publishEverything(run, pub);

  const sub = new Subscriber(run, `bench-retain-sub-${tag}`, true, true);
  run.subscribers.push(sub);
  await sub.connect();
  let doneAt = 0;
  run.progressHook = () => {
    if (doneAt === 0 && sub.unique === n) doneAt = run.now;
  };
  const cpuEnd = cpuSpan(run.brokerPid);
  const t0 = performance.now();
  const granted = await Promise.race([sub.subscribe('bench/retained/#', run.subQos), run.failed()]);
  const allArrived = await waitUntil(run, () => doneAt > 0, 3000);
  const cpu = cpuEnd();
  const end = allArrived ? doneAt : run.lastProgress;
  await sub.disconnect();
  if (!run.keepRetained) {
    // Empty retained payloads delete the messages, so the broker is left as it was found.
    pub.socket.write(Buffer.concat(topics.map((t) => emptyPublishBytes(t, true))));
  }
  await pub.disconnect();
  const seconds = (end - t0) / 1000;
  return {
    retainedSeconds: round3(seconds),
    retainedRate: seconds > 0 ? Math.round(sub.unique / seconds) : 0,
    allArrived,
    grantedQos: granted,
    publishSeconds: round3(publishSeconds),
    publishRate: Math.round(n / publishSeconds),
    cpuCores: cpu,
    sent: run.sent,
    acked: run.acked,
    expected: n,
    received: sub.received,
    unique: sub.unique,
    lost: n - sub.unique,
    lossPct: round3(((n - sub.unique) / n) * 100),
    duplicates: sub.received - sub.unique,
    unexpectedPackets: run.unexpected,
    foreignPublishes: run.foreign,
  };
}

/**
 * idle: opens connections (CONNECT, wait for CONNACK) with at most `concurrency` handshakes in
 * flight and at most `ramp` starts per second; holds them while the broker's RSS settles.
 */
/**
 * Opens `count` connections with CONNECT (at most `concurrency` handshakes at once), then ends
 * them with DISCONNECT and waits for every one to close. Run before the idle scenario's first
 * RSS reading, so the baseline is a broker that has served connections before (code compiled,
 * pools and tables grown, a cold start's garbage collected) and the growth is what the held
 * connections cost. Resolves with how many got a CONNACK.
 */
async function warmUpConnections(run, count, localAddress) {
  if (count === 0) return 0;
  let next = 0;
  let acked = 0;
  const sockets = [];
  await new Promise((resolve) => {
    let settled = 0;
    const one = () => {
      if (next >= count) return;
      const i = next++;
      const socket = net.connect({ host: run.host, port: run.port, localAddress: localAddress(i) });
      sockets.push(socket);
      let done = false;
      const finish = (ok) => {
        if (done) return;
        done = true;
        if (ok) acked++;
        else socket.destroy();
        if (++settled === count) resolve();
        else one();
      };
      socket.on('connect', () => socket.write(connectBytes(`bench-warm-${process.pid}-${i}`, true, run.keepalive)));
      socket.once('data', (chunk) => finish(chunk[0] === 0x20));
      socket.on('error', () => finish(false));
      socket.on('close', () => finish(false));
    };
    for (let k = 0; k < run.concurrency; k++) one();
  });
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', resolve);
          s.end(DISCONNECT_BYTES);
        }),
    ),
  );
  return acked;
}

async function runIdle(run) {
  const n = run.connections;
  const pid = run.brokerPid;
  const limits = fdLimits();
  if (limits !== null && n + FD_MARGIN > limits.soft) {
    throw new Error(
      `idle: ${n} connections need about ${n + FD_MARGIN} file descriptors in this process, and it may open ` +
        `${limits.soft} (ulimit -n; hard limit ${limits.hard}; raising the hard limit needs CAP_SYS_RESOURCE). ` +
        `Lower --connections or raise the limit.`,
    );
  }
  const brokerLimits = pid ? fdLimits(pid) : null;
  const ports = ephemeralPorts();
  const perSource = ports.high - ports.low + 1;
  const ipv4 = run.host !== '::1';
  const sources = run.sourceIps || (ipv4 ? Math.min(250, Math.ceil(n / Math.floor(perSource * 0.9))) : 1);
  if (sources > 1 && !ipv4) throw new Error('idle: --source-ips needs an IPv4 loopback --host');
  const localAddress = (i) => (sources > 1 ? `127.0.0.${1 + (i % sources)}` : undefined);

  const warmedUp = await warmUpConnections(run, run.warmupConnections, localAddress);
  const before = pid ? await settledRss(pid, { timeoutMs: run.settleTimeout * 1000 }) : null;
  const sockets = [];
  const errorCodes = {};
  const handshake = new Histogram();
  const c = run.idle;
  let dropped = 0;
  let closing = false;
  let firstError = null;
  const cpuEnd = cpuSpan(pid);
  const t0 = performance.now();
  let lastConnackAt = t0;

  // Opened in two halves: the broker's RSS is also read (settled) at the midpoint, so the cost
  // of the second half is a figure no baseline effect can touch (see kibPerConnectionSecondHalf).
  let next = 0;
  let active = 0;
  let settled = 0;
  let rampTimer = null;
  let target = 0;
  let reached = null;
  const openUpTo = (count) =>
    new Promise((resolve) => {
      target = count;
      reached = resolve;
      if (settled >= target) resolve();
      else launch();
    });
  // Ramp: at most run.ramp starts per second from the start of each half.
  let phaseStart = t0;
  let phaseBase = 0;
  const finish = () => {
    active--;
    if (++settled === target) reached();
    else launch();
  };
  const open = (i) => {
    active++;
    c.opened++;
    const started = performance.now();
    const socket = net.connect({ host: run.host, port: run.port, localAddress: localAddress(i) });
    sockets.push(socket);
    let state = 0; // 0 waiting, 1 connected, 2 failed
    let got = null;
    const failed = (why) => {
      if (state !== 0) return;
      state = 2;
      c.failed++;
      errorCodes[why] = (errorCodes[why] ?? 0) + 1;
      socket.destroy();
      finish();
    };
    socket.on('connect', () => socket.write(connectBytes(`bench-idle-${process.pid}-${i}`, true, run.keepalive)));
    socket.on('data', (chunk) => {
      if (state !== 0) return;
      got = got === null ? chunk : Buffer.concat([got, chunk]);
      if (got.length < 4) return;
      if (got[0] !== 0x20 || got[1] !== 2 || got[3] !== 0) {
        failed(got[0] === 0x20 ? `CONNACK ${got[3]}` : 'not a CONNACK');
        return;
      }
      state = 1;
      const now = performance.now();
      lastConnackAt = now;
      handshake.recordMs(now - started);
      c.connected++;
      finish();
    });
    socket.on('error', (err) => {
      firstError ??= err.message;
      failed(err.code ?? err.message);
    });
    socket.on('close', () => {
      c.closed++;
      if (state === 0) failed('closed before CONNACK');
      else if (state === 1 && !closing) dropped++;
      if (closing && c.closed === c.opened) run.allClosed?.();
    });
  };
  const launch = () => {
    const now = performance.now();
    let limit = target;
    if (run.ramp > 0) limit = Math.min(target, phaseBase + Math.floor(((now - phaseStart) * run.ramp) / 1000) + 1);
    while (active < run.concurrency && next < limit) open(next++);
    if (next < target && active < run.concurrency && rampTimer === null) {
      const at = phaseStart + ((next - phaseBase) * 1000) / run.ramp;
      rampTimer = setTimeout(
        () => {
          rampTimer = null;
          launch();
        },
        Math.max(1, at - now),
      );
    }
  };
  const half = Math.floor(n / 2);
  await openUpTo(half);
  let connectMs = lastConnackAt - t0;
  const mid = pid && half > 0 ? await settledRss(pid, { timeoutMs: run.settleTimeout * 1000 }) : null;
  const openAtMid = c.connected - dropped;
  phaseStart = performance.now();
  phaseBase = next;
  lastConnackAt = phaseStart;
  await openUpTo(n);
  connectMs += lastConnackAt - phaseStart;
  const connectSeconds = connectMs / 1000;
  const cpu = cpuEnd();
  const after = pid ? await settledRss(pid, { timeoutMs: run.settleTimeout * 1000 }) : null;
  const stillOpen = c.connected - dropped;

  // Close: DISCONNECT on each, wait for every socket to close (bounded), then destroy the rest.
  closing = true;
  const tc = performance.now();
  const allClosed = new Promise((resolve) => {
    run.allClosed = resolve;
    if (c.closed === c.opened) resolve();
  });
  for (const s of sockets) if (!s.destroyed) s.end(DISCONNECT_BYTES);
  const closedInTime = await Promise.race([allClosed.then(() => true), sleep(15000).then(() => false)]);
  for (const s of sockets) s.destroy();
  const grown = before !== null && after !== null ? after.kib - before.kib : null;
  return {
    connections: n,
    connected: c.connected,
    failed: c.failed,
    errorCodes,
    firstError: firstError ?? undefined,
    droppedWhileIdle: dropped,
    connectSeconds: round3(connectSeconds),
    connectRate: connectSeconds > 0 ? Math.round(c.connected / connectSeconds) : 0,
    connackLatencyMs: handshake.summary(),
    concurrency: run.concurrency,
    ramp: run.ramp,
    sourceIps: sources,
    warmupConnections: warmedUp,
    brokerRssBeforeKiB: before?.kib ?? null,
    brokerRssAfterKiB: after?.kib ?? null,
    rssSettled: before !== null && after !== null ? { before: before.settled, after: after.settled } : null,
    kibPerConnection: grown !== null && stillOpen > 0 ? round3(grown / stillOpen) : null,
    brokerRssMidKiB: mid?.kib ?? null,
    // The second half's growth over the second half's connections: what one more connection
    // costs a broker already holding thousands (no warm-up or baseline effect reaches it).
    kibPerConnectionSecondHalf:
      mid !== null && after !== null && stillOpen > openAtMid
        ? round3((after.kib - mid.kib) / (stillOpen - openAtMid))
        : null,
    closeSeconds: round3((performance.now() - tc) / 1000),
    closedInTime,
    fdLimit: limits?.soft ?? null,
    brokerFdLimit: brokerLimits?.soft ?? null,
    cpuCores: cpu,
  };
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

const USAGE = `usage: tern-bench --scenario <${Object.keys(SCENARIOS).join('|')}> [options]
       (npm run bench -- ...; node benchmarks/macro/load.mjs ...)
  --host <addr>             loopback address of the broker (default 127.0.0.1)
  --port <n>                broker port (default 1883)
  --pub-port <n>            publishers' port (default --port): node A of a cluster
  --sub-port <n>            subscribers' port (default --port): node B of a cluster
  --duration <s>            measured seconds (default 5; latency 10, soak 60)
  --warmup <s>              seconds before the window opens (default 1)
  --messages <n>            count mode: publish n messages in all, then drain
                            (persistent, retained: default 10000)
  --warmup-fraction <f>     count mode: share of deliveries before the window opens (default 0.1)
  --payload <bytes>         payload size, at least ${PAYLOAD_HEADER} (default 64)
  --publishers <n>          override the scenario's publisher count
  --subscribers <n>         override the scenario's subscriber count
  --qos <0|1|2>             override the scenario's publish QoS
  --sub-qos <0|1|2>         subscription QoS (default: the publish QoS; retained 0)
  --window <n>              per publisher: QoS 0 messages not yet delivered, QoS 1/2 PUBLISHes
                            not yet acknowledged (0 = QoS 0 open loop)
  --rate <msgs/s>           fixed publish rate over all publishers (0 = as fast as the window
                            allows; latency 1000, soak 4000)
  --topic <pattern>         publish topic, {i} = publisher index (default bench/{i};
                            fanout bench/fanout)
  --filter <filter>         subscription filter (default bench/#)
  --retain                  publish with the retain flag
  --clean <true|false>      subscribers' cleanSession (default true; false: sessions are
                            ended with a clean connect after the run)
  --keepalive <s>           keepalive in CONNECT (default: the --timeout, at least 300; the tool
                            sends no PINGREQ, so it must outlast the run)
  --connections <n>         idle: connections to open (default 10000)
  --concurrency <n>         idle: CONNECT handshakes in flight at once (default 64)
  --ramp <conns/s>          idle: at most this many new connections per second (default 0: no cap)
  --source-ips <n>          idle: spread connections over 127.0.0.1..127.0.0.n (default: enough
                            for the ephemeral port range, 1 up to ~25k connections)
  --warmup-connections <n>  idle: connections opened and closed before the first RSS reading, so
                            the baseline is a broker that has served connections (default 1000)
  --settle-timeout <s>      idle: longest wait for the broker's RSS to hold still for 3 s (default 20)
  --slice <s>               soak: seconds per slice (default a tenth of --duration, at least 1)
  --keep-retained           retained: leave the retained messages on the broker
  --drain-timeout <s>       longest wait for in-flight messages after publishing (default 10)
  --timeout <s>             hard limit for the whole run (default 60; soak: duration + 60)
  --label <name>            broker name copied into the result
  --broker-pid <pid>        report the broker's CPU use (and RSS) from /proc (Linux)
  --quiet                   no progress lines on stderr
  --json                    print one JSON object (implies --quiet)`;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '1883' },
      'pub-port': { type: 'string' },
      'sub-port': { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string', default: '1' },
      messages: { type: 'string' },
      'warmup-fraction': { type: 'string', default: '0.1' },
      payload: { type: 'string', default: '64' },
      publishers: { type: 'string' },
      subscribers: { type: 'string' },
      qos: { type: 'string' },
      'sub-qos': { type: 'string' },
      window: { type: 'string' },
      rate: { type: 'string' },
      topic: { type: 'string' },
      filter: { type: 'string', default: 'bench/#' },
      retain: { type: 'boolean', default: false },
      clean: { type: 'string', default: 'true' },
      keepalive: { type: 'string' },
      connections: { type: 'string' },
      concurrency: { type: 'string', default: '64' },
      ramp: { type: 'string', default: '0' },
      'source-ips': { type: 'string', default: '0' },
      'settle-timeout': { type: 'string', default: '20' },
      'warmup-connections': { type: 'string', default: '1000' },
      slice: { type: 'string' },
      'keep-retained': { type: 'boolean', default: false },
      'drain-timeout': { type: 'string', default: '10' },
      timeout: { type: 'string' },
      label: { type: 'string', default: '' },
      'broker-pid': { type: 'string' },
      quiet: { type: 'boolean', default: false },
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
  if (values.clean !== 'true' && values.clean !== 'false') throw new Error(`bad --clean ${values.clean}`);
  const num = (name, v, min, max = Number.MAX_SAFE_INTEGER) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min || x > max) throw new Error(`bad --${name} ${v}`);
    return x;
  };
  const scenario = values.scenario;
  /** The flow the scenario runs (a -cross scenario runs its single-node twin's). */
  const kind = preset.like ?? scenario;
  const duration = num('duration', values.duration ?? preset.duration ?? 5, 0.1, 24 * 3600);
  const timeout = num('timeout', values.timeout ?? (kind === 'soak' ? duration + 60 : 60), 1, 25 * 3600);
  const qos = num('qos', values.qos ?? preset.qos, 0, 2);
  const port = num('port', values.port, 1, 65535);
  const opts = {
    scenario,
    kind,
    label: values.label,
    host: values.host,
    port,
    pubPort: num('pub-port', values['pub-port'] ?? port, 1, 65535),
    subPort: num('sub-port', values['sub-port'] ?? port, 1, 65535),
    duration,
    warmup: num('warmup', values.warmup, 0, 600),
    messages: num('messages', values.messages ?? preset.messages ?? 0, 0, 2 ** 31 - 1),
    warmupFraction: num('warmup-fraction', values['warmup-fraction'], 0, 0.9),
    payload: num('payload', values.payload, PAYLOAD_HEADER, 256 * 1024 * 1024),
    publisherCount: num('publishers', values.publishers ?? preset.publishers, 0, 65535),
    subscriberCount: num('subscribers', values.subscribers ?? preset.subscribers, 0, 10000),
    qos,
    subQos: num('sub-qos', values['sub-qos'] ?? preset.subQos ?? qos, 0, 2),
    window: num('window', values.window ?? preset.window, 0, 60000),
    rate: num('rate', values.rate ?? preset.rate ?? 0, 0, 1e9),
    topic: values.topic ?? (kind === 'fanout' ? 'bench/fanout' : 'bench/{i}'),
    filter: values.filter,
    retain: values.retain,
    clean: values.clean === 'true',
    keepalive: num('keepalive', values.keepalive ?? Math.min(65535, Math.max(300, Math.ceil(timeout))), 0, 65535),
    connections: num('connections', values.connections ?? preset.connections ?? 0, 0, 10_000_000),
    concurrency: num('concurrency', values.concurrency, 1, 100000),
    ramp: num('ramp', values.ramp, 0, 1e9),
    sourceIps: num('source-ips', values['source-ips'], 0, 250),
    settleTimeout: num('settle-timeout', values['settle-timeout'], 0, 600),
    warmupConnections: num('warmup-connections', values['warmup-connections'], 0, 10_000_000),
    sliceSeconds:
      kind === 'soak' || values.slice !== undefined
        ? num('slice', values.slice ?? Math.max(1, duration / 10), 0.1, 3600)
        : 0,
    keepRetained: values['keep-retained'],
    drainTimeout: num('drain-timeout', values['drain-timeout'], 0, 600),
    timeout,
    json: values.json,
    quiet: values.quiet || values.json,
    brokerPid: values['broker-pid'] ? num('broker-pid', values['broker-pid'], 1) : 0,
  };
  if (opts.qos > 0 && opts.window === 0 && opts.publisherCount > 0) throw new Error('QoS 1 and 2 need --window >= 1');
  if (preset.cross && opts.pubPort === opts.subPort) {
    throw new Error(`${scenario} needs --pub-port and --sub-port on two different nodes`);
  }
  if ((kind === 'persistent' || kind === 'retained') && opts.messages === 0) {
    throw new Error(`${scenario} needs --messages >= 1`);
  }
  if (kind === 'retained' && opts.qos === 0) throw new Error('retained publishes at QoS 1 or 2 (--qos)');
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

function latencyText(l) {
  return `p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  (${l.samples} samples)`;
}

/** The end-of-run summary for a person. */
function describe(r) {
  const where =
    r.pubPort === r.subPort
      ? `${r.host}:${r.port}`
      : `publishers ${r.host}:${r.pubPort}, subscribers ${r.host}:${r.subPort}`;
  const lines = [`${r.scenario}${r.label ? ` on ${r.label}` : ''} (${where}, payload ${r.payload} B)`];
  if (r.error) lines.push(`  error: ${r.error}`);
  const kind = SCENARIOS[r.scenario]?.like ?? r.scenario;
  if (kind === 'persistent' && r.drainSeconds !== undefined) {
    lines.push(
      `  published ${r.sent} QoS 1 while away in ${r.publishSeconds} s (${r.publishRate} msgs/s)`,
      `  drained ${r.unique}/${r.sent} in ${r.drainSeconds} s (${r.drainRate} msgs/s); all arrived: ${r.allArrived}; session present: ${r.sessionPresent}; duplicates: ${r.duplicates}`,
    );
  } else if (kind === 'retained' && r.retainedSeconds !== undefined) {
    lines.push(
      `  stored ${r.acked} retained messages in ${r.publishSeconds} s (${r.publishRate} msgs/s)`,
      `  new subscriber (QoS ${r.grantedQos}) got ${r.unique}/${r.expected} in ${r.retainedSeconds} s (${r.retainedRate} msgs/s); all arrived: ${r.allArrived}; duplicates: ${r.duplicates}`,
    );
  } else if (kind === 'idle' && r.connected !== undefined) {
    lines.push(
      `  connected ${r.connected}/${r.connections} in ${r.connectSeconds} s (${r.connectRate} conn/s, ${r.concurrency} handshakes at once, ${r.sourceIps} source address(es)); failed ${r.failed}${r.failed ? ` ${JSON.stringify(r.errorCodes)}` : ''}; dropped while idle ${r.droppedWhileIdle}`,
    );
    if (r.connackLatencyMs) lines.push(`  CONNECT -> CONNACK ms: ${latencyText(r.connackLatencyMs)}`);
    if (r.brokerRssBeforeKiB !== null) {
      lines.push(
        `  broker RSS ${r.brokerRssBeforeKiB} KiB -> ${r.brokerRssMidKiB} KiB (half) -> ${r.brokerRssAfterKiB} KiB (settled: ${r.rssSettled.before}/${r.rssSettled.after}): ${r.kibPerConnection} KiB per idle connection, ${r.kibPerConnectionSecondHalf} KiB for each of the second half`,
      );
    } else lines.push('  broker RSS: n/a (give --broker-pid)');
  } else if (r.deliveredRate !== undefined) {
    lines.push(
      `  delivered ${r.deliveredRate} msgs/s, offered ${r.offeredRate} msgs/s${r.ackedRate !== undefined ? `, acked ${r.ackedRate} msgs/s` : ''} over ${r.seconds} s`,
    );
    if (r.latencyMs) lines.push(`  latency ms: ${latencyText(r.latencyMs)}`);
    lines.push(
      `  sent ${r.sent}, expected ${r.expected}, received ${r.received}, lost ${r.lost} (${r.lossPct}%), duplicates ${r.duplicates ?? 'n/a (QoS 0)'}, out of order ${r.outOfOrder}, stalls ${r.stalls}`,
    );
    if (r.drift) {
      const d = r.drift;
      lines.push(
        `  drift first -> last slice: p99 ${d.p99StartMs} -> ${d.p99EndMs} ms, delivered ${d.rateStart} -> ${d.rateEnd} msgs/s, broker RSS ${d.rssStartKiB ?? 'n/a'} -> ${d.rssEndKiB ?? 'n/a'} KiB`,
      );
    }
  }
  if (r.cpuCores) lines.push(`  cpu cores used: ${cpuText(r.cpuCores)}`);
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
  const mode = ['persistent', 'retained', 'idle'].includes(opts.kind)
    ? opts.kind
    : opts.messages > 0
      ? 'count'
      : 'duration';
  const base = {
    tool: 'tern-load',
    scenario: opts.scenario,
    label: opts.label,
    host: opts.host,
    port: opts.port,
    pubPort: opts.pubPort,
    subPort: opts.subPort,
    qos: opts.qos,
    subQos: opts.subQos,
    publishers: opts.publisherCount,
    subscribers: opts.subscriberCount,
    payload: opts.payload,
    window: opts.window,
    rate: opts.rate || undefined,
    mode,
    messages: opts.messages || undefined,
    duration: mode === 'duration' ? opts.duration : undefined,
    warmup: mode === 'duration' ? opts.warmup : undefined,
  };
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${opts.timeout} s`)), opts.timeout * 1000);
  });
  const stopProgress = startProgress(run);
  let result;
  let code = 0;
  try {
    const flows = { persistent: runPersistent, retained: runRetained, idle: runIdle };
    const flow = (flows[opts.kind] ?? runFlow)(run);
    result = { ...base, ...(await Promise.race([flow, timeout, run.failed()])) };
  } catch (err) {
    code = 1;
    result = { ...base, error: err.message, timedOut: /timed out/.test(err.message), ...accounting(run) };
    run.destroyAll();
  } finally {
    clearTimeout(timer);
    stopProgress();
  }
  if (opts.json) console.log(JSON.stringify(result));
  else console.log(describe(result));
  // Sockets are closed; exit without waiting for stray timers of a failed run.
  process.exit(code);
}

await main();
