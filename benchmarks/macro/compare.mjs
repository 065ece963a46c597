/**
 * Runs Mosquitto, Aedes and Tern side by side on this machine (loopback only) and prints a
 * markdown table of medians.
 *
 *   node benchmarks/macro/compare.mjs [--quick] [--rounds 3] [--duration 5] [--warmup 1]
 *        [--brokers mosquitto,aedes,tern] [--scenarios fanin,fanout,qos1,persistent]
 *        [--tern-cmd "node packages/broker/dist/cli.js --port {port} ..."] [--nodelay] [--out file.json]
 *
 * Each run starts a fresh broker on a free port, waits until it accepts TCP connections (polled,
 * no fixed sleep), runs one scenario of load.mjs in its own process and stops the broker.
 * Runs are interleaved: for each round, for each scenario, for each broker in an order rotated
 * every round, so drift of the machine spreads over all brokers. A broker whose start command
 * fails (not installed, not built) is skipped with the reason. Before the brokers, the load
 * tool is measured against null-broker.mjs, to show it can offer more than the brokers take.
 *
 * Tern's command comes from --tern-cmd or $TERN_CMD; `{port}` is replaced by the port, a leading
 * `node` by this Node binary; it runs from the repository root with stdout/stderr to a log file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const LOAD = path.join(HERE, 'load.mjs');
const HOST = '127.0.0.1';
/**
 * Tern's settings match the others': loopback only, room for the persistent scenario's 10,000
 * queued messages (its default is 1000; mosquitto runs with no limit), no per-connection logs.
 */
const DEFAULT_TERN_CMD =
  'node packages/broker/dist/cli.js --port {port} --host 127.0.0.1 --max-queued 100000 --log-level warn';
const ALL_BROKERS = ['mosquitto', 'aedes', 'tern'];
const ALL_SCENARIOS = ['fanin', 'fanout', 'qos1', 'persistent'];
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
    brokers: { type: 'string', default: ALL_BROKERS.join(',') },
    scenarios: { type: 'string', default: ALL_SCENARIOS.join(',') },
    'tern-cmd': { type: 'string', default: process.env.TERN_CMD || DEFAULT_TERN_CMD },
    nodelay: { type: 'boolean', default: false },
    'skip-selftest': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string' },
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
  payload: Number(args.payload),
  brokers: args.brokers.split(',').filter(Boolean),
  scenarios: args.scenarios.split(',').filter(Boolean),
  nodelay: args.nodelay,
  quietWait: Number(args['quiet-wait'] ?? (args.quick ? 5 : 15)),
};
for (const b of cfg.brokers) if (!ALL_BROKERS.includes(b)) fatal(`unknown broker ${b}`);
for (const s of cfg.scenarios) if (!ALL_SCENARIOS.includes(s)) fatal(`unknown scenario ${s}`);
if (!(cfg.rounds >= 1 && cfg.duration > 0 && cfg.warmup >= 0 && cfg.payload >= 14)) fatal('bad numeric flag');

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

const BROKERS = {
  mosquitto: (port) => ['mosquitto', ['-c', mosquittoConfig(port)]],
  aedes: (port) => [
    process.execPath,
    [path.join(HERE, 'aedes-server.mjs'), '--port', String(port), ...(cfg.nodelay ? ['--nodelay'] : [])],
  ],
  tern: (port) => {
    const [cmd, ...rest] = splitCommand(args['tern-cmd'].replaceAll('{port}', String(port)));
    return [cmd === 'node' ? process.execPath : cmd, rest];
  },
  null: (port) => [process.execPath, [path.join(HERE, 'null-broker.mjs'), '--port', String(port)]],
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
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

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function tail(file, lines = 5) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n    ');
  } catch {
    return '';
  }
}

/** Starts a broker; resolves { child, port, log } once it accepts connections, or throws why not. */
async function startBroker(name) {
  const port = await freePort();
  const [cmd, argv] = BROKERS[name](port);
  const script = argv.find((a) => /\.[cm]?js$/.test(a));
  if (script !== undefined && !existsSync(path.resolve(ROOT, script))) {
    throw new Error(`${script} does not exist (not built yet?); command: ${[cmd, ...argv].join(' ')}`);
  }
  const log = path.join(logDir, `${name}-${port}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  live.add(child);
  let exited = null;
  child.on('error', (err) => {
    exited = `cannot run ${cmd}: ${err.message}`;
  });
  child.on('exit', (code, signal) => {
    live.delete(child);
    exited ??= `exited with ${signal ?? `code ${code}`} before accepting connections`;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) {
      const why = tail(log);
      throw new Error(`${[cmd, ...argv].join(' ')}: ${exited}${why ? `\n    ${why}` : ''}`);
    }
    if (await canConnect(port)) return { child, port, log };
    if (Date.now() > deadline) {
      await stopBroker({ child });
      throw new Error(`${name} did not accept connections on ${HOST}:${port} within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stopBroker({ child }) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------------------------------
// Load runs
// ---------------------------------------------------------------------------------------

/** Runs load.mjs with `flags` against `port`; resolves its JSON result (or { error }). */
function runLoad(flags, port, brokerPid, label, timeoutS) {
  const argv = [LOAD, '--json', '--port', String(port), '--label', label, '--timeout', String(timeoutS), ...flags];
  if (brokerPid) argv.push('--broker-pid', String(brokerPid));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const line = out.trim().split('\n').pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve({ error: `load.mjs exited with ${signal ?? code}: ${(err || out).trim().slice(0, 300)}` });
      }
    });
  });
}

