/**
 * The load tool's counters against the toy broker, whose behaviour is known exactly: it routes
 * everything, or drops / duplicates every Nth delivery on purpose.
 */
import t from 'tap';
import { load, loadRaw, NULL_BROKER, startBroker, startToy } from './support/run.mjs';

const run = async (t, port, flags) => {
  const { code, result } = await load(['--port', String(port), ...flags]);
  t.equal(code, 0, `exit 0 (${result.error ?? 'no error'})`);
  t.equal(result.unexpectedPackets, 0, 'no unexpected packets');
  t.equal(result.foreignPublishes, 0, 'no foreign PUBLISHes');
  return result;
};

const orderedPercentiles = (t, l) => {
  t.ok(l.samples > 0, 'latency samples');
  t.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999, 'p50 <= p90 <= p99 <= p99.9');
  // p99.9 is a bucket's highest value, max the exact one: within 0.1% of each other at most.
  t.ok(l.p999 <= l.max * 1.001 + 0.001, 'p99.9 <= max');
};

t.test('a broker that loses nothing', async (t) => {
  const { port } = await startToy(t);

  await t.test('fanin QoS 0: every message counted once, in order', async (t) => {
    const r = await run(t, port, ['--scenario', 'fanin', '--messages', '1000']);
    t.match(r, { mode: 'count', sent: 1000, expected: 1000, received: 1000, lost: 0, outOfOrder: 0, gaps: 0 });
    t.equal(r.duplicates, null, 'QoS 0 duplicates are not tracked');
    orderedPercentiles(t, r.latencyMs);
    t.ok(r.latencyMs.samples <= r.received);
  });

  await t.test('fanout: expected is sent x subscribers', async (t) => {
    const r = await run(t, port, ['--scenario', 'fanout', '--messages', '200', '--subscribers', '4']);
    t.match(r, { sent: 200, expected: 800, received: 800, lost: 0, outOfOrder: 0 });
  });

  await t.test('qos1: every PUBLISH acked, every message unique', async (t) => {
    const r = await run(t, port, ['--scenario', 'qos1', '--messages', '1000']);
    t.match(r, { qos: 1, sent: 1000, acked: 1000, received: 1000, unique: 1000, lost: 0, duplicates: 0 });
  });

  await t.test('qos2: the whole flow completes (PUBCOMP counted as acked), nothing lost or doubled', async (t) => {
    const r = await run(t, port, ['--scenario', 'qos2', '--messages', '1000']);
    t.match(r, { qos: 2, subQos: 2, sent: 1000, acked: 1000, received: 1000, unique: 1000, lost: 0, duplicates: 0 });
  });

  await t.test('retained: the new subscriber gets every retained message', async (t) => {
    const r = await run(t, port, ['--scenario', 'retained', '--messages', '500']);
    t.match(r, { allArrived: true, acked: 500, expected: 500, unique: 500, lost: 0, duplicates: 0, grantedQos: 0 });
    // The tool deleted them afterwards: a second run sees exactly its own 500 again.
    const again = await run(t, port, ['--scenario', 'retained', '--messages', '300']);
    t.match(again, { allArrived: true, unique: 300, received: 300 });
  });

  await t.test('latency at a fixed rate: every message is a sample', async (t) => {
    const r = await run(t, port, ['--scenario', 'latency', '--rate', '2000', '--duration', '0.5', '--warmup', '0']);
    t.equal(r.received, r.sent);
    t.equal(r.lost, 0);
    t.ok(r.sent >= 500, `paced sends: ${r.sent}`);
    orderedPercentiles(t, r.latencyMs);
    t.ok(r.latencyMs.samples <= r.received);
  });

  await t.test('soak: slices with latency, drift from first to last', async (t) => {
    const r = await run(t, port, ['--scenario', 'soak', '--rate', '400', '--duration', '1', '--slice', '0.25']);
    t.equal(r.lost, 0);
    t.equal(r.duplicates, 0);
    t.ok(r.slices.length >= 2, `${r.slices.length} slices`);
    t.ok(r.drift !== null && 'p99StartMs' in r.drift && 'p99EndMs' in r.drift);
  });
});

t.test('a broker that drops every 10th delivery', async (t) => {
  const { port } = await startToy(t, ['--drop-every', '10']);
  const q0 = await run(t, port, ['--scenario', 'fanin', '--messages', '1000', '--window', '0']);
  t.match(q0, { sent: 1000, received: 900, lost: 100, outOfOrder: 0 });
  const q2 = await run(t, port, ['--scenario', 'qos2', '--messages', '1000']);
  t.match(q2, { sent: 1000, acked: 1000, received: 900, unique: 900, lost: 100, duplicates: 0 });
});

t.test('a broker that sends every 7th delivery twice', async (t) => {
  const { port } = await startToy(t, ['--dup-every', '7']);
  const q1 = await run(t, port, ['--scenario', 'qos1', '--messages', '1000']);
  t.match(q1, { sent: 1000, acked: 1000, received: 1142, unique: 1000, lost: 0, duplicates: 142 });
  const q0 = await run(t, port, ['--scenario', 'fanin', '--messages', '1000']);
  t.match(q0, { received: 1142, lost: 0, outOfOrder: 142 });
});

t.test('null broker: every QoS 1 PUBLISH written is acknowledged once', async (t) => {
  const { port } = await startBroker(t, [NULL_BROKER, '--port', '0'], (line) => JSON.parse(line).port);
  const r = await run(t, port, [
    '--scenario',
    'pub-only',
    '--qos',
    '1',
    '--window',
    '32',
    '--publishers',
    '2',
    '--duration',
    '0.3',
  ]);
  t.ok(r.sent > 0);
  t.equal(r.acked, r.sent);
  t.equal(r.received, 0);
});

t.test('bad options exit 2 with a message on stderr', async (t) => {
  for (const argv of [
    ['--scenario', 'nope'],
    ['--scenario', 'fanin', '--host', '10.0.0.1'],
    ['--scenario', 'qos1', '--window', '0'],
  ]) {
    const r = await loadRaw(argv);
    t.equal(r.code, 2, argv.join(' '));
    t.equal(r.stdout, '');
    t.ok(r.stderr.length > 0);
  }
});
