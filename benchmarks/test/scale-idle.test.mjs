/**
 * The scale run of idle connections (macro/scale-idle.mjs) at a small size: a real Redis, real
 * Tern nodes joined through it, one holder process per node; every connection is held at once
 * and counted per node. Needs redis-server and a build, as .ci/run provides.
 */
import path from 'node:path';
import t from 'tap';
import { ROOT, runScript } from './support/run.mjs';

const SCALE = path.join(ROOT, 'benchmarks', 'macro', 'scale-idle.mjs');

const scale = (args) => runScript(SCALE, args);

t.test('300 connections over 3 nodes of 100, all held at once', async (t) => {
  const args = ['--connections', '300', '--per-node', '100', '--warmup-connections', '20', '--settle-timeout', '3'];
  const { code, stdout, stderr } = await scale([...args, '--json']);
  t.equal(code, 0, stderr);
  const r = JSON.parse(stdout);
  t.match(r, { connections: 300, held: 300, failed: 0, nodes: 3, workersPerNode: 1 });
  t.same(
    r.perNode.map((n) => n.connections),
    [100, 100, 100],
    'each node holds its share',
  );
  for (const n of r.perNode) t.ok(n.rssAfterMiB > 0 && n.rssBeforeMiB > 0, `${n.node}: RSS read before and after`);
  t.ok(r.connectionsPerSecond > 0);
});

t.test('a share larger than the open-file limit allows is refused before anything starts', async (t) => {
  const { code, stderr } = await scale(['--connections', '10', '--per-node', '100000000']);
  t.equal(code, 2);
  t.match(stderr, /^scale-idle: --per-node 100000000 needs about \d+ open files per process; ulimit -n is \d+\n$/);
});
