import {
  Broker,
  brokerStatsSource,
  CounterCarry,
  type HttpServerOptions,
  type ReadyState,
  resolveConfig,
  type StatsSnapshot,
  type Supervisor,
  snapshotStats,
  startHttpServer,
  TernMetrics,
} from '@tern/broker';
import { LogCapture, RawClient, startBroker, type TestBroker } from '@tern/testkit';
import t, { type Test } from 'tap';
import { serverClosed } from './support/flows.js';
import { connectMqttjs, Inbox } from './support/mqttjs.js';

type LogLevel = Parameters<HttpServerOptions['setLogLevel']>[0];

interface Endpoint {
  tb: TestBroker;
  base: string;
  ready: { state: ReadyState };
}

/**
 * A broker and its HTTP endpoint on free ports, stopped when `t` ends. With routing workers
 * the endpoint is wired as the node wires it: figures from every worker, the log level set
 * in this thread and in every worker.
 */
async function start(t: Test, options: Parameters<typeof startBroker>[0] = {}): Promise<Endpoint> {
  const tb = await startBroker(options);
  t.teardown(tb.stop);
  const ready: Endpoint['ready'] = { state: { ready: true } };
  const { broker, supervisor } = tb;
  const source = broker !== null ? brokerStatsSource(broker) : { snapshots: () => (supervisor as Supervisor).stats() };
  const setLogLevel = (level: LogLevel): void => {
    if (broker !== null) {
      broker.setLogLevel(level);
      return;
    }
    tb.logs.logger.level = level;
    (supervisor as Supervisor).setLogLevel(level);
  };
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new TernMetrics({ nodeName: 'test-node', source }),
    isReady: () => ready.state,
    setLogLevel,
    log: tb.logs.logger,
  });
  t.teardown(http.close);
  return { tb, base: `http://127.0.0.1:${http.port}`, ready };
}

async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/**
 * The value of one series in Prometheus text: the line of `name` whose labels include all of
 * `labels` (summed if several match, as over workers); undefined when no line matches.
 */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    const found: Record<string, string> = {};
    for (const m of line.slice(0, space).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1] as string] = m[2] as string;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum = (sum ?? 0) + Number(line.slice(space + 1));
  }
  return sum;
}

/**
 * The lowest level of the lines logged for a fresh client id while it connects (debug:
 * 'client connected'), is taken over (info: 'connection taken over ...') and breaks the
 * protocol (warn: 'closing connection: ...'): which levels the broker logs at now, in this
 * thread or in every worker. Each step waits for the one before, so every earlier line is in
 * the capture when the warn line arrives.
 */
let probes = 0;
async function lowestLevelLogged(t: Test, tb: TestBroker): Promise<number> {
  const clientId = `m-level-${++probes}`;
  const { client: first } = await RawClient.connected(tb.port, { clientId });
  t.teardown(() => first.destroy());
  const { client: second } = await RawClient.connected(tb.port, { clientId });
  t.teardown(() => second.destroy());
  // Packet type 0 is reserved.
  second.sendBytes([0x00, 0x00]);
  const warn = await tb.logs.waitFor((l) => l.clientId === clientId && l.level === 40);
  const lines = tb.logs.find('');
  const before = lines.slice(0, lines.indexOf(warn) + 1).filter((l) => l.clientId === clientId);
  t.ok(
    before.some((l) => l.level === 40 && l.msg.startsWith('closing connection')),
    'the protocol error is logged at warn',
  );
  return Math.min(...before.map((l) => l.level));
}

