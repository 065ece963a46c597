/**
 * The 100k scale run of idle connections, on a machine whose open-file limit is lower than
 * that: a Tern cluster of several nodes on this machine (loopback only), one Redis, and one
 * holder process per node, each under the limit, holding its share of the connections at the
 * same time as the others. Reports every node's RSS growth per connection and the connection
 * rate of the whole run.
 *
 *   npm run build && node benchmarks/macro/scale-idle.mjs [--connections 100000] [--per-node 16000]
 *        [--workers 1] [--concurrency 200] [--warmup-connections 1000] [--settle-timeout 20] [--json]
 *
 * Steps: redis-server on a free port; ceil(connections / per-node) Tern nodes joined through it
 * (`--redis`, each `--workers N`); each holder opens and closes --warmup-connections first (the
 * idle scenario's method: the baseline is a broker that has served connections); every node's
 * RSS is read once it holds still (proc.mjs settledRss); the holders open their shares together,
 * CONNECT and CONNACK each; RSS is read again, settled; then all close, and everything stops.
 * The connection rate is the connections held over the time from the first open to the last
 * CONNACK, every node at once. Needs redis-server (Debian package redis-server) and a build.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtInt, freePort, HOST, mdTable, ROOT, startServer, stopServer } from './harness.mjs';
import { ephemeralPorts, fdLimits, round3, settledRss } from './proc.mjs';
import { connectBytes, DISCONNECT_BYTES } from './wire.mjs';

/** Descriptors a node or a holder needs besides its connections (Redis, stdio, libuv, /proc). */
const FD_MARGIN = 500;

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    'per-node': { type: 'string', default: '16000' },
    workers: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' },
    'warmup-connections': { type: 'string', default: '1000' },
    'settle-timeout': { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    // A holder process (started by this script): --hold PORT COUNT
    hold: { type: 'string' },
    count: { type: 'string' },
    label: { type: 'string' },
  },
});

function fatal(message) {
  process.stderr.write(`scale-idle: ${message}\n`);
  process.exit(2);
}

function positive(name) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < (name === 'warmup-connections' ? 0 : 1))
    fatal(`--${name} must be a positive integer`);
  return n;
}

if (values.hold !== undefined) await hold(Number(values.hold), positive('count'), values.label ?? 'h');
else await orchestrate();

/**
 * Opens `count` connections to `port` (CONNECT, clean session; at most `concurrency`
 * handshakes in flight, spread over source addresses when one ephemeral range is too small).
 * Resolves { sockets, acked, failed, errors }.
 */
async function openConnections(port, count, prefix, concurrency) {
  const ports = ephemeralPorts();
  const sources = Math.max(1, Math.ceil(count / Math.floor((ports.high - ports.low + 1) * 0.9)));
  const sockets = [];
  const errors = {};
  let next = 0;
  let acked = 0;
  let failed = 0;
  await new Promise((resolve) => {
    if (count === 0) return resolve();
    const one = () => {
      if (next >= count) return;
      const i = next++;
      const localAddress = sources > 1 ? `127.0.0.${1 + (i % sources)}` : undefined;
      const socket = net.connect({ host: HOST, port, localAddress });
      let done = false;
      const finish = (ok, why) => {
        if (done) return;
        done = true;
        if (ok) {
          acked++;
          sockets.push(socket);
        } else {
          failed++;
          errors[why] = (errors[why] ?? 0) + 1;
          socket.destroy();
        }
        if (acked + failed === count) resolve();
        else one();
      };
      socket.on('connect', () => socket.write(connectBytes(`${prefix}-${process.pid}-${i}`, true, 0)));
      socket.once('data', (chunk) => finish(chunk[0] === 0x20 && chunk[3] === 0, 'refused'));
      socket.on('error', (err) => finish(false, err.code ?? 'error'));
      socket.on('close', () => finish(false, 'closed'));
    };
    for (let k = 0; k < concurrency; k++) one();
  });
  return { sockets, acked, failed, errors };
}

/** Ends every socket with DISCONNECT and resolves once all have closed. */
function closeAll(sockets) {
  return Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', resolve);
          s.on('error', () => {});
          s.end(DISCONNECT_BYTES);
        }),
    ),
  );
}

/** A holder: warm up, then open and hold its share until told to close. Talks over IPC. */
async function hold(port, count, label) {
  const concurrency = positive('concurrency');
  const warm = await openConnections(port, positive('warmup-connections'), `${label}-warm`, concurrency);
  await closeAll(warm.sockets);
  const commands = [];
  let wake = null;
  process.on('message', (m) => {
    commands.push(m);
    wake?.();
  });
  const command = async () => {
    while (commands.length === 0) await new Promise((r) => (wake = r));
    return commands.shift();
  };
  process.send({ t: 'warmed', acked: warm.acked });
  if ((await command()) !== 'open') process.exit(1);
  const t0 = performance.now();
  const held = await openConnections(port, count, label, concurrency);
  const lastConnack = performance.now();
  process.send({ t: 'held', acked: held.acked, failed: held.failed, errors: held.errors, t0, lastConnack });
  if ((await command()) !== 'close') process.exit(1);
  await closeAll(held.sockets);
  process.send({ t: 'closed' });
  process.disconnect();
}

