/** Runs the real `tern` command (the built dist/cli.js) as a child process, as a user would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { run } from './mqttjs.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * The environment as a user's shell would have it: without the caller's TERN_* variables and
 * without the test runner's NODE_OPTIONS loaders, plus `extra`.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TERN_') && k !== 'NODE_OPTIONS') out[k] = v;
  return { ...out, ...extra };
}

/** Runs `tern args...` to its end. */
export const tern = (args: readonly string[], extra: Record<string, string> = {}) =>
  run(process.execPath, [CLI, ...args], { env: cleanEnv(extra) });

export type LogEntry = { msg: string; [k: string]: unknown };

export interface Running {
  child: ChildProcess;
  port: number;
  /** Every JSON log line printed so far. */
  logs: LogEntry[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line (already printed or still to come) that `match` accepts. */
  waitForLog(match: (entry: LogEntry) => boolean): Promise<LogEntry>;
}

/**
 * Starts the CLI on a free loopback port (metrics off unless `args` turn them on) and
 * resolves once it logs where it listens.
 */
export function startCli(args: readonly string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', '--no-metrics', ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: LogEntry[] = [];
  const waiters: Array<{ match: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }> = [];
  const waitForLog = (match: (entry: LogEntry) => boolean): Promise<LogEntry> => {
    const found = logs.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => waiters.push({ match, resolve }));
  };
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const entry = JSON.parse(line) as LogEntry;
      logs.push(entry);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i] as (typeof waiters)[number];
        if (w.match(entry)) {
          waiters.splice(i, 1);
          w.resolve(entry);
        }
      }
      if (entry.msg === 'listening for MQTT') {
        resolve({ child, port: entry.port as number, logs, exited, waitForLog });
      }
    });
    void exited.then(({ code }) => reject(new Error(`tern exited (${code}) before listening: ${stderr}`)));
  });
}
