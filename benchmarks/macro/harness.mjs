/**
 * What the side-by-side scripts (compare.mjs, compare-cluster.mjs) share: free ports, waiting
 * for a server to accept, starting and stopping processes with their output in a log file,
 * running load.mjs in its own process, and the statistics and markdown of the reports.
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HOST = '127.0.0.1';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOAD = path.join(ROOT, 'benchmarks', 'macro', 'load.mjs');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function tail(file, lines = 5) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n    ');
  } catch {
    return '';
  }
}

/**
 * Starts `cmd argv` from the repository root with stdout and stderr appended to `log`, and
 * resolves once something accepts TCP connections on `port` (polled every 20 ms, no fixed
 * sleep). Throws, with the end of the log, if the process exits first or `timeoutMs` passes.
 * `live` collects running children so the caller can kill them all on the way out.
 */
export async function startServer({ cmd, argv, port, log, live, timeoutMs = 15000 }) {
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
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== null) {
      const why = tail(log);
      throw new Error(`${[cmd, ...argv].join(' ')}: ${exited}${why ? `\n    ${why}` : ''}`);
    }
    if (await canConnect(port)) return { child, port, log };
    if (Date.now() > deadline) {
      await stopServer({ child });
      throw new Error(`${cmd} did not accept connections on ${HOST}:${port} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopServer({ child }, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Runs load.mjs with `flags` against `port` (flags may add --pub-port/--sub-port); resolves
 * its JSON result, or { error } when it printed none.
 */
export function runLoad({ flags, port, brokerPid, label, timeoutS, live }) {
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

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function range(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? { min: null, max: null } : { min: Math.min(...v), max: Math.max(...v) };
}

export function fmtInt(x) {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US');
}

export function fmtNum(x, digits = 3) {
  return x === null || x === undefined ? '–' : String(Number(x.toFixed(digits)));
}

export function mdTable(header, rows, numericFrom) {
  const sep = header.map((_, i) => (i < numericFrom ? ' --- ' : ' ---: '));
  return [`| ${header.join(' | ')} |`, `|${sep.join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The date-time part of a results folder's name (UTC). */
export function stamp() {
  return new Date().toISOString().slice(0, 16).replace(':', '').replace('T', '-');
}
