/**
 * Clustered brokers side by side (`npm run bench:cluster`): two nodes of Tern and two nodes of
 * Aedes, each pair sharing its own fresh redis-server, on this machine (loopback only), running
 * the cross-node scenarios of load.mjs. Writes a markdown table of medians with Tern's advantage
 * and the targets, the raw JSON and an SVG chart per scenario.
 *
 *   node benchmarks/macro/compare-cluster.mjs [--quick] [--rounds 3] [--duration 5] [--warmup 1]
 *        [--messages 10000] [--scenarios fanin-cross,persistent-cross]
 *        [--brokers tern-cluster,aedes-cluster] [--tern-workers 1] [--warmup-runs 1]
 *        [--out-dir benchmarks/results/cluster-<stamp>] [--keep-latest] [--no-files] [--out file.json]
 *
 * Clusters (node A takes the publishers, node B the subscriber: --pub-port and --sub-port):
 *   tern-cluster   packages/broker/dist/cli.js --redis redis://127.0.0.1:<redis> --workers N, twice
 *   aedes-cluster  aedes-server.mjs --redis redis://127.0.0.1:<redis>, twice: mqemitter-redis
 *                  between the nodes, aedes-persistence-redis for sessions and retained messages
 *
 * Every run starts a new redis-server (appendonly yes, as in docker-compose.yml) and both nodes,
 * waits until all three accept TCP connections (polled, no fixed sleep), runs one scenario of
 * load.mjs in its own process and stops everything. Runs are interleaved (each round, each
 * scenario, the clusters in an order rotated every round). The CPU seconds of both nodes and
 * Redis over the run are read from /proc. Results go to --out-dir (default
 * benchmarks/results/cluster-<UTC date-time>), copied to benchmarks/results/latest-cluster/
 * unless --keep-latest.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { barChart } from './charts.mjs';
import {
  fmtInt,
  fmtNum,
  freePort,
  HOST,
  mdTable,
  median,
  ROOT,
  range,
  runLoad,
  stamp,
  startServer,
  stopServer,
} from './harness.mjs';
import { procCpuSeconds, round3 } from './proc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.resolve(HERE, '..', 'results');
const CLUSTERS = ['tern-cluster', 'aedes-cluster'];
const SCENARIOS = ['fanin-cross', 'persistent-cross'];
/** The targets: Tern's advantage over Aedes's cluster. */
const TARGETS = { 'fanin-cross': 3, 'persistent-cross': 10 };
const COLOURS = { 'tern-cluster': '#2f9e5a', 'aedes-cluster': '#d9822b' };

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    messages: { type: 'string', default: '10000' },
    payload: { type: 'string', default: '64' },
    brokers: { type: 'string', default: CLUSTERS.join(',') },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    'tern-workers': { type: 'string', default: '1' },
    'warmup-runs': { type: 'string', default: '1' },
    'out-dir': { type: 'string' },
    'keep-latest': { type: 'boolean', default: false },
    'no-files': { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const cfg = {
  rounds: Number(args.rounds ?? (args.quick ? 1 : 3)),
  duration: Number(args.duration ?? (args.quick ? 1.5 : 5)),
  warmup: Number(args.warmup ?? (args.quick ? 0.5 : 1)),
  messages: Number(args.messages),
  payload: Number(args.payload),
  brokers: args.brokers.split(',').filter(Boolean),
  scenarios: args.scenarios.split(',').filter(Boolean),
  ternWorkers: Number(args['tern-workers']),
  warmupRuns: Number(args['warmup-runs']),
};
for (const b of cfg.brokers) if (!CLUSTERS.includes(b)) fatal(`unknown cluster ${b} (${CLUSTERS.join(', ')})`);
for (const s of cfg.scenarios) if (!SCENARIOS.includes(s)) fatal(`unknown scenario ${s} (${SCENARIOS.join(', ')})`);
const numbersOk = cfg.rounds >= 1 && cfg.duration > 0 && cfg.warmup >= 0 && cfg.messages >= 1 && cfg.payload >= 14;
if (!numbersOk || !(cfg.ternWorkers >= 1 && cfg.warmupRuns >= 0)) fatal('bad numeric flag');

function fatal(msg) {
  console.error(`compare-cluster: ${msg}`);
  process.exit(2);
}

const logDir = mkdtempSync(path.join(os.tmpdir(), 'tern-bench-cluster-'));
let keepLogs = false;
const live = new Set();

// ---------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------

/** [command, argv] of node `name` (A or B) of `cluster` on `port`, with Redis at `redisUrl`. */
function nodeCommand(cluster, name, port, redisUrl) {
  if (cluster === 'aedes-cluster') {
    return [
      process.execPath,
      [path.join(HERE, 'aedes-server.mjs'), '--port', String(port), '--redis', redisUrl, '--id', name],
    ];
  }
  return [process.execPath, ['packages/broker/dist/cli.js', ...ternFlags(port, redisUrl, name)]];
}

/** Tern's settings match the single-node comparison's (compare.mjs), plus the cluster's Redis. */
function ternFlags(port, redisUrl, name) {
  return [
    ...['--port', String(port), '--host', HOST, '--max-queued', '100000', '--no-metrics', '--log-level', 'warn'],
    ...['--workers', String(cfg.ternWorkers), '--redis', redisUrl, '--redis-prefix', 'bench', '--node-name', name],
  ];
}

function commandText(cluster) {
  const [, argv] = nodeCommand(cluster, '<A|B>', '{port}', 'redis://127.0.0.1:{redis}');
  return `node ${argv.map((a) => (path.isAbsolute(a) ? path.relative(ROOT, a) : a)).join(' ')}`;
}

/**
 * persistent-cross is timed once per cluster, where a fresh process's first run mostly
 * measures its JIT: --warmup-runs unmeasured runs go first on the same cluster (both clusters
 * alike), as the fan-in runs measure after --warmup seconds.
 */
async function warmUp(scenario, cluster, label) {
  if (scenario !== 'persistent-cross') return;
  for (let i = 0; i < cfg.warmupRuns; i++) {
    const r = await runLoad({
      flags: scenarioFlags(scenario, cluster),
      port: cluster.a.port,
      label: `${label} (warm-up)`,
      timeoutS: scenarioTimeout(scenario),
      live,
    });
    if (r.error) throw new Error(`warm-up run: ${r.error}`);
  }
}

/** A fresh redis-server and nodes A and B; resolves once all three accept connections. */
async function startCluster(cluster) {
  const started = [];
  try {
    const redisPort = await freePort();
    const dir = mkdtempSync(path.join(logDir, `redis-${redisPort}-`));
    started.push(
      await startServer({
        cmd: 'redis-server',
        argv: ['--port', String(redisPort), '--bind', HOST, '--dir', dir, '--appendonly', 'yes', '--save', ''],
        port: redisPort,
        log: path.join(logDir, `${cluster}-redis-${redisPort}.log`),
        live,
      }),
    );
    const redisUrl = `redis://${HOST}:${redisPort}`;
    for (const name of ['A', 'B']) {
      const port = await freePort();
      const [cmd, argv] = nodeCommand(cluster, name, port, redisUrl);
      const log = path.join(logDir, `${cluster}-${name}-${port}.log`);
      started.push(await startServer({ cmd, argv, port, log, live }));
    }
    const [redis, a, b] = started;
    return { redis, a, b, all: started };
  } catch (err) {
    await stopCluster({ all: started });
    throw err;
  }
}

/** Nodes first (a Tern node leaves the cluster cleanly through Redis), then Redis. */
async function stopCluster({ all }) {
  const [redis, ...nodes] = all;
  await Promise.all(nodes.map((n) => stopServer(n)));
  if (redis !== undefined) await stopServer(redis);
}

function cpuSecondsOf(cluster) {
  let total = 0;
  for (const p of cluster.all) total += procCpuSeconds(p.child.pid) ?? 0;
  return total;
}

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------

function scenarioFlags(scenario, cluster) {
  const flags = ['--scenario', scenario, '--payload', String(cfg.payload)];
  flags.push('--pub-port', String(cluster.a.port), '--sub-port', String(cluster.b.port));
  if (scenario === 'fanin-cross') flags.push('--duration', String(cfg.duration), '--warmup', String(cfg.warmup));
  else flags.push('--messages', String(cfg.messages));
  return flags;
}

function scenarioTimeout(scenario) {
  return scenario === 'fanin-cross' ? Math.ceil(cfg.warmup + cfg.duration + 30) : 60 + Math.ceil(cfg.messages / 500);
}

function figureOf(s, r) {
  if (r.error) return r.error;
  if (s === 'persistent-cross') {
    return `drained ${r.unique}/${r.sent} in ${r.drainSeconds} s (session present: ${r.sessionPresent})`;
  }
  return `${fmtInt(r.deliveredRate)} msgs/s, lost ${r.lost}, p99 ${r.latencyMs?.p99} ms`;
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

/** Rows: [label, pick(result) -> number, format, lower is better]. */
const METRICS = {
  'fanin-cross': [
    ['delivered msgs/s', (r) => r.deliveredRate, fmtInt, false],
    ['latency p99 ms', (r) => r.latencyMs?.p99, fmtNum, true],
  ],
  'persistent-cross': [
    ['drain s (all arrived)', (r) => (r.allArrived ? r.drainSeconds : null), fmtNum, true],
    ['drain msgs/s', (r) => (r.allArrived ? r.drainRate : null), fmtInt, false],
  ],
};

function packageVersion(name) {
  try {
    const req = createRequire(path.join(HERE, 'package.json'));
    let dir = path.dirname(req.resolve(name));
    while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
    return `${name} ${JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version}`;
  } catch {
    return `${name} not installed`;
  }
}

function versions() {
  const ternPkg = path.join(ROOT, 'packages', 'broker', 'package.json');
  const tern = existsSync(ternPkg) ? `tern ${JSON.parse(readFileSync(ternPkg, 'utf8')).version}` : 'not built';
  const git = (argv) => spawnSync('git', ['-C', ROOT, ...argv], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git(['status', '--porcelain', '--', 'packages']) !== '';
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    tern: `${tern} (${git(['rev-parse', '--short', 'HEAD']) || 'no git'}${dirty ? ', with uncommitted changes in packages/' : ''})`,
    aedes: [packageVersion('aedes'), packageVersion('mqemitter-redis'), packageVersion('aedes-persistence-redis')].join(
      ', ',
    ),
    redis: (/v=(\S+)/.exec(redis)?.[1] ?? 'not installed').replace(/^/, 'redis-server '),
    node: `node ${process.version}`,
  };
}

/** Tern's advantage: how many times more (higher is better) or less (lower is better). */
function advantage(tern, aedes, lowerBetter) {
  if (!(tern > 0 && aedes > 0)) return null;
  return lowerBetter ? aedes / tern : tern / aedes;
}

function report(results, env) {
  const cols = CLUSTERS.filter((b) => cfg.brokers.includes(b));
  const both = cols.length === 2;
  const out = [
    `### Clusters side by side (${env.date}, ${env.machine})`,
    '',
    `${env.versions.tern}; ${env.versions.aedes}; ${env.versions.redis}; ${env.versions.node}. Load average before the run: ${env.loadavg}, after: ${env.loadavgAfter}.`,
    `${cfg.rounds} round(s); fanin-cross ${cfg.duration} s measured after ${cfg.warmup} s warmup; persistent-cross ${fmtInt(cfg.messages)} QoS 1 messages after ${cfg.warmupRuns} unmeasured warm-up run(s) on the same cluster; payload ${cfg.payload} B; medians over rounds. Two nodes per cluster and one redis-server (appendonly yes), all on this machine.`,
    '',
    'Clusters (each node started twice, A for the publishers, B for the subscriber):',
    '',
    ...cols.map((b) => `- ${b}: \`${commandText(b)}\``),
    '',
  ];
  const header = ['scenario', 'metric', ...cols];
  if (both) header.push('Tern advantage', 'target');
  const rows = [];
  for (const s of cfg.scenarios) {
    METRICS[s].forEach(([label, pick, fmt, lowerBetter], i) => {
      const med = Object.fromEntries(cols.map((b) => [b, median((results[s]?.[b] ?? []).map(pick))]));
      const row = [s, label, ...cols.map((b) => fmt(med[b]))];
      if (both) {
        const x = advantage(med['tern-cluster'], med['aedes-cluster'], lowerBetter);
        const target = i === 0 ? TARGETS[s] : null;
        row.push(
          x === null ? '–' : `${x.toFixed(2)}x`,
          target === null ? '' : `≥ ${target}x: ${x !== null && x >= target ? 'met' : 'not met'}`,
        );
      }
      rows.push(row);
    });
  }
  out.push(...mdTable(header, rows, 2), '');
  out.push(
    'Correctness per scenario (all rounds); CPU: seconds used by both nodes and Redis during the run (median).',
    '',
  );
  const detail = [];
  for (const s of cfg.scenarios) {
    for (const b of cols) {
      const rs = results[s]?.[b] ?? [];
      const ok = rs.filter((r) => !r.error && (r.allArrived === undefined || r.allArrived));
      const sum = (f) => rs.reduce((n, r) => n + (typeof f(r) === 'number' ? f(r) : 0), 0);
      const p50 = median(rs.map((r) => r.latencyMs?.p50));
      const p99 = median(rs.map((r) => r.latencyMs?.p99));
      detail.push([
        s,
        b,
        `${ok.length}/${rs.length}`,
        fmtInt(sum((r) => r.lost)),
        rs.some((r) => typeof r.duplicates === 'number') ? fmtInt(sum((r) => r.duplicates)) : '–',
        s === 'persistent-cross' ? `${rs.filter((r) => r.sessionPresent).length}/${rs.length}` : '–',
        p50 === null ? '–' : `${fmtNum(p50, 2)} / ${fmtNum(p99, 2)}`,
        fmtNum(median(rs.map((r) => r.clusterCpuSeconds)), 2),
      ]);
    }
  }
  const h2 = ['scenario', 'cluster', 'runs ok', 'lost', 'duplicates', 'session present', 'p50 / p99 ms', 'CPU s'];
  out.push(...mdTable(h2, detail, 99));
  const errors = [];
  for (const s of cfg.scenarios)
    for (const b of cols) for (const r of results[s]?.[b] ?? []) if (r.error) errors.push(`- ${s} on ${b}: ${r.error}`);
  if (errors.length > 0) out.push('', 'Failed runs:', ...errors);
  return out.join('\n');
}

function charts(results, env) {
  const cols = CLUSTERS.filter((b) => cfg.brokers.includes(b));
  const out = {};
  for (const s of cfg.scenarios) {
    const panels = METRICS[s].map(([label, pick, fmt, lowerBetter]) => ({
      label,
      lowerBetter,
      format: fmt,
      bars: cols.map((b) => {
        const vs = (results[s]?.[b] ?? []).map(pick);
        const note = s === 'persistent-cross' && median(vs) === null ? 'did not drain on the other node' : undefined;
        return { broker: b, median: median(vs), ...range(vs), note };
      }),
    }));
    const rounds = Math.max(0, ...cols.map((b) => (results[s]?.[b] ?? []).length));
    const versionsText = `${env.versions.tern.split(' (')[0]}, ${env.versions.aedes.split(',')[0]}`;
    out[s] = barChart(
      `${s}: ${cols.join(', ')}`,
      panels,
      COLOURS,
      `${env.date}, ${env.machine}; ${rounds} round(s); ${versionsText}`,
    );
  }
  return out;
}

function writeOutputs(dir, markdown, data, svgs) {
  mkdirSync(path.join(dir, 'charts'), { recursive: true });
  const links = Object.keys(svgs).map((s) => `![${s}](charts/${s}.svg)`);
  writeFileSync(path.join(dir, 'results.md'), `${markdown}\n\nCharts:\n\n${links.join('\n\n')}\n`);
  writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(data, null, 2)}\n`);
  for (const [s, svg] of Object.entries(svgs)) writeFileSync(path.join(dir, 'charts', `${s}.svg`), svg);
  console.error(`compare-cluster: wrote ${path.relative(ROOT, dir)}/ (results.md, results.json, charts/)`);
  const latest = path.join(RESULTS, 'latest-cluster');
  if (!args['keep-latest'] && path.resolve(dir) !== latest) {
    rmSync(latest, { recursive: true, force: true });
    cpSync(dir, latest, { recursive: true });
    console.error(`compare-cluster: copied to ${path.relative(ROOT, latest)}/`);
  }
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

function loadavg() {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

async function main() {
  const started = Date.now();
  const cpus = os.cpus();
  const env = {
    date: new Date().toISOString().slice(0, 10),
    startedAt: new Date().toISOString(),
    machine: `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`,
    loadavg: loadavg(),
    versions: versions(),
    commands: Object.fromEntries(cfg.brokers.map((b) => [b, commandText(b)])),
    argv: process.argv.slice(2),
  };
  console.error(`compare-cluster: ${env.machine}; load average ${env.loadavg}; logs in ${logDir}`);
  const results = {};
  for (let round = 0; round < cfg.rounds; round++) {
    for (const s of cfg.scenarios) {
      const order = cfg.brokers.map((_, i) => cfg.brokers[(i + round) % cfg.brokers.length]);
      for (const b of order) {
        let r;
        const loadBefore = os.loadavg()[0];
        try {
          const cluster = await startCluster(b);
          await warmUp(s, cluster, b);
          const cpuBefore = cpuSecondsOf(cluster);
          r = await runLoad({
            flags: scenarioFlags(s, cluster),
            port: cluster.a.port,
            label: b,
            timeoutS: scenarioTimeout(s),
            live,
          });
          r.clusterCpuSeconds = round3(cpuSecondsOf(cluster) - cpuBefore);
          const died = cluster.all.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
          if (died !== undefined) r.error ??= `a cluster process exited during the run (see ${died.log})`;
          await stopCluster(cluster);
        } catch (err) {
          r = { error: err.message };
        }
        r.loadavgBefore = loadBefore;
        if (r.error) keepLogs = true;
        ((results[s] ??= {})[b] ??= []).push(r);
        console.error(`  [round ${round + 1}] ${s} on ${b}: ${figureOf(s, r)}`);
      }
    }
  }
  env.finishedAt = new Date().toISOString();
  env.loadavgAfter = loadavg();
  const table = report(results, env);
  console.log(table);
  console.error(`compare-cluster: done in ${Math.round((Date.now() - started) / 1000)} s`);
  const data = { env, cfg, results };
  if (args.out) writeFileSync(args.out, `${JSON.stringify(data, null, 2)}\n`);
  if (!args['no-files']) {
    const dir = path.resolve(args['out-dir'] ?? path.join(RESULTS, `cluster-${stamp()}`));
    writeOutputs(dir, table, data, charts(results, env));
  }
}

async function cleanup() {
  for (const child of live) child.kill('SIGKILL');
  if (keepLogs) console.error(`compare-cluster: logs kept in ${logDir}`);
  else rmSync(logDir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}

try {
  await main();
} finally {
  await cleanup();
}
