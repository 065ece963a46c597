/**
 * Runs Mosquitto, Aedes and Tern (one or more variants) side by side on this machine (loopback
 * only) and writes a markdown table of medians with ratios, the raw JSON and an SVG chart per
 * scenario.
 *
 *   node benchmarks/macro/compare.mjs [--quick] [--rounds 3] [--duration 5] [--warmup 1]
 *        [--brokers mosquitto,aedes,tern-1w,tern-2w] [--scenarios fanin,fanout,qos1,persistent,idle]
 *        [--tern-cmd "node packages/broker/dist/cli.js --port {port} ..."] [--nodelay]
 *        [--out-dir benchmarks/results/<stamp>] [--keep-latest] [--out file.json]
 *
 * Brokers: mosquitto (Debian package), aedes (aedes-server.mjs, in memory), tern-<N>w (Tern with
 * --workers N: tern-1w, tern-2w, tern-4w, ...; tern-<N>w-i<M> adds --max-inflight M; base command
 * --tern-base) and tern (the command
 * given by --tern-cmd or $TERN_CMD). Each Tern variant gets its own columns and its own ratios
 * to Mosquitto and Aedes.
 *
 * Each run starts a fresh broker on a free port, waits until it accepts TCP connections (polled,
 * no fixed sleep), runs one scenario of load.mjs in its own process and stops the broker.
 * Runs are interleaved: for each round, for each scenario, for each broker in an order rotated
 * every round, so drift of the machine spreads over all brokers. A broker whose start command
 * fails (not installed, not built) is skipped with the reason. Before the brokers, the load
 * tool is measured against null-broker.mjs, to show it can offer more than the brokers take.
 *
 * Output: the markdown on stdout; results.md, results.json and charts/<scenario>.svg in
 * --out-dir (default benchmarks/results/<UTC date and time>), copied to benchmarks/results/latest/
 * unless --keep-latest. Tern commands: `{port}` is replaced by the port, a leading `node` by
 * this Node binary; brokers run from the repository root with stdout/stderr to a log file.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { barChart, colours } from './charts.mjs';
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

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.resolve(HERE, '..', 'results');
/**
 * Tern's settings match the others': loopback only, room for the persistent scenario's 10,000
 * queued messages (its default is 1000; mosquitto runs with no limit), no per-connection logs,
 * no metrics endpoint (its fixed port would clash between runs; the others have none).
 */
const DEFAULT_TERN_CMD =
  'node packages/broker/dist/cli.js --port {port} --host 127.0.0.1 --max-queued 100000 --no-metrics --log-level warn';
const DEFAULT_BROKERS = ['mosquitto', 'aedes', 'tern-1w', 'tern-2w'];
/**
 * tern-<N>w: Tern with --workers N; tern-<N>w-i<M>: the same with an outbound QoS 1/2 window of
 * M (--max-inflight M) instead of the default 32, for a comparison at the window a broker
 * really keeps (mosquitto 2.0.11 does not hold its max_inflight_messages on a resumed session:
 * each PUBACK releases 20 more, see benchmarks/RESULTS.md).
 */
const TERN_VARIANT = /^tern-(\d+)w(?:-i(\d+))?$/;
const ALL_SCENARIOS = ['fanin', 'fanout', 'qos1', 'qos2', 'latency', 'persistent', 'retained', 'idle', 'soak'];
const DEFAULT_SCENARIOS = ['fanin', 'fanout', 'qos1', 'persistent', 'idle'];
/** Longest wait for a started broker to accept a TCP connection. */
const START_TIMEOUT_MS = 15000;
/** Other processes using more than this many cores make a run unreliable. */
const BUSY_CORES = 0.25;
/** The load tool is one thread: above this it may be what limits a run. */
const TOOL_BOUND_CORES = 0.9;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    payload: { type: 'string', default: '64' },
    brokers: { type: 'string', default: DEFAULT_BROKERS.join(',') },
    scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
    'tern-cmd': { type: 'string', default: process.env.TERN_CMD || DEFAULT_TERN_CMD },
    'tern-base': { type: 'string', default: DEFAULT_TERN_CMD },
    'idle-connections': { type: 'string', default: '10000' },
    'latency-rate': { type: 'string', default: '1000' },
    'latency-duration': { type: 'string' },
    'soak-duration': { type: 'string' },
    nodelay: { type: 'boolean', default: false },
    'skip-selftest': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string' },
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
  console.log(` * Options: --idle-connections N (10000), --latency-rate R (1000), --latency-duration S (10),
 * --soak-duration S (60), --tern-base CMD, --skip-selftest, --quiet-wait S, --no-files,
 * --warmup-runs N (1: unmeasured runs of persistent before the measured one, on the same broker).`);
  process.exit(0);
}

