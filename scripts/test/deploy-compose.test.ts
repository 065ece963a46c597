/**
 * The Docker deployment, checked without a Docker engine: docker-compose.yml has the cluster's
 * topology (Redis with appendonly, three Tern nodes joined through it, HAProxy in TCP mode in
 * front of exactly those nodes, Prometheus scraping every one of them), the Dockerfile builds
 * and runs Tern the way the issue asks, and the tools that can read the files accept them
 * (`docker-compose config`, `haproxy -c`) where they are installed.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(ROOT + file, 'utf8');
const run = promisify(execFile);

interface Service {
  build?: string;
  image?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const ternNames = Object.keys(services).filter((name) => /^tern\d+$/.test(name));

/** A flag's value in a command list (`--redis`, `x` -> `x`). */
function flag(command: string[] | undefined, name: string): string | undefined {
  const i = command?.indexOf(name) ?? -1;
  return i === -1 ? undefined : command?.[i + 1];
}

/** A skip reason when `command` is not on the PATH. */
function unless(command: string): string | false {
  const found = (process.env.PATH ?? '').split(':').some((dir) => existsSync(path.join(dir, command)));
  return !found && `${command} is not installed`;
}

t.test('three Tern nodes, each joined to the cluster through the redis service under its own name', async (t) => {
  t.same(ternNames, ['tern1', 'tern2', 'tern3']);
  for (const name of ternNames) {
    const node = services[name] as Service;
    t.equal(node.build, '.', `${name} is built from the Dockerfile`);
    t.equal(flag(node.command, '--redis'), 'redis://redis:6379', `${name} uses the redis service`);
    t.equal(flag(node.command, '--node-name'), name, `${name} is named after its service`);
  }
});

t.test('Redis keeps an append-only file', async (t) => {
  const redis = services.redis as Service;
  t.ok(redis, 'a redis service');
  t.equal(flag(redis.command, '--appendonly'), 'yes');
});

t.test('HAProxy balances MQTT over exactly the Tern nodes in TCP mode, with health checks', async (t) => {
  const haproxy = services.haproxy as Service;
  t.ok(haproxy.ports?.includes('1883:1883'), 'MQTT on 1883 goes to HAProxy');
  t.ok(
    haproxy.volumes?.some((v) => v.startsWith('./deploy/haproxy.cfg:')),
    'mounts deploy/haproxy.cfg',
  );
  const cfg = read('deploy/haproxy.cfg');
  const directives = cfg.split('\n').map((line) => line.replace(/#.*/, '').trim());
  t.ok(directives.includes('mode tcp'), 'mode tcp');
  t.ok(directives.includes('bind *:1883'), 'listens on 1883');
  t.ok(directives.includes('option httpchk GET /ready'), 'checks each node by its /ready');
  t.match(cfg, /default-server check port 9464/, 'checks on the metrics port');
  const servers = directives.filter((d) => d.startsWith('server ')).map((d) => d.split(/\s+/)[2]);
  t.same(
    servers,
    ternNames.map((name) => `${name}:1883`),
  );
});

t.test('Prometheus scrapes every Tern node', async (t) => {
  const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  const job = prometheus.scrape_configs.find((c) => c.job_name === 'tern');
  const targets = job?.static_configs.flatMap((c) => c.targets) ?? [];
  t.same(
    targets.sort(),
    ternNames.map((name) => `${name}:9464`),
  );
});

t.test('the Dockerfile builds in one stage and runs the CLI as a non-root user in another', async (t) => {
  const dockerfile = read('Dockerfile');
  t.equal(dockerfile.match(/^FROM /gm)?.length, 2, 'two stages');
  t.match(dockerfile, /RUN npm ci .*\n(.*\n)*RUN npm run build/, 'npm ci, then npm run build');
  t.match(dockerfile, /^USER node$/m, "runs as the image's unprivileged node user");
  t.match(dockerfile, /^EXPOSE 1883 9464$/m);
  t.match(dockerfile, /^HEALTHCHECK [^\n]*(\\\n[^\n]*)*\/health/m, 'a health check against /health');
  t.match(dockerfile, /^ENTRYPOINT \["node", "packages\/broker\/dist\/cli\.js"\]$/m);
});

t.test('docker-compose accepts the file', { skip: unless('docker-compose') }, async (t) => {
  const { stdout, stderr } = await run('docker-compose', ['config', '-q'], { cwd: ROOT });
  t.equal(`${stdout}${stderr}`.trim(), '', 'no complaint');
});

t.test('haproxy accepts deploy/haproxy.cfg', { skip: unless('haproxy') }, async (t) => {
  // The node names resolve only inside Compose's network: HAProxy warns and goes on (init-addr none).
  const { stderr } = await run('haproxy', ['-c', '-f', 'deploy/haproxy.cfg'], { cwd: ROOT });
  t.notMatch(stderr, /ALERT/);
});
