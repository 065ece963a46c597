/**
 * The node's lifecycle driven by signals, through the real `tern` command: graceful shutdown
 * that loses no queued message (persistence file), its bounds, config reload on SIGHUP and
 * the SIGUSR2 debug toggle.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { type Running, startCli, tern } from './support/cli.js';
import { Inbox } from './support/mqttjs.js';

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-lifecycle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function killed(t: { teardown: (fn: () => void) => void }, running: Running): Running {
  t.teardown(() => running.child.kill('SIGKILL'));
  return running;
}

const connect = (port: number, clientId: string, clean: boolean) =>
  mqtt.connectAsync({ port, host: '127.0.0.1', clientId, clean, protocolVersion: 4, reconnectPeriod: 0 });

/**
 * Reconnects a persistent session with an Inbox listening before CONNACK: queued messages
 * follow the CONNACK at once, before a connectAsync caller could attach a listener.
 */
async function resume(port: number, clientId: string) {
  const client = mqtt.connect({
    port,
    host: '127.0.0.1',
    clientId,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  const inbox = new Inbox(client);
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => client.once('connect', resolve));
  return { client, inbox, connack };
}

/**
 * A subscriber that never reads: once the broker says it is too slow (its socket buffer is
 * over the limit), closing it gracefully cannot finish. Only if the broker's limit is more
 * than the kernel can take for it: a socket that is not read keeps a small receive buffer, but
 * the sender's send buffer grows to tcp_wmem's maximum (4 MiB here), and with the default limit
 * (1 MiB) the backlog could all move into the kernel, end, and let the shutdown finish.
 */
const STUCK_SOCKET_BUFFER = String(16 * 1024 * 1024);

async function stuckSubscriber(cli: Running): Promise<RawClient> {
  const { client } = await RawClient.connected(cli.port, { clientId: 'stuck' });
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood', qos: 0 }] });
  await client.expect('suback');
  client.socket.pause();
  const publisher = await connect(cli.port, 'flooder', true);
  const payload = Buffer.alloc(256 * 1024, 0x61);
  const tooSlow = cli.waitForLog((l) => l.msg.startsWith('subscriber too slow'));
  let slow = false;
  void tooSlow.then(() => {
    slow = true;
  });
  while (!slow) await publisher.publishAsync('flood', payload, { qos: 1 });
  await publisher.endAsync();
  return client;
}

t.test('SIGTERM with persistent clients loses no queued message; a restart resumes them', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'tern.snapshot');
  const first = killed(t, await startCli(['--persistence-file', file]));

  // An offline persistent subscriber with a queue waiting for it.
  const away = await connect(first.port, 'away', false);
  await away.subscribeAsync('jobs/#', { qos: 1 });
  await away.endAsync();
  // An online persistent subscriber that never acknowledges: its messages stay in flight.
  const { client: holder } = await RawClient.connected(first.port, { clientId: 'holder', clean: false });
  holder.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'jobs/#', qos: 1 }] });
  await holder.expect('suback');

  const publisher = await connect(first.port, 'producer', true);
  const count = 40;
  for (let i = 0; i < count; i++) await publisher.publishAsync(`jobs/${i}`, `job ${i}`, { qos: 1 });
  await publisher.publishAsync('status/producer', 'online', { qos: 1, retain: true });
  await publisher.endAsync();
  const firstDelivery = await holder.expect('publish');
  t.equal(firstDelivery.payload.toString(), 'job 0', 'the holder has job 0 in flight, unacknowledged');

  first.child.kill('SIGTERM');
  t.same(await first.exited, { code: 0, signal: null }, 'graceful shutdown exits 0');
  await holder.waitClosed();
  t.ok(first.logs.some((l) => l.msg === 'shutdown complete'));

  const second = killed(t, await startCli(['--persistence-file', file]));
  const loaded = await second.waitForLog((l) => l.msg === 'loaded saved sessions and retained messages');
  t.equal(loaded.sessions, 2, 'both persistent sessions came back');
  t.equal(loaded.retained, 1);

  const { client: back, inbox, connack: backConnack } = await resume(second.port, 'away');
  t.teardown(() => back.endAsync());
  t.equal(backConnack.sessionPresent, true, 'session present after the restart [MQTT-3.2.2-2]');
  const payloads: string[] = [];
  for (let i = 0; i < count; i++) payloads.push((await inbox.next()).payload);
  t.same(
    payloads,
    Array.from({ length: count }, (_, i) => `job ${i}`),
    'every message queued before the shutdown, in order',
  );

  const { client: holderAgain, connack } = await RawClient.connected(second.port, {
    clientId: 'holder',
    clean: false,
  });
  t.teardown(() => holderAgain.destroy());
  t.equal(connack.sessionPresent, true);
  const resent = await holderAgain.expect('publish');
  t.equal(resent.payload.toString(), 'job 0', 'the unacknowledged message comes first');
  t.equal(resent.dup, true, 'resent with DUP=1 [MQTT-4.4.0-1]');

  const watcher = await connect(second.port, 'watcher', true);
  t.teardown(() => watcher.endAsync());
  const watched = new Inbox(watcher);
  await watcher.subscribeAsync('status/#', { qos: 1 });
  const status = await watched.next();
  t.same([status.topic, status.payload, status.retain], ['status/producer', 'online', true], 'retained survived');
});