t.test('metrics over HTTP', async (t) => {
  await t.test('a QoS 1 publish counts as published, received and delivered', async (t) => {
    const { tb, base } = await start(t);
    const sub = await connectMqttjs(t, tb.port, 'm-sub');
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('metrics/q1', { qos: 1 });
    const pub = await connectMqttjs(t, tb.port, 'm-pub');
    // Resolves on PUBACK: the broker has routed (and sent) the message by then.
    await pub.publishAsync('metrics/q1', 'hello', { qos: 1 });
    const got = await inbox.next();
    t.equal(got.qos, 1);

    const text = await scrape(base);
    // In one thread every series is worker 0's; routing workers each have their own series.
    const one: Record<string, string> = tb.workers === 0 ? { node: 'test-node', worker: '0' } : { node: 'test-node' };
    t.equal(value(text, 'tern_messages_published_total', { ...one, qos: '1' }), 1, 'published{qos="1"}');
    t.equal(value(text, 'tern_messages_published_total', { qos: '0' }), 0, 'published{qos="0"}');
    t.equal(value(text, 'tern_packets_received_total', { type: 'publish' }), 1, 'packets received{type="publish"}');
    t.equal(value(text, 'tern_packets_received_total', { type: 'connect' }), 2, 'packets received{type="connect"}');
    t.equal(value(text, 'tern_packets_received_total', { type: 'subscribe' }), 1);
    t.equal(value(text, 'tern_messages_delivered_total', { qos: '1' }), 1, 'delivered{qos="1"}');
    t.equal(value(text, 'tern_packets_sent_total', { type: 'publish' }), 1, 'packets sent{type="publish"}');
    t.equal(value(text, 'tern_packets_sent_total', { type: 'puback' }), 1, "the publisher's PUBACK");
    t.equal(value(text, 'tern_packets_sent_total', { type: 'connack' }), 2);
    t.equal(value(text, 'tern_packets_sent_total', { type: 'suback' }), 1);
    // CONNACK is 4 bytes; the PUBLISH is 2 + (2 + 10) + 2 + 5.
    t.equal(value(text, 'tern_bytes_sent_total', { type: 'connack' }), 8);
    t.equal(value(text, 'tern_bytes_sent_total', { type: 'publish' }), 21);
    t.ok((value(text, 'tern_bytes_received_total') ?? 0) > 21, 'bytes received, all types');
    t.equal(value(text, 'tern_connections_accepted_total'), 2);
    t.equal(value(text, 'tern_connections_open'), 2);
    t.equal(value(text, 'tern_clients_connected'), 2);
    t.equal(value(text, 'tern_subscriptions'), 1);
    // A worker's route table holds the other workers' filters: every worker but the
    // subscriber's routes 'metrics/q1'. In one thread it is the subscription index's filters.
    t.equal(value(text, 'tern_route_table_filters'), tb.workers === 0 ? 1 : tb.workers - 1);
    t.equal(value(text, 'tern_packets_received_total', { type: 'connack' }), undefined, 'no series for a wrong way');
  });

  await t.test('a keepalive timeout is counted as a disconnect reason [MQTT-3.1.2-24]', async (t) => {
    const { tb, base } = await start(t);
    const { client } = await RawClient.connected(tb.port, { clientId: 'm-silent', keepalive: 1 });
    t.teardown(() => client.destroy());
    // The broker counts before it closes the socket, so the count is in once the close arrives.
    await client.waitClosed();
    const text = await scrape(base);
    t.equal(value(text, 'tern_disconnects_total', { reason: 'keepalive-timeout' }), 1);
    t.equal(value(text, 'tern_keepalive_timeouts_total'), 1);
    t.equal(value(text, 'tern_disconnects_total', { reason: 'client-disconnect' }), 0);
    t.equal(value(text, 'tern_clients_connected'), 0);
  });

  await t.test('a full queue of an offline session counts drops and one overflow episode', async (t) => {
    const { tb, base } = await start(t, { maxQueued: 2 });
    const { client: away } = await RawClient.connected(tb.port, { clientId: 'm-away', clean: false });
    away.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'metrics/queue', qos: 1 }] });
    await away.expect('suback');
    const closed = serverClosed(tb, 'm-away');
    await away.disconnect();
    await closed;

    const pub = await connectMqttjs(t, tb.port, 'm-queue-pub');
    for (let i = 0; i < 5; i++) await pub.publishAsync('metrics/queue', String(i), { qos: 1 });
    await pub.publishAsync('metrics/queue', 'qos0', { qos: 0 });
    // QoS 0 has no acknowledgement, and with routing workers the offline session may be on
    // another worker than the publisher: the PUBACK of a later retained QoS 1 publish on the
    // same connection (to a topic nobody wants; empty, so nothing is stored) comes once every
    // worker has handled what came before it.
    await pub.publishAsync('metrics/nobody', '', { qos: 1, retain: true });
    const text = await scrape(base);
    t.equal(value(text, 'tern_messages_published_total', { qos: '0' }), 1);
    t.equal(value(text, 'tern_messages_published_total', { qos: '1' }), 6);
    t.equal(value(text, 'tern_messages_dropped_total', { reason: 'queue-full' }), 3, 'five into a queue of two');
    t.equal(value(text, 'tern_messages_dropped_total', { reason: 'offline-qos0' }), 1);
    t.equal(value(text, 'tern_messages_dropped_total', { reason: 'slow-subscriber' }), 0);
    t.equal(value(text, 'tern_queue_overflows_total'), 1, 'one episode');
    t.equal(value(text, 'tern_queued_messages'), 2);
    t.equal(value(text, 'tern_inflight_messages'), 0);
    t.equal(value(text, 'tern_persistent_sessions', { state: 'offline' }), 1);
    t.equal(value(text, 'tern_persistent_sessions', { state: 'online' }), 0);
    t.equal(value(text, 'tern_disconnects_total', { reason: 'client-disconnect' }), 1);
  });

  await t.test('a connection over maxConnections is counted as rejected', async (t) => {
    const { tb, base } = await start(t, { maxConnections: 1 });
    const { client: first } = await RawClient.connected(tb.port, { clientId: 'm-first' });
    t.teardown(() => first.destroy());
    const second = await RawClient.open(tb.port);
    await second.waitClosed();
    const text = await scrape(base);
    t.equal(value(text, 'tern_connections_rejected_total', { reason: 'max-connections' }), 1);
    t.equal(value(text, 'tern_connections_accepted_total'), 1);
  });

  await t.test('/metrics: content type, node and worker labels, process and event-loop metrics', async (t) => {
    const { base } = await start(t);
    const res = await fetch(`${base}/metrics`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    t.match(text, /^# TYPE tern_messages_published_total counter$/m);
    t.match(text, /^tern_connections_open\{worker="0",node="test-node"\} 0$/m);
    t.ok(value(text, 'process_cpu_user_seconds_total', { node: 'test-node' }) !== undefined, 'process CPU');
    t.ok(value(text, 'process_resident_memory_bytes') !== undefined, 'process memory');
    t.ok(value(text, 'nodejs_eventloop_lag_p99_seconds') !== undefined, "the main thread's event-loop lag");
    t.ok(value(text, 'tern_eventloop_lag_seconds', { worker: '0' }) !== undefined, "the worker's event-loop lag");
    t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  });

  await t.test('/health, /ready and 404', async (t) => {
    const { base, ready } = await start(t);
    let res = await fetch(`${base}/health`);
    t.equal(res.status, 200);
    t.equal(await res.text(), 'ok\n');

    res = await fetch(`${base}/ready`);
    t.equal(res.status, 200);
    ready.state = { ready: false, reason: 'shutting down' };
    res = await fetch(`${base}/ready`);
    t.equal(res.status, 503);
    t.equal(await res.text(), 'not ready: shutting down\n');

    res = await fetch(`${base}/nothing-here`);
    t.equal(res.status, 404);
    await res.text();
  });

  await t.test('/log-level validates the level, applies it and logs the change', async (t) => {
    const { tb, base } = await start(t);
    /** The level the broker logs at: its logger in one thread; what it logs, in any mode. */
    const expectLevel = async (level: LogLevel, lowest: number, what: string) => {
      if (tb.broker !== null) t.equal(tb.broker.log.level, level, what);
      t.equal(await lowestLevelLogged(t, tb), lowest, `${what}: logs from ${level} up`);
    };
    await expectLevel('debug', 20, 'the capture starts at debug');

    let res = await fetch(`${base}/log-level?level=loud`, { method: 'PUT' });
    t.equal(res.status, 400);
    t.match(await res.text(), /fatal\|error\|warn\|info\|debug\|trace\|silent/);
    res = await fetch(`${base}/log-level`, { method: 'POST' });
    t.equal(res.status, 400, 'no level at all');
    await res.text();
    await expectLevel('debug', 20, 'unchanged after bad requests');

    res = await fetch(`${base}/log-level`, { method: 'PUT', body: 'level=warn' });
    t.equal(res.status, 200);
    await res.text();
    await expectLevel('warn', 40, 'form body');
    const line = await tb.logs.waitFor('log level change requested over HTTP');
    t.equal(line.to, 'warn');
    t.equal(line.from, 'debug');

    res = await fetch(`${base}/log-level`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ level: 'info' }),
    });
    t.equal(res.status, 200);
    await res.text();
    await expectLevel('info', 30, 'JSON body');

    res = await fetch(`${base}/log-level?level=trace`, { method: 'POST' });
    t.equal(res.status, 200);
    await res.text();
    // Nothing logs below debug: at trace, debug lines show.
    await expectLevel('trace', 20, 'query');

    res = await fetch(`${base}/log-level?level=info`);
    t.equal(res.status, 405, 'GET does not change anything');
    await res.text();
  });
});