/** The whole run: Redis, nodes, holders, readings, report. */
async function orchestrate() {
  const total = positive('connections');
  const perNode = positive('per-node');
  const workers = positive('workers');
  const settleTimeoutMs = positive('settle-timeout') * 1000;
  const limits = fdLimits();
  if (limits !== null && perNode + FD_MARGIN > limits.soft) {
    fatal(
      `--per-node ${perNode} needs about ${perNode + FD_MARGIN} open files per process; ulimit -n is ${limits.soft}`,
    );
  }
  const nodes = Math.ceil(total / perNode);
  const shares = Array.from({ length: nodes }, (_, i) => Math.floor(total / nodes) + (i < total % nodes ? 1 : 0));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tern-scale-'));
  const live = new Set();
  const servers = [];
  const holders = [];
  const say = (line) => {
    if (!values.json) process.stderr.write(`${line}\n`);
  };
  const stopAll = async () => {
    for (const h of holders) h.kill('SIGKILL');
    await Promise.all(servers.reverse().map((s) => stopServer(s, 10_000)));
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const redisPort = await freePort();
    servers.push(
      await startServer({
        cmd: 'redis-server',
        argv: ['--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir],
        port: redisPort,
        log: path.join(dir, 'redis.log'),
        live,
      }),
    );
    const cli = path.join(ROOT, 'packages/broker/dist/cli.js');
    const ports = [];
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      ports.push(port);
      const argv = [
        cli,
        ...['--port', String(port), '--host', HOST, '--no-metrics', '--log-level', 'warn'],
        ...['--workers', String(workers), '--redis', `redis://${HOST}:${redisPort}`, '--redis-prefix', 'scale'],
        ...['--node-name', `scale${i + 1}`],
      ];
      servers.push(
        await startServer({ cmd: process.execPath, argv, port, log: path.join(dir, `node${i + 1}.log`), live }),
      );
      say(`node ${i + 1}/${nodes} on port ${port}`);
    }
    const nodeServers = servers.slice(1);

    const messages = (child) => {
      const queue = [];
      let wake = null;
      child.on('message', (m) => {
        queue.push(m);
        wake?.();
      });
      child.on('exit', (code) => {
        queue.push({ t: 'exit', code });
        wake?.();
      });
      return async (type) => {
        for (;;) {
          while (queue.length === 0) await new Promise((r) => (wake = r));
          const m = queue.shift();
          if (m.t === type) return m;
          // A holder exits right after saying 'closed', and its exit may be seen first.
          if (m.t === 'exit' && type === 'closed' && m.code === 0) return m;
          if (m.t === 'exit') throw new Error(`a holder exited (${m.code}) while waiting for '${type}'`);
        }
      };
    };
    const self = fileURLToPath(import.meta.url);
    const waits = [];
    for (let i = 0; i < nodes; i++) {
      const argv = ['--hold', String(ports[i]), '--count', String(shares[i]), '--label', `scale${i + 1}`];
      argv.push('--concurrency', values.concurrency, '--warmup-connections', values['warmup-connections']);
      const child = fork(self, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      holders.push(child);
      waits.push(messages(child));
    }
    await Promise.all(waits.map((w) => w('warmed')));
    say('warmed up; reading every node’s RSS until it holds still');
    const readAll = () => Promise.all(nodeServers.map((s) => settledRss(s.child.pid, { timeoutMs: settleTimeoutMs })));
    const before = await readAll();
    say(`opening ${fmtInt(total)} connections over ${nodes} nodes`);
    for (const h of holders) h.send('open');
    const held = await Promise.all(waits.map((w) => w('held')));
    const after = await readAll();
    for (const h of holders) h.send('close');
    await Promise.all(waits.map((w) => w('closed')));

    const acked = held.reduce((sum, h) => sum + h.acked, 0);
    const seconds = (Math.max(...held.map((h) => h.lastConnack)) - Math.min(...held.map((h) => h.t0))) / 1000;
    const perNodeRows = held.map((h, i) => {
      const growth = before[i] && after[i] ? after[i].kib - before[i].kib : null;
      return {
        node: `scale${i + 1}`,
        connections: h.acked,
        failed: h.failed,
        rssBeforeMiB: before[i] ? round3(before[i].kib / 1024) : null,
        rssAfterMiB: after[i] ? round3(after[i].kib / 1024) : null,
        kibPerConnection: growth === null || h.acked === 0 ? null : round3(growth / h.acked),
        settled: Boolean(before[i]?.settled && after[i]?.settled),
      };
    });
    let growthKiB = 0;
    for (let i = 0; i < nodes; i++) growthKiB += (after[i]?.kib ?? 0) - (before[i]?.kib ?? 0);
    const result = {
      connections: total,
      held: acked,
      failed: held.reduce((sum, h) => sum + h.failed, 0),
      errors: Object.assign({}, ...held.map((h) => h.errors)),
      nodes,
      workersPerNode: workers,
      connectSeconds: round3(seconds),
      connectionsPerSecond: Math.round(acked / seconds),
      rssGrowthMiB: round3(growthKiB / 1024),
      kibPerConnection: acked > 0 ? round3(growthKiB / acked) : null,
      perNode: perNodeRows,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const header = [
        'node',
        'connections',
        'failed',
        'RSS before MiB',
        'RSS after MiB',
        'KiB per connection',
        'settled',
      ];
      const rows = perNodeRows.map((r) => [
        r.node,
        fmtInt(r.connections),
        String(r.failed),
        String(r.rssBeforeMiB),
        String(r.rssAfterMiB),
        String(r.kibPerConnection),
        r.settled ? 'yes' : 'no',
      ]);
      console.log(mdTable(header, rows, 1).join('\n'));
      console.log(
        `\n${fmtInt(acked)} of ${fmtInt(total)} connections held at once over ${nodes} nodes ` +
          `(${workers} worker(s) each); ${result.failed} failed; RSS growth ${result.rssGrowthMiB} MiB, ` +
          `${result.kibPerConnection} KiB per connection; ${fmtInt(result.connectionsPerSecond)} connections/s.`,
      );
    }
    process.exitCode = acked === total ? 0 : 1;
  } finally {
    await stopAll();
  }
}
