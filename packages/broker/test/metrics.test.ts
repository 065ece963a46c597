import {
  Broker,
  brokerStatsSource,
  CounterCarry,
  type ReadyState,
  resolveConfig,
  type StatsSnapshot,
  snapshotStats,
  startHttpServer,
  TernMetrics,
} from '@tern/broker';
import { LogCapture, RawClient, startBroker, type TestBroker } from '@tern/testkit';
import t, { type Test } from 'tap';
import { serverClosed } from './support/flows.js';
import { connectMqttjs, Inbox } from './support/mqttjs.js';

interface Endpoint {
  tb: TestBroker;
  base: string;
  ready: { state: ReadyState };
}

/** A broker and its HTTP endpoint on free ports, stopped when `t` ends. */
async function start(t: Test, options: Parameters<typeof startBroker>[0] = {}): Promise<Endpoint> {
  const tb = await startBroker(options);
  t.teardown(tb.stop);
  const ready: Endpoint['ready'] = { state: { ready: true } };
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new TernMetrics({ nodeName: 'test-node', source: brokerStatsSource(tb.broker) }),
    isReady: () => ready.state,
    setLogLevel: (level) => tb.broker.setLogLevel(level),
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
    const one = { node: 'test-node', worker: '0' };
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
    t.equal(value(text, 'tern_route_table_filters'), 1);
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
    const closed = serverClosed(tb.broker, 'm-away');
    await away.disconnect();
    await closed;

    const pub = await connectMqttjs(t, tb.port, 'm-queue-pub');
    for (let i = 0; i < 5; i++) await pub.publishAsync('metrics/queue', String(i), { qos: 1 });
    await pub.publishAsync('metrics/queue', 'qos0', { qos: 0 });
    // QoS 0 has no acknowledgement: the PUBACK of a later QoS 1 publish on the same
    // connection (to a topic nobody wants) says the broker has handled it.
    await pub.publishAsync('metrics/nobody', 'marker', { qos: 1 });
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
    t.equal(tb.broker.log.level, 'debug', 'the capture starts at debug');

    let res = await fetch(`${base}/log-level?level=loud`, { method: 'PUT' });
    t.equal(res.status, 400);
    t.match(await res.text(), /fatal\|error\|warn\|info\|debug\|trace\|silent/);
    res = await fetch(`${base}/log-level`, { method: 'POST' });
    t.equal(res.status, 400, 'no level at all');
    await res.text();
    t.equal(tb.broker.log.level, 'debug', 'unchanged after bad requests');

    res = await fetch(`${base}/log-level`, { method: 'PUT', body: 'level=warn' });
    t.equal(res.status, 200);
    await res.text();
    t.equal(tb.broker.log.level, 'warn', 'form body');
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
    t.equal(tb.broker.log.level, 'info', 'JSON body');

    res = await fetch(`${base}/log-level?level=trace`, { method: 'POST' });
    t.equal(res.status, 200);
    await res.text();
    t.equal(tb.broker.log.level, 'trace', 'query');

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