const cfg = {
  rounds: Number(args.rounds ?? (args.quick ? 1 : 3)),
  duration: Number(args.duration ?? (args.quick ? 1.5 : 5)),
  warmup: Number(args.warmup ?? (args.quick ? 0.5 : 1)),
  payload: Number(args.payload),
  brokers: args.brokers.split(',').filter(Boolean),
  scenarios: args.scenarios.split(',').filter(Boolean),
  idleConnections: Number(args['idle-connections']),
  latencyRate: Number(args['latency-rate']),
  latencyDuration: Number(args['latency-duration'] ?? (args.quick ? 3 : 10)),
  soakDuration: Number(args['soak-duration'] ?? (args.quick ? 10 : 60)),
  nodelay: args.nodelay,
  quietWait: Number(args['quiet-wait'] ?? (args.quick ? 5 : 15)),
  warmupRuns: Number(args['warmup-runs']),
};
// null: the load tool's null broker (null-broker.mjs), a Node socket server that routes nothing,
// as a floor for the idle scenario (what a Node net.Socket costs before any broker state).
const KNOWN = (b) => ['mosquitto', 'aedes', 'tern', 'null'].includes(b) || TERN_VARIANT.test(b);
for (const b of cfg.brokers)
  if (!KNOWN(b)) fatal(`unknown broker ${b} (mosquitto, aedes, tern, tern-<N>w, tern-<N>w-i<M>, null)`);
for (const s of cfg.scenarios) if (!ALL_SCENARIOS.includes(s)) fatal(`unknown scenario ${s}`);
if (!(cfg.rounds >= 1 && cfg.duration > 0 && cfg.warmup >= 0 && cfg.payload >= 14 && cfg.warmupRuns >= 0)) {
  fatal('bad numeric flag');
}
if (!(cfg.idleConnections >= 1 && cfg.latencyRate > 0 && cfg.latencyDuration > 0 && cfg.soakDuration > 0)) {
  fatal('bad numeric flag');
}

function fatal(msg) {
  console.error(`compare: ${msg}`);
  process.exit(2);
}

const logDir = mkdtempSync(path.join(os.tmpdir(), 'tern-bench-'));
let keepLogs = false;
const live = new Set();

// ---------------------------------------------------------------------------------------
// Brokers
// ---------------------------------------------------------------------------------------

/** Splits a command line on spaces, honouring single and double quotes. */
function splitCommand(line) {
  const out = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function mosquittoConfig(port) {
  const file = path.join(logDir, `mosquitto-${port}.conf`);
  const lines = [
    `listener ${port} ${HOST}`,
    'allow_anonymous true',
    'persistence false',
    // No limit, as in Aedes. The default (1000 queued QoS 1 messages per client) drops 9,000 of
    // the persistent scenario's 10,000 by design, and with a limit of 100000 mosquitto 2.0.11
    // still dropped ~0.07% of the qos1 scenario's messages to the subscriber ("Outgoing messages
    // are being dropped") with never more than 128 in flight.
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
  ];
  if (cfg.nodelay) lines.push('set_tcp_nodelay true');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function ternCommand(line, port) {
  const [cmd, ...rest] = splitCommand(line.replaceAll('{port}', String(port)));
  return [cmd === 'node' ? process.execPath : cmd, rest];
}

/** [command, argv] to start broker `name` on `port`. */
function brokerCommand(name, port) {
  if (name === 'mosquitto') return ['mosquitto', ['-c', mosquittoConfig(port)]];
  if (name === 'aedes') {
    return [
      process.execPath,
      [path.join(HERE, 'aedes-server.mjs'), '--port', String(port), ...(cfg.nodelay ? ['--nodelay'] : [])],
    ];
  }
  if (name === 'null') return [process.execPath, [path.join(HERE, 'null-broker.mjs'), '--port', String(port)]];
  if (name === 'tern') return ternCommand(args['tern-cmd'], port);
  return ternCommand(ternVariantCommand(name), port);
}

/** The start command of a tern-<N>w[-i<M>] variant, with placeholders. */
function ternVariantCommand(name) {
  const [, workers, window] = TERN_VARIANT.exec(name);
  return `${args['tern-base']} --workers ${workers}${window === undefined ? '' : ` --max-inflight ${window}`}`;
}

/** A display string of a broker's start command, with placeholders. */
function commandText(name) {
  if (name === 'mosquitto') return 'mosquitto -c <generated config>';
  if (name === 'aedes') return `node benchmarks/macro/aedes-server.mjs --port {port}${cfg.nodelay ? ' --nodelay' : ''}`;
  if (name === 'tern') return args['tern-cmd'];
  if (name === 'null') return 'node benchmarks/macro/null-broker.mjs --port {port}';
  return ternVariantCommand(name);
}

/** Busy CPU seconds of the machine from /proc/stat (user nice system irq softirq steal). */
function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
  } catch {
    return null;
  }
}

