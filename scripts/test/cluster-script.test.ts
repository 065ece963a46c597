/**
 * scripts/cluster.sh end to end: `up` starts redis-server, three Tern nodes joined through it
 * and HAProxy in front of them, all on free loopback ports; a subscriber connected through
 * HAProxy (MQTT.js) gets the messages published to each node directly (mosquitto_pub); `down`
 * stops every process `up` started.
 * Needs the build, redis-server, haproxy and mosquitto-clients (.ci/run installs them).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = path.join(ROOT, 'scripts', 'cluster.sh');
const CLI = path.join(ROOT, 'packages', 'broker', 'dist', 'cli.js');

/** The environment of a user's shell: without the test runner's loaders and TERN_* settings. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TERN_') && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
}

function cluster(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { env: userEnv(), timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(path.join(dir, command)));
}

/** `count` distinct free loopback ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    ports.add(
      await new Promise<number>((resolve, reject) => {
        const server = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as net.AddressInfo;
          server.close(() => resolve(port));
        });
        server.on('error', reject);
      }),
    );
  }
  return [...ports];
}

/** Running: neither gone nor a zombie waiting for whoever adopted it to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const missing = ['redis-server', 'haproxy', 'mosquitto_pub'].filter((c) => !onPath(c));
if (!existsSync(CLI)) missing.push(`${CLI} (npm run build)`);

const skip = missing.length > 0 && `missing: ${missing.join(', ')}`;

t.test(
  'cluster.sh up, a message across nodes through HAProxy, cluster.sh down',
  { skip, timeout: 100_000 },
  async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tern-cluster-sh-'));
    const [lb, redis, n1, n2, n3, m1, m2, m3] = (await freePorts(8)) as number[];
    const nodes = [n1, n2, n3] as number[];
    const where = ['--dir', dir];
    t.teardown(() => {
      // Whatever happened above (a timeout included: hence synchronous), nothing the script
      // started outlives the test.
      spawnSync('bash', [SCRIPT, 'down', ...where], { env: userEnv(), stdio: 'ignore', timeout: 60_000 });
      rmSync(dir, { recursive: true, force: true });
    });

    const up = await cluster([
      'up',
      ...where,
      ...['--lb-port', String(lb), '--redis-port', String(redis)],
      ...['--node-ports', nodes.join(','), '--metrics-ports', [m1, m2, m3].join(',')],
    ]);
    t.equal(up.code, 0, 'up succeeds');
    t.match(up.out, /cluster: up/);
    t.equal(up.out.match(/^tern\d\s+running .*, ready$/gm)?.length, 3, 'three nodes, each ready');

    const again = await cluster(['up', ...where, '--lb-port', String(lb)]);
    t.equal(again.code, 1, 'a second up refuses while the first runs');
    t.match(again.out, /already running/);

    const pids = readdirSync(dir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(path.join(dir, f), 'utf8').split(' ')[0]));
    t.equal(pids.length, 5, 'redis, three nodes and haproxy');

    // The subscriber goes through HAProxy to whichever node it picks; the publisher goes to each
    // node directly, so on at least two of them the message crosses between nodes.
    const topic = `cluster-sh/${process.pid}`;
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${lb}`, { reconnectPeriod: 0 });
    t.teardown(() => sub.end(true));
    const received = new Set<string>();
    const done = new Promise<void>((resolve) => {
      sub.on('message', (_topic, payload) => {
        received.add(payload.toString());
        if (received.size === nodes.length) resolve();
      });
    });
    await sub.subscribeAsync(topic, { qos: 1 });
    // A SUBACK means the route is in Redis; another node learns it a moment later through
    // pub/sub. Until every node has, a QoS 1 publish there reaches no subscriber: publish again
    // to each node whose message has not arrived yet, until all three have.
    let stop = false;
    const publishing = (async () => {
      while (!stop) {
        for (const [i, port] of nodes.entries()) {
          const payload = `from-node-${i + 1}`;
          if (stop || received.has(payload)) continue;
          await new Promise<void>((resolve) => {
            const args = ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-q', '1', '-m', payload];
            execFile('mosquitto_pub', args, () => resolve());
          });
        }
      }
    })();
    await done;
    stop = true;
    await publishing;
    t.same([...received].sort(), ['from-node-1', 'from-node-2', 'from-node-3'], 'a message from every node');
    await sub.endAsync();

    const down = await cluster(['down', ...where]);
    t.equal(down.code, 0, 'down succeeds');
    t.same(pids.filter(running), [], 'no process that up started is left');
    const status = await cluster(['status', ...where]);
    t.match(status.out, /nothing running/);
  },
);
