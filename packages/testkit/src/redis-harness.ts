/**
 * A real redis-server for a test: its own free port on 127.0.0.1 and its own temporary
 * directory (append-only file on, so a restart keeps what was written), stopped with the test.
 * No Redis mock anywhere: the cluster's guarantees are proven against the real thing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, or SIGKILL to simulate a crash) and waits for it to exit. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and directory (the AOF brings the data back). */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  destroy(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released: good enough for a test on loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'tern-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    child = await runRedisServer([
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
    ]);
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const proc = child as ChildProcess | null;
    child = null;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop,
    restart: launch,
    destroy: async () => {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `redis-server args...` and resolves once it prints `ready` (by default the line a
 * server prints once it accepts connections and has loaded its AOF), or rejects with what it
 * printed if it exits first.
 */
export function runRedisServer(args: readonly string[], ready = 'Ready to accept connections'): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-server', [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${output}`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      output += `${line}\n`;
      if (line.includes(ready)) resolve(proc);
    });
  });
}
