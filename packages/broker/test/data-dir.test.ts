/**
 * A node on its own with --data-dir keeps persistent sessions, their queued and in-flight
 * messages and the retained messages on disk as they change: after a restart, graceful or
 * SIGKILL, a client resumes with session present and gets everything it was owed, in order,
 * and new subscribers get the retained messages. The real CLI, killed for real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@tern/testkit';
import t, { type Test } from 'tap';
import { type Running, startCli, tern } from './support/cli.js';
import { numbered, publishQos1, rawClient, receivePublishes, texts } from './support/cluster.js';

function dataDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function node(t: Test, dir: string, extra: readonly string[] = []): Promise<Running> {
  const running = await startCli(['--workers', '2', '--data-dir', dir, ...extra]);
  t.teardown(() => {
    if (running.child.exitCode === null) running.child.kill('SIGKILL');
  });
  return running;
}

const connect = rawClient;
const receive = receivePublishes;

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`after ${signal} the sessions, queues and retained messages are all there`, async (t) => {
    const dir = dataDir(t);
    const first = await node(t, dir);
    const device = await connect(t, first.port, 'device', false);
    device.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'cmd/#', qos: 1 }] });
    await device.c.expect('suback');
    const pub = await connect(t, first.port, 'controller', true);
    await publishQos1(pub.c, 'state/lamp', ['on'], true);
    // In flight to the device and never acknowledged...
    await publishQos1(pub.c, 'cmd/lamp', numbered(5, 'sent'));
    t.same(texts(await receive(device.c, 5, false)), numbered(5, 'sent'));
    // ...and queued while it is away.
    device.c.destroy();
    await first.waitForLog((l) => l.msg.startsWith('connection closed') && l.clientId === 'device');
    await publishQos1(pub.c, 'cmd/lamp', numbered(5, 'queued'));

    first.child.kill(signal);
    await first.exited;

    const second = await node(t, dir);
    const back = await connect(t, second.port, 'device', false);
    t.equal(back.connack.sessionPresent, true, 'session present after the restart');
    const owed = await receive(back.c, 10, true);
    t.same(texts(owed), [...numbered(5, 'sent'), ...numbered(5, 'queued')], 'every message it was owed, in order');
    // Their packet ids were stored when the device's connection ended (before the node
    // stopped, however it stopped): they come again under them, with DUP=1 [MQTT-4.4.0-1].
    t.ok(
      owed.slice(0, 5).every((p) => p.dup),
      'the ones in flight come again with DUP=1 [MQTT-4.4.0-1]',
    );
    const again = await connect(t, second.port, 'controller', true);
    await publishQos1(again.c, 'cmd/lamp', ['fresh']);
    t.same(texts(await receive(back.c, 1, true)), ['fresh'], 'its subscription is live again');

    const reader = await connect(t, second.port, 'reader', true);
    reader.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'state/#', qos: 0 }] });
    await reader.c.expect('suback');
    const retained = await reader.c.expect('publish');
    t.same([retained.topic, retained.payload.toString(), retained.retain], ['state/lamp', 'on', true]);
  });
}

t.test('acknowledged messages are not delivered again after a restart', async (t) => {
  const dir = dataDir(t);
  const first = await node(t, dir);
  const device = await connect(t, first.port, 'acker', false);
  device.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1 }] });
  await device.c.expect('suback');
  const pub = await connect(t, first.port, 'p', true);
  await publishQos1(pub.c, 'a/1', numbered(3, 'done'));
  await receive(device.c, 3, true);
  // A PINGREQ after the PUBACKs: once it is answered the broker has handled them.
  device.c.send({ cmd: 'pingreq' });
  await device.c.expect('pingresp');
  await device.c.disconnect();
  await publishQos1(pub.c, 'a/1', ['owed']);
  first.child.kill('SIGTERM');
  await first.exited;

  const second = await node(t, dir);
  const back = await connect(t, second.port, 'acker', false);
  t.equal(back.connack.sessionPresent, true);
  t.same(texts(await receive(back.c, 1, true)), ['owed'], 'only what was not acknowledged');
});

t.test('a clean start empties the stored session', async (t) => {
  const dir = dataDir(t);
  const first = await node(t, dir);
  const device = await connect(t, first.port, 'cleaner', false);
  device.c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'b/#', qos: 1 }] });
  await device.c.expect('suback');
  await device.c.disconnect();
  const clean = await connect(t, first.port, 'cleaner', true);
  t.equal(clean.connack.sessionPresent, false);
  await clean.c.disconnect();
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await node(t, dir);
  const back = await connect(t, second.port, 'cleaner', false);
  t.equal(back.connack.sessionPresent, false, 'nothing came back');
});

t.test('a data directory that cannot be used, or one combined with redis, stops start-up with one line', async (t) => {
  const dir = dataDir(t);
  writeFileSync(join(dir, 'file'), 'not a directory');
  const bad = await tern(['--port', '0', '--no-metrics', '--data-dir', join(dir, 'file', 'data')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^tern: cannot open the data directory .*file\/data/);
  t.equal(bad.stderr.trim().split('\n').length, 1);
  const both = await tern(['--port', '0', '--no-metrics', '--data-dir', dir, '--redis', 'redis://127.0.0.1:1']);
  t.equal(both.code, 1);
  t.match(both.stderr, /^tern: dataDir and redis cannot be combined/);
});

t.test('an MQTT 5 session expiry interval runs on across a restart', async (t) => {
  const dir = dataDir(t);
  const first = await node(t, dir);
  const open = async (port: number, clientId: string, expiry: number) => {
    const { client, connack } = await RawClient.connected(port, {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: expiry },
    });
    t.teardown(() => client.destroy());
    return { client, connack };
  };
  for (const [clientId, expiry] of [
    ['brief', 1],
    ['lasting', 3600],
  ] as const) {
    const { client } = await open(first.port, clientId, expiry);
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `exp/${clientId}`, qos: 1 }] });
    await client.expect('suback');
    await client.disconnect();
  }
  first.child.kill('SIGKILL');
  await first.exited;

  const second = await node(t, dir, ['--log-level', 'debug']);
  // The store ends the short one once its interval has run out, whoever held it before.
  await second.waitForLog((l) => l.msg === 'stored session expired' && l.clientId === 'brief');
  t.equal((await open(second.port, 'brief', 1)).connack.sessionPresent, false, 'the short one expired');
  t.equal((await open(second.port, 'lasting', 3600)).connack.sessionPresent, true, 'the long one is there');
});