let quietBudgetMs = cfg.quietWait * 1000 * 4;

/**
 * Waits until other processes use less than BUSY_CORES over half a second: a benchmark run on a
 * machine busy with something else measures that something else. Waits at most --quiet-wait
 * seconds per run and four times that over the whole comparison, then goes on (the report flags
 * runs during which other processes were busy). Resolves the cores in use at the last sample.
 */
async function waitQuiet() {
  const started = Date.now();
  const deadline = started + Math.min(cfg.quietWait * 1000, quietBudgetMs);
  for (;;) {
    const a = machineBusySeconds();
    const t = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    const b = machineBusySeconds();
    if (a === null || b === null) return null;
    const busy = (b - a) / ((Date.now() - t) / 1000);
    if (busy < BUSY_CORES || Date.now() > deadline) {
      quietBudgetMs = Math.max(0, quietBudgetMs - (Date.now() - started - 500));
      return Math.round(busy * 100) / 100;
    }
  }
}

/** Starts a broker; resolves { child, port, log } once it accepts connections, or throws why not. */
/** Scenarios timed once in count mode, where a fresh process's first run mostly measures its JIT. */
const WARMED = new Set(['persistent']);

/**
 * The flow scenarios measure after --warmup seconds; a count-mode run has no such window, so
 * --warmup-runs unmeasured runs of it go first, on the same broker process (every broker the
 * same: Mosquitto's first run is as fast as its last, a JavaScript broker's is not).
 */
async function warmUp(scenario, broker, label) {
  if (!WARMED.has(scenario)) return;
  for (let i = 0; i < cfg.warmupRuns; i++) {
    const r = await runLoad({
      flags: scenarioFlags(scenario),
      port: broker.port,
      brokerPid: broker.child.pid,
      label: `${label} (warm-up)`,
      timeoutS: scenarioTimeout(scenario),
      live,
    });
    if (r.error) throw new Error(`warm-up run: ${r.error}`);
  }
}

async function startBroker(name) {
  const port = await freePort();
  const [cmd, argv] = brokerCommand(name, port);
  const script = argv.find((a) => /\.[cm]?js$/.test(a));
  if (script !== undefined && !existsSync(path.resolve(ROOT, script))) {
    throw new Error(`${script} does not exist (not built yet?); command: ${[cmd, ...argv].join(' ')}`);
  }
  const log = path.join(logDir, `${name}-${port}.log`);
  return startServer({ cmd, argv, port, log, live, timeoutMs: START_TIMEOUT_MS });
}

const stopBroker = (broker) => stopServer(broker);

// ---------------------------------------------------------------------------------------
// Load runs
// ---------------------------------------------------------------------------------------

