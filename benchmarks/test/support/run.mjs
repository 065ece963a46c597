/**
 * Helpers for the load tool's tests: start a broker process and read the port it listens on from
 * its first matching stdout line, run load.mjs with --json and parse its result.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..', '..');
export const LOAD = path.join(ROOT, 'benchmarks', 'macro', 'load.mjs');
export const TOY = path.join(ROOT, 'benchmarks', 'test', 'fixtures', 'toy-broker.mjs');
export const NULL_BROKER = path.join(ROOT, 'benchmarks', 'macro', 'null-broker.mjs');
export const TERN_CLI = path.join(ROOT, 'packages', 'broker', 'dist', 'cli.js');

/**
 * Spawns `node argv...` and resolves { child, port } once a stdout line gives the port:
 * `portOf(line)` returns it or undefined. Stopped with SIGTERM by `t.teardown`.
 */
export function startBroker(t, argv, portOf) {
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const port = portOf(line);
      if (port !== undefined) {
        lines.removeAllListeners('line');
        child.stdout.resume();
        resolve({ child, port });
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`broker exited (${signal ?? code}): ${stderr}`)));
  });
}

/** The toy broker (benchmarks/test/fixtures/toy-broker.mjs) with `flags`. */
export function startToy(t, flags = []) {
  return startBroker(t, [TOY, '--port', '0', ...flags], (line) => JSON.parse(line).port);
}

/** Runs load.mjs with `argv`; resolves { code, stdout, stderr }. */
export function loadRaw(argv) {
  return runScript(LOAD, argv);
}

/** Runs `node script argv...` from the repository root; resolves { code, stdout, stderr }. */
export function runScript(script, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs load.mjs with --json; resolves { code, result, stderr }. */
export function load(flags) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD, '--json', '--timeout', '60', ...flags], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        resolve({ code, result: JSON.parse(out.trim().split('\n').pop()), stderr: err });
      } catch {
        reject(new Error(`load.mjs printed no JSON (exit ${code}): ${out}${err}`));
      }
    });
  });
}
