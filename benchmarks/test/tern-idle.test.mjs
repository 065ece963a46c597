/**
 * The idle and persistent scenarios against a real Tern (built: packages/broker/dist), started on
 * port 0 with the port read from its 'listening for MQTT' log line.
 */
import t from 'tap';
import { load, startBroker, TERN_CLI } from './support/run.mjs';

function startTern(t) {
  return startBroker(
    t,
    [TERN_CLI, '--port', '0', '--host', '127.0.0.1', '--no-metrics', '--workers', '1', '--log-level', 'info'],
    (line) => {
      try {
        const rec = JSON.parse(line);
        return rec.msg === 'listening for MQTT' ? rec.port : undefined;
      } catch {
        return undefined;
      }
    },
  );
}

t.test('idle: 200 connections against Tern, RSS read from /proc', async (t) => {
  const { child, port } = await startTern(t);
  const { code, result: r } = await load([
    '--port',
    String(port),
    '--scenario',
    'idle',
    '--connections',
    '200',
    '--broker-pid',
    String(child.pid),
    '--settle-timeout',
    '3',
  ]);
  t.equal(code, 0, r.error ?? 'no error');
  t.match(r, { connections: 200, connected: 200, failed: 0, droppedWhileIdle: 0, closedInTime: true, sourceIps: 1 });
  t.equal(r.connackLatencyMs.samples, 200, 'one CONNACK latency per connection');
  t.ok(r.connectRate > 0);
  t.ok(r.brokerRssBeforeKiB > 0 && r.brokerRssAfterKiB > 0, 'VmRSS read before and after');
  t.equal(typeof r.kibPerConnection, 'number');
  t.equal(typeof r.rssSettled.before, 'boolean');
  t.ok(r.fdLimit > 200);
});

t.test('idle: more connections than the tool may open fails with the reason', async (t) => {
  const { code, result: r } = await load(['--port', '1', '--scenario', 'idle', '--connections', '5000000']);
  t.equal(code, 1);
  t.match(r.error, /file descriptors/);
});

t.test('persistent: 500 queued QoS 1 messages redelivered to Tern, none lost or doubled', async (t) => {
  const { child, port } = await startTern(t);
  const { code, result: r } = await load([
    '--port',
    String(port),
    '--scenario',
    'persistent',
    '--messages',
    '500',
    '--broker-pid',
    String(child.pid),
  ]);
  t.equal(code, 0, r.error ?? 'no error');
  t.match(r, { allArrived: true, sessionPresent: true, sent: 500, acked: 500, unique: 500, lost: 0, duplicates: 0 });
});