function scenarioFlags(scenario) {
  const flags = ['--scenario', scenario, '--payload', String(cfg.payload)];
  if (['fanin', 'fanout', 'qos1', 'qos2'].includes(scenario)) {
    flags.push('--duration', String(cfg.duration), '--warmup', String(cfg.warmup));
  } else if (scenario === 'latency') {
    flags.push('--duration', String(cfg.latencyDuration), '--warmup', String(cfg.warmup));
    flags.push('--rate', String(cfg.latencyRate));
  } else if (scenario === 'soak') {
    flags.push('--duration', String(cfg.soakDuration), '--warmup', String(cfg.warmup));
  } else if (scenario === 'idle') {
    flags.push('--connections', String(cfg.idleConnections));
  }
  return flags;
}

function scenarioTimeout(scenario) {
  if (scenario === 'idle') return 60 + Math.ceil(cfg.idleConnections / 500);
  if (scenario === 'soak') return Math.ceil(cfg.warmup + cfg.soakDuration + 60);
  if (scenario === 'latency') return Math.ceil(cfg.warmup + cfg.latencyDuration + 30);
  if (scenario === 'persistent' || scenario === 'retained') return 60;
  return Math.ceil(cfg.warmup + cfg.duration + 30);
}

/** One line of progress for a finished run. */
function figureOf(s, r) {
  if (r.error) return r.error;
  if (s === 'persistent') return `drained ${r.unique}/${r.sent} in ${r.drainSeconds} s`;
  if (s === 'retained') return `${r.unique}/${r.expected} retained in ${r.retainedSeconds} s`;
  if (s === 'idle') {
    return `${r.connected}/${r.connections} connected at ${fmtInt(r.connectRate)} conn/s, ${r.kibPerConnection} KiB each`;
  }
  if (s === 'latency') return `p50 ${r.latencyMs?.p50} p99 ${r.latencyMs?.p99} p99.9 ${r.latencyMs?.p999} ms`;
  if (s === 'soak') {
    return `p99 ${r.drift?.p99StartMs} -> ${r.drift?.p99EndMs} ms, RSS ${r.drift?.rssStartKiB} -> ${r.drift?.rssEndKiB} KiB`;
  }
  return `${fmtInt(r.deliveredRate)} msgs/s, lost ${r.lost}, p99 ${r.latencyMs?.p99} ms`;
}

// ---------------------------------------------------------------------------------------
// Tool ceiling against the null broker
// ---------------------------------------------------------------------------------------

const SELFTESTS = [
  { key: 'pub0', what: 'publish QoS 0, 8 connections', flags: ['--scenario', 'pub-only'] },
  {
    key: 'pub1',
    what: 'publish QoS 1, 4 connections x 32 inflight',
    flags: ['--scenario', 'pub-only', '--qos', '1', '--publishers', '4', '--window', '32'],
  },
  { key: 'sub1', what: 'receive QoS 0, 1 subscriber', flags: ['--scenario', 'sub-only'] },
  { key: 'sub64', what: 'receive QoS 0, 64 subscribers', flags: ['--scenario', 'sub-only', '--subscribers', '64'] },
  { key: 'sub1q1', what: 'receive QoS 1 + PUBACK, 1 subscriber', flags: ['--scenario', 'sub-only', '--qos', '1'] },
];