function scenarioFlags(scenario) {
  const flags = ['--scenario', scenario, '--payload', String(cfg.payload)];
  if (scenario !== 'persistent') flags.push('--duration', String(cfg.duration), '--warmup', String(cfg.warmup));
  return flags;
}

function scenarioTimeout(scenario) {
  return scenario === 'persistent' ? 60 : Math.ceil(cfg.warmup + cfg.duration + 30);
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
    const r = await runLoad(
      [...t.flags, '--duration', String(d), '--warmup', '0.5', '--payload', String(cfg.payload)],
      b.port,
      b.child.pid,
      'null',
      30,
    );
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
    },
  };
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function fmtInt(x) {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US');
}

function fmtNum(x, digits = 3) {
  return x === null || x === undefined ? '–' : String(Number(x.toFixed(digits)));
}

function versions() {
  const mosq = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
  const mosquitto = `${mosq.stdout ?? ''}${mosq.stderr ?? ''}`.split('\n')[0].trim() || 'not installed';
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
  return { mosquitto, aedes, tern, node: `node ${process.version}` };
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
  persistent: [
    ['drain 10,000 s', (r) => (r.allArrived ? r.drainSeconds : null), fmtNum, true],
    ['drain msgs/s', (r) => (r.allArrived ? r.drainRate : null), fmtInt, false],
  ],
};

function report(results, brokers, skipped, env, tool) {
  const out = [];
  const cols = ALL_BROKERS.filter((b) => cfg.brokers.includes(b));
  const ratioCols = [
    ['tern', 'mosquitto'],
    ['tern', 'aedes'],
  ].filter(([a, b]) => cols.includes(a) && cols.includes(b));
  out.push(
    `### Brokers side by side (${env.date}, ${env.machine})`,
    '',
    `${env.versions.mosquitto}; ${env.versions.aedes}; ${env.versions.tern}; ${env.versions.node}.`,
    `${cfg.rounds} round(s), ${cfg.duration} s measured after ${cfg.warmup} s warmup per run, payload ${cfg.payload} B, ` +
      `medians over rounds; TCP_NODELAY on brokers: ${cfg.nodelay ? 'on' : 'broker default (off)'}.`,
    '',
  );
  const header = ['scenario', 'metric', ...cols, ...ratioCols.map(([a, b]) => `${a}/${b}`)];
  out.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const s of cfg.scenarios) {
    for (const [label, pick, fmt, lowerBetter] of METRICS[s]) {
      const med = {};
      for (const b of cols) med[b] = brokers.includes(b) ? median((results[s]?.[b] ?? []).map(pick)) : null;
      const cells = cols.map((b) => (skipped[b] ? 'skipped' : fmt(med[b])));
      const rs = ratioCols.map(([a, b]) =>
        med[a] && med[b] ? `${(med[a] / med[b]).toFixed(2)}${lowerBetter ? ' (lower is better)' : ''}` : '–',
      );
      out.push(`| ${[s, label, ...cells, ...rs].join(' | ')} |`);
    }
  }
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
    'out of order',
    'p50 / p99 ms',
    'broker CPU',
    'tool CPU',
    'other CPU',
    'tool ceiling msgs/s',
  ];
  out.push(`| ${h2.join(' | ')} |`, `|${h2.map(() => ' --- ').join('|')}|`);
  for (const s of cfg.scenarios) {
    for (const b of brokers) {
      const rs = results[s]?.[b] ?? [];
      const ok = rs.filter((r) => !r.error && (s !== 'persistent' || r.allArrived));
      const lost = rs.reduce((n, r) => n + (typeof r.lost === 'number' ? r.lost : 0), 0);
      const ooo = rs.reduce((n, r) => n + (r.outOfOrder ?? 0), 0);
      const p50 = median(rs.map((r) => r.latencyMs?.p50));
      const p99 = median(rs.map((r) => r.latencyMs?.p99));
      const cpuB = median(rs.map((r) => r.cpuCores?.broker));
      const cpuT = median(rs.map((r) => r.cpuCores?.tool));
      const cpuO = median(rs.map((r) => r.cpuCores?.other));
      out.push(
        `| ${s} | ${b} | ${ok.length}/${rs.length} | ${fmtInt(lost)} | ${fmtInt(ooo)} | ${p50 === null ? '–' : `${fmtNum(p50, 2)} / ${fmtNum(p99, 2)}`} | ${fmtNum(cpuB, 2)} | ${fmtNum(cpuT, 2)} | ${fmtNum(cpuO, 2)} | ${tool ? fmtInt(tool.ceiling[s]) : '–'} |`,
      );
    }
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

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const env = {
    date: new Date().toISOString().slice(0, 10),
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`,
    versions: versions(),
  };
  console.error(`compare: ${env.machine}; logs in ${logDir}`);

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
          r = await runLoad(scenarioFlags(s), broker.port, broker.child.pid, b, scenarioTimeout(s));
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
        const figure =
          r.error ??
          (s === 'persistent'
            ? `drained ${r.unique}/${r.sent} in ${r.drainSeconds} s`
            : `${fmtInt(r.deliveredRate)} msgs/s, lost ${r.lost}, p99 ${r.latencyMs?.p99} ms`);
        const other = r.cpuCores?.other;
        const busyNote = other > BUSY_CORES ? ` (other processes used ${other} cores: unreliable)` : '';
        console.error(`  [round ${round + 1}] ${s} on ${b}: ${figure}${busyNote}`);
      }
    }
  }

  const table = report(results, brokers, skipped, env, tool);
  console.log(table);
  console.error(`compare: done in ${Math.round((Date.now() - started) / 1000)} s`);
  if (args.out) writeFileSync(args.out, `${JSON.stringify({ env, cfg, tool, skipped, results }, null, 2)}\n`);
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
