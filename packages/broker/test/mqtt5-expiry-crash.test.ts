/**
 * MQTT 5 session expiry when the node serving a session dies with its connection open (SIGKILL,
 * the real CLI): the store knows which node served each session online, so a --data-dir node's
 * next start, or the survivor that reaps a dead node of a Redis cluster, starts its expiry. A
 * session expires on time instead of never, one with expiry 0 ends with its connection, and a
 * longer one (clean start included) is still there to resume.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, startRedis, type TestRedis } from '@tern/testkit';
import t, { type Test } from 'tap';
import { type Running, startCli } from './support/cli.js';
import { CLUSTER_TIMING_FLAGS } from './support/cluster.js';

let redis: TestRedis;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.destroy());

function dataDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-expiry-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function cli(t: Test, args: readonly string[]): Promise<Running> {
  const running = await startCli(args);
  t.teardown(() => {
    if (running.child.exitCode === null) running.child.kill('SIGKILL');
  });
  return running;
}

/** A --data-dir node of two workers (a client id may land on either). */
const localNode = (t: Test, dir: string, extra: readonly string[] = []) =>
  cli(t, ['--workers', '2', '--data-dir', dir, ...extra]);

/** A node of a cluster through the test's Redis, with timings that reap a dead node in seconds. */
const clusterNode = (t: Test, prefix: string, extra: readonly string[] = []) =>
  cli(t, ['--workers', '1', '--redis', redis.url, '--redis-prefix', prefix, ...CLUSTER_TIMING_FLAGS, ...extra]);

async function v5(t: Test, port: number, clientId: string, expiry: number, clean = false) {
  const { client, connack } = await RawClient.connected(port, {
    protocolVersion: 5,
    clientId,
    clean,
    properties: { sessionExpiryInterval: expiry },
  });
  t.teardown(() => client.destroy());
  if (connack.returnCode !== 0) throw new Error(`${clientId}: CONNACK 0x${connack.returnCode.toString(16)}`);
  return { c: client, present: connack.sessionPresent };
}

/** Connected and subscribed with `expiry`, and left connected. */
async function online(t: Test, port: number, clientId: string, expiry: number, clean = false): Promise<void> {
  const { c } = await v5(t, port, clientId, expiry, clean);
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `crash/${clientId}`, qos: 1 }] });
  await c.expect('suback');
}

/**
 * A session stored with a long expiry (subscribed, then disconnected), taken up again with
 * expiry 0 and left connected: it must end with this connection, however that ends.
 */
async function resumedWithExpiryZero(t: Test, port: number, clientId: string): Promise<void> {
  await online(t, port, clientId, 3600);
  const before = await v5(t, port, clientId, 3600);
  t.equal(before.present, true, `${clientId} was stored`);
  await before.c.disconnect();
  const { present } = await v5(t, port, clientId, 0);
  t.equal(present, true, `${clientId} resumed with expiry 0`);
}

const isExpired = (clientId: string) => (l: { msg: string; clientId?: unknown }) =>
  l.msg === 'stored session expired' && l.clientId === clientId;
/** The worker holding an offline session ended it (its own sweep). */
const endedHere = (clientId: string) => (l: { msg: string; clientId?: unknown }) =>
  l.msg === 'session expired' && l.clientId === clientId;

t.test('--data-dir: sessions online when the node was killed expire on time after the restart', async (t) => {
  const dir = dataDir(t);
  const first = await localNode(t, dir);
  await online(t, first.port, 'brief', 1);
  await online(t, first.port, 'lasting', 3600);
  await online(t, first.port, 'clean-lasting', 3600, true);
  first.child.kill('SIGKILL');
  await first.exited;

  const second = await localNode(t, dir, ['--log-level', 'debug']);
  // The store's sweep ends it once its interval has run out (counted from the crash).
  await second.waitForLog(isExpired('brief'));
  t.equal((await v5(t, second.port, 'brief', 1)).present, false, 'the short one expired');
  t.equal((await v5(t, second.port, 'lasting', 3600)).present, true, 'the long one is there');
  t.equal((await v5(t, second.port, 'clean-lasting', 3600)).present, true, 'so is one begun with a clean start');
});

t.test('--data-dir: a session with expiry 0 ends with its connection when the node is killed', async (t) => {
  const dir = dataDir(t);
  const first = await localNode(t, dir);
  await resumedWithExpiryZero(t, first.port, 'zero');
  first.child.kill('SIGKILL');
  await first.exited;

  const second = await localNode(t, dir);
  t.equal((await v5(t, second.port, 'zero', 3600)).present, false, 'session present 0 after the restart');
});

t.test('Redis cluster: the node that reaps a killed node ends its sessions on time', async (t) => {
  const a = await clusterNode(t, 'crash5');
  const b = await clusterNode(t, 'crash5', ['--log-level', 'debug']);
  await online(t, a.port, 'brief', 1);
  await online(t, a.port, 'lasting', 3600);
  await online(t, a.port, 'clean-lasting', 3600, true);
  await resumedWithExpiryZero(t, a.port, 'zero');
  a.child.kill('SIGKILL');
  await a.exited;

  await b.waitForLog((l) => l.msg === 'reaped a node that stopped answering');
  await b.waitForLog(isExpired('brief'));
  await b.waitForLog(isExpired('zero'));
  t.equal((await v5(t, b.port, 'brief', 1)).present, false, 'the short one expired');
  t.equal((await v5(t, b.port, 'zero', 3600)).present, false, 'the one with expiry 0 ended with its node');
  t.equal((await v5(t, b.port, 'lasting', 3600)).present, true, 'the long one resumes on the survivor');
  t.equal((await v5(t, b.port, 'clean-lasting', 3600)).present, true, 'so does one begun with a clean start');
});

t.test('Redis cluster: expiry 0 on a killed node that is not reaped yet ends all the same', async (t) => {
  const a = await clusterNode(t, 'crash5-early');
  const b = await clusterNode(t, 'crash5-early');
  await resumedWithExpiryZero(t, a.port, 'zero');
  a.child.kill('SIGKILL');
  await a.exited;
  // At once: the claim asks the dead node to let go, gives up on it, and finds the session
  // held by a node that never let go of it.
  t.equal((await v5(t, b.port, 'zero', 3600)).present, false, 'session present 0');
});

t.test(
  'a session taken over on the same node is not expired in the store while its new connection is open',
  async (t) => {
    const dir = dataDir(t);
    const n = await localNode(t, dir, ['--log-level', 'debug']);
    await online(t, n.port, 'taken', 1);
    // The new connection's claim opens the session in the store; then the old one closes.
    await v5(t, n.port, 'taken', 1);
    // Ends after the takeover and expires a second later: by the time the store's sweep ends
    // it, any deadline set when the old connection closed has passed too.
    const { c } = await v5(t, n.port, 'marker', 1);
    await c.disconnect();
    // Whichever ends it first: the worker that held it, or the store's sweep.
    await n.waitForLog((l) => isExpired('marker')(l) || endedHere('marker')(l));
    t.notOk(
      n.logs.some((l) => isExpired('taken')(l) || endedHere('taken')(l)),
      'the session still served is not ended',
    );
  },
);