t.test('counters stay monotonic when a worker restarts', async (t) => {
  await t.test('CounterCarry: 100 before a restart and 5 after export 105', async (t) => {
    const carry = new CounterCarry();
    carry.record('w1', 'first', 'published', '1', 100);
    t.equal(carry.total('w1', 'published', '1'), 100);
    carry.record('w1', 'second', 'published', '1', 5);
    t.equal(carry.total('w1', 'published', '1'), 105, 'the new incarnation adds to the old total');
    carry.record('w1', 'second', 'published', '1', 9);
    t.equal(carry.total('w1', 'published', '1'), 109);
    carry.record('w1', 'second', 'published', '1', 2);
    t.equal(carry.total('w1', 'published', '1'), 111, 'a fall within an incarnation is a restart too');
  });

  await t.test('exported: per worker, summed over workers, kept when a worker stops reporting', async (t) => {
    const logs = new LogCapture();
    const snapshotOf = (worker: string, published: number): StatsSnapshot => {
      const s = snapshotStats(new Broker(resolveConfig({ port: 0 }), logs.logger), worker);
      s.counters.messagesPublished[1] = published;
      return s;
    };
    let snapshots: StatsSnapshot[] = [];
    const metrics = new TernMetrics({ nodeName: 'n', source: { snapshots: () => snapshots }, defaultMetrics: false });
    const published = async (worker?: string) =>
      value(await metrics.scrape(), 'tern_messages_published_total', {
        qos: '1',
        ...(worker === undefined ? {} : { worker }),
      });

    const a = snapshotOf('1', 100);
    const b = snapshotOf('2', 10);
    snapshots = [a, b];
    t.equal(await published('1'), 100);
    t.equal(await published(), 110, 'summed over workers');

    // Worker 1 restarts: a new broker, counting from zero.
    snapshots = [snapshotOf('1', 5), b];
    t.equal(await published('1'), 105, 'A=100, restart, B=5: 105');
    t.equal(await published(), 115);

    // Worker 2 stops answering: its count stays, its gauges go.
    snapshots = [snapshotOf('1', 5)];
    const text = await metrics.scrape();
    t.equal(value(text, 'tern_messages_published_total', { worker: '2', qos: '1' }), 10);
    t.equal(value(text, 'tern_connections_open', { worker: '2' }), undefined);
    t.equal(value(text, 'tern_connections_open', { worker: '1' }), 0);
  });
});
