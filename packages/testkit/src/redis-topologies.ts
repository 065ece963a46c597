/**
 * Redis as production runs it, for the tests that prove Tern works with each deployment the
 * `redis` setting names: a Redis Cluster of several masters, and a master watched by Sentinel.
 * Real servers on free loopback ports, stopped with the test.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, runRedisServer } from './redis-harness.js';

const run = promisify(execFile);

export interface TestRedisDeployment {
  /** The URL to give Tern's `redis` setting. */
  url: string;
  stop(): Promise<void>;
}

async function stopAll(procs: ChildProcess[], dir: string): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
}

/** A Redis Cluster of `masters` masters (no replicas), every slot covered. */
export async function startRedisCluster(masters = 3): Promise<TestRedisDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'tern-redis-cluster-'));
  const procs: ChildProcess[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(
        await runRedisServer([
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
        ]),
      );
    }
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    // Every node must agree the cluster is whole before a client is pointed at it (asked
    // with redis-cli: a cluster client of our own would reconnect while the slots settle).
    for (let tries = 0; ; tries++) {
      const infos = await Promise.all(
        ports.map((port) =>
          run('redis-cli', ['-p', String(port), 'cluster', 'info']).then(
            (r) => r.stdout,
            () => '',
          ),
        ),
      );
      if (infos.every((info) => info.includes('cluster_state:ok'))) break;
      if (tries > 200) throw new Error('the test Redis Cluster did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { url: `redis-cluster://${nodes.join(',')}`, stop: () => stopAll(procs, dir) };
  } catch (err) {
    await stopAll(procs, dir);
    throw err;
  }
}

/** A master and one Sentinel watching it under the name `tern`. */
export async function startRedisSentinel(): Promise<TestRedisDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'tern-redis-sentinel-'));
  const procs: ChildProcess[] = [];
  try {
    const masterPort = await freePort();
    procs.push(await runRedisServer(['--port', String(masterPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '']));
    const sentinelPort = await freePort();
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor tern 127.0.0.1 ${masterPort} 1`,
        'sentinel down-after-milliseconds tern 5000',
        '',
      ].join('\n'),
    );
    // A sentinel listens once it has taken up the master it is told to watch.
    procs.push(await runRedisServer([config, '--sentinel'], '+monitor master tern'));
    return { url: `redis-sentinel://127.0.0.1:${sentinelPort}/tern`, stop: () => stopAll(procs, dir) };
  } catch (err) {
    await stopAll(procs, dir);
    throw err;
  }
}