t.test('a second SIGTERM exits at once when the graceful shutdown cannot finish', async (t) => {
  const cli = killed(
    t,
    await startCli([
      ...['--shutdown-timeout-ms', '600000', '--metrics', '--metrics-port', '0'],
      ...['--max-socket-buffer', STUCK_SOCKET_BUFFER],
    ]),
  );
  const http = await cli.waitForLog((l) => l.msg.startsWith('listening for HTTP'));
  const base = `http://127.0.0.1:${http.port as number}`;
  t.equal((await fetch(`${base}/ready`)).status, 200, 'ready while running');
  const stuck = await stuckSubscriber(cli);
  t.teardown(() => stuck.destroy());
  cli.child.kill('SIGTERM');
  await cli.waitForLog((l) => l.msg === 'shutting down');
  const during = await fetch(`${base}/ready`);
  t.equal(during.status, 503, 'not ready while shutting down');
  t.match(await during.text(), /shutting down/);
  t.equal((await fetch(`${base}/health`)).status, 200, 'still alive');
  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 1, signal: null });
  t.ok(cli.logs.some((l) => l.msg.startsWith('second signal: exiting now')));
});

t.test('a connection that cannot take its last bytes is cut after the grace time; exit 0', async (t) => {
  const cli = killed(t, await startCli(['--shutdown-timeout-ms', '400', '--max-socket-buffer', STUCK_SOCKET_BUFFER]));
  const stuck = await stuckSubscriber(cli);
  t.teardown(() => stuck.destroy());
  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 0, signal: null });
  t.ok(cli.logs.some((l) => l.msg.startsWith('shutdown: cutting connections')));
  t.ok(cli.logs.some((l) => l.msg === 'shutdown complete'));
});

t.test('SIGHUP reloads the config file: live settings change, others wait for a restart', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'tern.json');
  writeFileSync(file, JSON.stringify({ maxQueued: 1000, logLevel: 'info' }));
  const cli = killed(t, await startCli(['--config', file]));

  writeFileSync(file, JSON.stringify({ maxQueued: 2, logLevel: 'debug', metricsHost: '127.0.0.2' }));
  cli.child.kill('SIGHUP');
  const reloaded = await cli.waitForLog((l) => l.msg.startsWith('config reloaded'));
  t.same(reloaded.changes, { maxQueued: { from: 1000, to: 2 }, logLevel: { from: 'info', to: 'debug' } });
  t.same(reloaded.restartNeeded, ['metricsHost']);

  // The new queue limit holds for an existing offline session: 2 of 5 are kept.
  const away = await connect(cli.port, 'reload-away', false);
  await away.subscribeAsync('r/#', { qos: 1 });
  await away.endAsync();
  const publisher = await connect(cli.port, 'reload-pub', true);
  for (let i = 0; i < 5; i++) await publisher.publishAsync(`r/${i}`, String(i), { qos: 1 });
  await publisher.endAsync();
  const { client: back, inbox } = await resume(cli.port, 'reload-away');
  t.teardown(() => back.endAsync());
  const got = [await inbox.next(), await inbox.next()];
  t.same(
    got.map((m) => m.payload),
    ['3', '4'],
    'drop-oldest kept the newest two',
  );

  writeFileSync(file, '{ "maxQueued": -5 }');
  cli.child.kill('SIGHUP');
  const refused = await cli.waitForLog((l) => l.msg.startsWith('config reload refused'));
  t.match(refused.msg, /maxQueued = -5 is not valid/);
  const still = await connect(cli.port, 'still-alive', true);
  t.equal(still.connected, true, 'a bad reload leaves the broker running');
  await still.endAsync();
});

t.test('SIGUSR2 toggles the debug log level', async (t) => {
  const cli = killed(t, await startCli());
  cli.child.kill('SIGUSR2');
  const on = await cli.waitForLog((l) => l.msg === 'log level changed' && l.to === 'debug');
  t.equal(on.from, 'info');
  cli.child.kill('SIGUSR2');
  const off = await cli.waitForLog((l) => l.msg === 'log level changed' && l.to === 'info');
  t.equal(off.from, 'debug');
});

t.test('an unreadable persistence file stops start-up with one line naming it', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'broken.snapshot');
  writeFileSync(file, 'not a snapshot');
  const r = await tern(['--port', '0', '--no-metrics', '--persistence-file', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^tern: cannot load ${file}: .+\\n$`));
  t.equal(r.stderr.split('\n').length, 2, 'one line');
});