async function selfTest() {
  const d = args.quick ? 1 : 2;
  const caps = {};
  for (const t of SELFTESTS) {
    await waitQuiet();
    const b = await startBroker('null');
    const r = await runLoad({
      flags: [...t.flags, '--duration', String(d), '--warmup', '0.5', '--payload', String(cfg.payload)],
      port: b.port,
      brokerPid: b.child.pid,
      label: 'null',
      timeoutS: 30,
      live,
    });
    await stopBroker(b);
    caps[t.key] = r.error ? null : t.key.startsWith('pub') ? (r.ackedRate ?? r.offeredRate) : r.deliveredRate;
    console.error(`  tool: ${t.what}: ${r.error ?? `${fmtInt(caps[t.key])} msgs/s`}`);
  }
  // A scenario costs the tool its sends plus its receives, on one thread: ceilings in deliveries/s.
  const inv = (x) => (x ? 1 / x : Number.POSITIVE_INFINITY);
  return {
    caps,
    ceiling: {
      fanin: 1 / (inv(caps.pub0) + inv(caps.sub1)),
      fanout: 1 / (inv(caps.sub64) + inv(caps.pub0) / 64),
      qos1: 1 / (inv(caps.pub1) + inv(caps.sub1q1)),
      persistent: caps.sub1q1,
      retained: caps.sub1,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

function firstLine(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim();
}

function versions() {
  const mosquitto = firstLine('mosquitto', ['-h']) || 'not installed';
  let aedes = 'not installed';
  try {
    const req = createRequire(path.join(HERE, 'package.json'));
    const main = req.resolve('aedes');
    let dir = path.dirname(main);
    while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
    aedes = `aedes ${JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version}`;
  } catch {}
  let tern = 'not built';
  const ternPkg = path.join(ROOT, 'packages', 'broker', 'package.json');
  if (existsSync(ternPkg)) tern = `tern ${JSON.parse(readFileSync(ternPkg, 'utf8')).version}`;
  const commit = firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = firstLine('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages']) !== '';
  return {
    mosquitto,
    aedes,
    tern: `${tern} (${commit || 'no git'}${dirty ? ', with uncommitted changes in packages/' : ''})`,
    node: `node ${process.version}`,
  };
}

/** Rows: [label, pick(result) -> number, format, lower is better]. */
const METRICS = {
  fanin: [['delivered msgs/s', (r) => r.deliveredRate, fmtInt, false]],
  fanout: [['delivered msgs/s', (r) => r.deliveredRate, fmtInt, false]],
  qos1: [
    ['delivered msgs/s', (r) => r.deliveredRate, fmtInt, false],
    ['latency p50 ms', (r) => r.latencyMs?.p50, fmtNum, true],
    ['latency p99 ms', (r) => r.latencyMs?.p99, fmtNum, true],
  ],
  qos2: [
    ['delivered msgs/s', (r) => r.deliveredRate, fmtInt, false],
    ['latency p99 ms', (r) => r.latencyMs?.p99, fmtNum, true],
  ],
  latency: [
    ['p50 ms', (r) => r.latencyMs?.p50, fmtNum, true],
    ['p99 ms', (r) => r.latencyMs?.p99, fmtNum, true],
    ['p99.9 ms', (r) => r.latencyMs?.p999, fmtNum, true],
    ['max ms', (r) => r.latencyMs?.max, fmtNum, true],
  ],
  persistent: [
    ['drain 10,000 s', (r) => (r.allArrived ? r.drainSeconds : null), fmtNum, true],
    ['drain msgs/s', (r) => (r.allArrived ? r.drainRate : null), fmtInt, false],
  ],
  retained: [
    ['10,000 retained s', (r) => (r.allArrived ? r.retainedSeconds : null), fmtNum, true],
    ['retained msgs/s', (r) => (r.allArrived ? r.retainedRate : null), fmtInt, false],
  ],
  idle: [
    ['KiB per idle connection', (r) => (r.failed === 0 ? r.kibPerConnection : null), (x) => fmtNum(x, 2), true],
    [
      'KiB per idle connection, second half',
      (r) => (r.failed === 0 ? r.kibPerConnectionSecondHalf : null),
      (x) => fmtNum(x, 2),
      true,
    ],
    ['connections/s', (r) => (r.failed === 0 ? r.connectRate : null), fmtInt, false],
    ['CONNACK p99 ms', (r) => r.connackLatencyMs?.p99, fmtNum, true],
  ],
  soak: [
    ['p99 ms, first slice', (r) => r.drift?.p99StartMs, fmtNum, true],
    ['p99 ms, last slice', (r) => r.drift?.p99EndMs, fmtNum, true],
    ['RSS growth KiB', (r) => r.drift?.rssGrowthKiB, fmtInt, true],
  ],
};

/** Columns in table order: Mosquitto, Aedes, then Tern variants as given. */
function columns(brokers) {
  return [...brokers.filter((b) => !b.startsWith('tern')), ...brokers.filter((b) => b.startsWith('tern'))];
}

function ratioPairs(cols) {
  const terns = cols.filter((b) => b.startsWith('tern'));
  const others = cols.filter((b) => b === 'mosquitto' || b === 'aedes');
  return terns.flatMap((t) => others.map((o) => [t, o]));
}

function medianTable(results, cols, skipped) {
  const pairs = ratioPairs(cols);
  const header = ['scenario', 'metric', ...cols, ...pairs.map(([a, b]) => `${a}/${b}`)];
  const rows = [];
  for (const s of cfg.scenarios) {
    for (const [label, pick, fmt, lowerBetter] of METRICS[s]) {
      const med = {};
      for (const b of cols) med[b] = median((results[s]?.[b] ?? []).map(pick));
      const cells = cols.map((b) => (skipped[b] ? 'skipped' : fmt(med[b])));
      const rs = pairs.map(([a, b]) =>
        med[a] > 0 && med[b] > 0 ? `${(med[a] / med[b]).toFixed(2)}${lowerBetter ? ' (lower is better)' : ''}` : '–',
      );
      rows.push([s, label, ...cells, ...rs]);
    }
  }
  return mdTable(header, rows, 2);
}

function report(results, brokers, skipped, env, tool) {
  const cols = columns(cfg.brokers);
  const out = [];
  out.push(
    `### Brokers side by side (${env.date}, ${env.machine})`,
    '',
    `${env.versions.mosquitto}; ${env.versions.aedes}; ${env.versions.tern}; ${env.versions.node}. ` +
      `Load average before the run: ${env.loadavg}.`,
    `${cfg.rounds} round(s), ${cfg.duration} s measured after ${cfg.warmup} s warmup per flow run, payload ${cfg.payload} B, ` +
      `medians over rounds; TCP_NODELAY on brokers: ${cfg.nodelay ? 'on' : 'broker default (off)'}; ` +
      `${cfg.warmupRuns} unmeasured warm-up run(s) of persistent before each measured one, on the same broker process.`,
  );
  const extra = [];
  if (cfg.scenarios.includes('idle')) extra.push(`idle: ${fmtInt(cfg.idleConnections)} connections`);
  if (cfg.scenarios.includes('latency')) extra.push(`latency: ${cfg.latencyRate} msgs/s for ${cfg.latencyDuration} s`);
  if (cfg.scenarios.includes('soak')) extra.push(`soak: ${cfg.soakDuration} s`);
  if (extra.length > 0) out.push(`${extra.join('; ')}.`);
  out.push('', 'Brokers:', '');
  for (const b of cols) out.push(`- ${b}: \`${commandText(b)}\``);
  out.push('', ...medianTable(results, cols, skipped));
  out.push(
    '',
    'Correctness and load per scenario (all rounds): lost = expected - received; CPU in cores (median).',
    '',
  );
  const h2 = [
    'scenario',
    'broker',
    'runs ok',
    'lost',
    'duplicates',
    'out of order',
    'p50 / p99 ms',
    'broker CPU',
    'tool CPU',
    'other CPU',
    'tool ceiling msgs/s',
  ];
  const rows = [];
  for (const s of cfg.scenarios) {
    for (const b of cols.filter((c) => brokers.includes(c))) {
      const rs = results[s]?.[b] ?? [];
      const ok = rs.filter(
        (r) => !r.error && (r.allArrived === undefined || r.allArrived) && (s !== 'idle' || r.failed === 0),
      );
      const sum = (f) => rs.reduce((n, r) => n + (typeof f(r) === 'number' ? f(r) : 0), 0);
      const p50 = median(rs.map((r) => (s === 'idle' ? r.connackLatencyMs?.p50 : r.latencyMs?.p50)));
      const p99 = median(rs.map((r) => (s === 'idle' ? r.connackLatencyMs?.p99 : r.latencyMs?.p99)));
      const anyDup = rs.some((r) => typeof r.duplicates === 'number');
      rows.push([
        s,
        b,
        `${ok.length}/${rs.length}`,
        s === 'idle' ? `${fmtInt(sum((r) => r.failed))} failed` : fmtInt(sum((r) => r.lost)),
        anyDup ? fmtInt(sum((r) => r.duplicates)) : '–',
        fmtInt(sum((r) => r.outOfOrder)),
        p50 === null ? '–' : `${fmtNum(p50, 2)} / ${fmtNum(p99, 2)}`,
        fmtNum(median(rs.map((r) => r.cpuCores?.broker)), 2),
        fmtNum(median(rs.map((r) => r.cpuCores?.tool)), 2),
        fmtNum(median(rs.map((r) => r.cpuCores?.other)), 2),
        tool?.ceiling[s] ? fmtInt(tool.ceiling[s]) : '–',
      ]);
    }
  }
  out.push(...mdTable(h2, rows, 99));
  if (cfg.scenarios.includes('idle')) {
    out.push(
      '',
      'Idle connections: broker RSS before, at half and after (KiB, median); KiB per connection over all of them and over the second half; settled readings (all rounds).',
      '',
    );
    const rows3 = cols
      .filter((c) => brokers.includes(c))
      .map((b) => {
        const rs = results.idle?.[b] ?? [];
        const settled = rs.filter((r) => r.rssSettled?.before && r.rssSettled?.after).length;
        return [
          b,
          fmtInt(median(rs.map((r) => r.brokerRssBeforeKiB))),
          fmtInt(median(rs.map((r) => r.brokerRssMidKiB))),
          fmtInt(median(rs.map((r) => r.brokerRssAfterKiB))),
          fmtNum(median(rs.map((r) => r.kibPerConnection)), 2),
          fmtNum(median(rs.map((r) => r.kibPerConnectionSecondHalf)), 2),
          fmtInt(median(rs.map((r) => r.connectRate))),
          `${settled}/${rs.length}`,
        ];
      });
    out.push(
      ...mdTable(
        ['broker', 'RSS before', 'RSS at half', 'RSS after', 'KiB/conn', 'KiB/conn 2nd half', 'conn/s', 'settled'],
        rows3,
        1,
      ),
    );
  }
  const noisy = [];
  const toolBound = [];
  for (const s of cfg.scenarios)
    for (const b of brokers)
      (results[s]?.[b] ?? []).forEach((r, i) => {
        if (r.cpuCores?.other > BUSY_CORES) noisy.push(`${s}/${b}#${i + 1} (${r.cpuCores.other})`);
        if (r.cpuCores?.tool > TOOL_BOUND_CORES) toolBound.push(`${s}/${b}#${i + 1} (${r.cpuCores.tool})`);
      });
  if (toolBound.length > 0) {
    out.push(
      '',
      `Warning: the load tool used more than ${TOOL_BOUND_CORES} cores during ${toolBound.length} run(s); it may have been the limit there: ${toolBound.join(', ')}.`,
    );
  }
  if (noisy.length > 0) {
    out.push(
      '',
      `Warning: other processes used more than ${BUSY_CORES} cores during ${noisy.length} run(s); their figures are unreliable: ${noisy.join(', ')}.`,
    );
  }
  const errors = [];
  for (const s of cfg.scenarios)
    for (const b of brokers)
      for (const r of results[s]?.[b] ?? []) if (r.error) errors.push(`- ${s} on ${b}: ${r.error}`);
  if (errors.length > 0) out.push('', 'Failed runs:', ...errors);
  const skips = Object.entries(skipped);
  if (skips.length > 0) out.push('', 'Skipped brokers:', ...skips.map(([b, why]) => `- ${b}: ${why.split('\n')[0]}`));
  if (tool) {
    out.push(
      '',
      `Load tool against a null broker (msgs/s): publish QoS 0 ${fmtInt(tool.caps.pub0)}, publish QoS 1 ${fmtInt(tool.caps.pub1)}, ` +
        `receive QoS 0 ${fmtInt(tool.caps.sub1)} (64 subscribers: ${fmtInt(tool.caps.sub64)}), receive QoS 1 ${fmtInt(tool.caps.sub1q1)}.`,
    );
  }
  return out.join('\n');
}

/** One SVG per scenario: a panel per metric, a bar per broker. */
function charts(results, brokers, env) {
  const cols = columns(brokers);
  const colourOf = colours(cols);
  const out = {};
  for (const s of cfg.scenarios) {
    const panels = METRICS[s].map(([label, pick, fmt, lowerBetter]) => ({
      label,
      lowerBetter,
      format: fmt,
      bars: cols.map((b) => {
        const vs = (results[s]?.[b] ?? []).map(pick);
        return { broker: b, median: median(vs), ...range(vs) };
      }),
    }));
    const rounds = Math.max(0, ...cols.map((b) => (results[s]?.[b] ?? []).length));
    out[s] = barChart(
      `${s}: ${cols.join(', ')}`,
      panels,
      colourOf,
      `${env.date}, ${env.machine}; ${rounds} round(s); ${env.versions.tern.split(' (')[0]}, ${env.versions.mosquitto}, ${env.versions.aedes}`,
    );
  }
  return out;
}

/** results.md, results.json and charts/*.svg in `dir`; then a copy in results/latest. */
function writeOutputs(dir, markdown, data, svgs) {
  mkdirSync(path.join(dir, 'charts'), { recursive: true });
  const links = Object.keys(svgs).map((s) => `![${s}](charts/${s}.svg)`);
  writeFileSync(path.join(dir, 'results.md'), `${markdown}\n\nCharts:\n\n${links.join('\n\n')}\n`);
  writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(data, null, 2)}\n`);
  for (const [s, svg] of Object.entries(svgs)) writeFileSync(path.join(dir, 'charts', `${s}.svg`), svg);
  console.error(`compare: wrote ${path.relative(ROOT, dir)}/ (results.md, results.json, charts/)`);
  const latest = path.join(RESULTS, 'latest');
  if (!args['keep-latest'] && path.resolve(dir) !== latest) {
    rmSync(latest, { recursive: true, force: true });
    cpSync(dir, latest, { recursive: true });
    console.error(`compare: copied to ${path.relative(ROOT, latest)}/`);
  }
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const cpus = os.cpus();
  const env = {
    date: new Date().toISOString().slice(0, 10),
    startedAt: new Date().toISOString(),
    machine: `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`,
    loadavg: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    versions: versions(),
    commands: Object.fromEntries(cfg.brokers.map((b) => [b, commandText(b)])),
    argv: process.argv.slice(2),
  };
  console.error(`compare: ${env.machine}; load average ${env.loadavg}; logs in ${logDir}`);

  const brokers = [];
  const skipped = {};
  for (const name of cfg.brokers) {
    try {
      const b = await startBroker(name);
      await stopBroker(b);
      brokers.push(name);
    } catch (err) {
      skipped[name] = err.message;
      console.error(`compare: skipping ${name}: ${err.message}`);
    }
  }
  if (brokers.length === 0) fatal('no broker could be started');

  let tool = null;
  if (!args['skip-selftest']) {
    console.error('compare: measuring the load tool against null-broker.mjs');
    tool = await selfTest();
  }

  const results = {};
  for (let round = 0; round < cfg.rounds; round++) {
    for (const s of cfg.scenarios) {
      const order = brokers.map((_, i) => brokers[(i + round) % brokers.length]);
      for (const b of order) {
        let r;
        const busyBefore = await waitQuiet();
        try {
          const broker = await startBroker(b);
          await warmUp(s, broker, b);
          r = await runLoad({
            flags: scenarioFlags(s),
            port: broker.port,
            brokerPid: broker.child.pid,
            label: b,
            timeoutS: scenarioTimeout(s),
            live,
          });
          if (broker.child.exitCode !== null || broker.child.signalCode !== null) {
            r.error ??= `broker exited during the run (see ${broker.log})`;
          }
          await stopBroker(broker);
        } catch (err) {
          r = { error: err.message };
        }
        r.busyBefore = busyBefore;
        if (r.error) keepLogs = true;
        ((results[s] ??= {})[b] ??= []).push(r);
        const other = r.cpuCores?.other;
        const busyNote = other > BUSY_CORES ? ` (other processes used ${other} cores: unreliable)` : '';
        console.error(`  [round ${round + 1}] ${s} on ${b}: ${figureOf(s, r)}${busyNote}`);
      }
    }
  }

  env.finishedAt = new Date().toISOString();
  env.loadavgAfter = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const table = report(results, brokers, skipped, env, tool);
  console.log(table);
  console.error(`compare: done in ${Math.round((Date.now() - started) / 1000)} s`);
  const data = { env, cfg, tool, skipped, results };
  if (args.out) writeFileSync(args.out, `${JSON.stringify(data, null, 2)}\n`);
  if (!args['no-files']) {
    const dir = path.resolve(args['out-dir'] ?? path.join(RESULTS, stamp()));
    writeOutputs(dir, table, data, charts(results, brokers, env));
  }
}

async function cleanup() {
  for (const child of live) child.kill('SIGKILL');
  if (keepLogs) console.error(`compare: logs kept in ${logDir}`);
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
