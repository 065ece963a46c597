/**
 * The auth plug-in (authPlugin): a module written by the test to a temporary directory, asked
 * after the password file and the ACL. Allow, deny, a call that throws, a call that hangs past
 * authPluginTimeoutMs, async publish checks that keep a client's order, subscription grants,
 * and a bad module stopping the CLI with one line.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatsSnapshot } from '@tern/broker';
import type { Packet } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { attempt, pw, tempDir } from './support/access.js';
import { tern } from './support/cli.js';
import { packetId, receiveUntil, subscribe, text } from './support/flows.js';

const PLUGIN = `
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function authenticate({ clientId, username, password, remoteAddress }) {
  if (clientId === 'hangs') return new Promise(() => {});
  if (clientId === 'throws') throw new Error('database down');
  if (typeof remoteAddress !== 'string') return false;
  if (username === 'alice' && password?.toString() === 'secret') return true;
  if (username === undefined) return { allow: true };
  return { allow: false, reason: 'unknown device' };
}

export async function authorizePublish({ topic, username }) {
  if (topic.startsWith('deny/')) return false;
  if (topic.startsWith('hang/')) return new Promise(() => {});
  if (topic.startsWith('throw/')) throw new Error('policy service down');
  if (topic.startsWith('alice/')) return username === 'alice';
  // Later checks answer sooner: an implementation that did not hold the packets behind a
  // pending check would route them out of order.
  const n = Number(topic.split('/')[1] ?? 0);
  await wait((10 - (n % 10)) * 3);
  return true;
}

export function authorizeSubscribe({ filter, qos }) {
  if (filter.startsWith('deny/')) return false;
  if (filter.startsWith('qos0/')) return 0;
  if (filter.startsWith('throw/')) throw new Error('no');
  if (filter.startsWith('hang/')) return new Promise(() => {});
  return true;
}
`;

const denied = (s: StatsSnapshot, action: string): number => s.counters.authPluginDenied[action] ?? 0;
const failures = (s: StatsSnapshot, action: string): number => s.counters.authPluginFailures[action] ?? 0;

t.test('a plug-in with all three functions', async (t) => {
  const dir = tempDir(t);
  const authPlugin = join(dir, 'plugin.mjs');
  writeFileSync(authPlugin, PLUGIN);
  const tb = await startBroker({ authPlugin, authPluginTimeoutMs: 300 });
  t.teardown(tb.stop);
  const { port, logs } = tb;

  await t.test('authenticate: allow, deny with a reason, throws, hangs past the timeout', async (t) => {
    const alice = await attempt(port, { clientId: 'alice-1', username: 'alice', password: pw('secret') });
    t.equal(alice.returnCode, 0, 'allowed');
    alice.client.destroy();
    const anon = await attempt(port, { clientId: 'anon-1' });
    t.equal(anon.returnCode, 0, '{ allow: true }');
    anon.client.destroy();

    const cases = [
      { clientId: 'bob-1', username: 'bob', why: 'the auth plug-in refused (unknown device)' },
      { clientId: 'throws', username: 'carol', why: 'the auth plug-in failed (threw: database down)' },
      { clientId: 'hangs', username: 'dave', why: 'the auth plug-in failed (timed out after 300 ms)' },
    ];
    for (const c of cases) {
      const r = await attempt(port, { clientId: c.clientId, username: c.username, password: pw('x') });
      t.equal(r.returnCode, 0x05, `${c.clientId}: CONNACK 0x05`);
      await r.client.waitClosed();
      const lines = logs.lines.filter((l) => l.clientId === c.clientId && l.msg.startsWith('connection refused'));
      t.equal(lines.length, 1, `${c.clientId}: one line`);
      t.equal(lines[0]?.msg, `connection refused: ${c.why}`);
    }
    const s = await tb.stats();
    t.equal(denied(s, 'connect'), 3);
    t.equal(failures(s, 'connect'), 2, 'the throw and the timeout');
    t.equal(s.counters.connectionsRejected['not-authorized'], 3);
  });

  await t.test('authorizePublish: async answers keep the order; a refusal is acked and dropped', async (t) => {
    const { client: sub } = await RawClient.connected(port, { clientId: 'order-sub' });
    t.teardown(() => sub.destroy());
    t.same(await subscribe(sub, { '#': 1 }), [1]);
    const { client: pub } = await RawClient.connected(port, { clientId: 'order-pub' });
    t.teardown(() => pub.destroy());

    // Everything in one write: QoS 0 and QoS 1, refused ones in between, a PINGREQ behind.
    const ids: number[] = [];
    const packets: Packet[] = [];
    for (let i = 0; i < 20; i++) {
      const qos = i % 2 === 0 ? 0 : 1;
      const messageId = qos === 1 ? packetId() : undefined;
      if (messageId !== undefined) ids.push(messageId);
      packets.push({
        cmd: 'publish',
        topic: `seq/${i}`,
        payload: Buffer.from(String(i)),
        qos,
        retain: false,
        dup: false,
        messageId,
      });
      if (i % 5 === 0) {
        const deniedId = packetId();
        ids.push(deniedId);
        packets.push({
          cmd: 'publish',
          topic: `deny/${i}`,
          payload: Buffer.from('no'),
          qos: 1,
          retain: false,
          dup: false,
          messageId: deniedId,
        });
      }
    }
    packets.push({ cmd: 'publish', topic: 'seq/end', payload: Buffer.from('end'), qos: 0, retain: false, dup: false });
    packets.push({ cmd: 'pingreq' });
    for (const p of packets) pub.send(p);

    const acks: number[] = [];
    for (let p = await pub.next(); p.cmd !== 'pingresp'; p = await pub.next()) {
      if (p.cmd === 'puback') acks.push(p.messageId);
    }
    t.same(acks, ids, 'every QoS 1 PUBLISH acknowledged, refused ones too, in order, before the PINGRESP');
    const got = await receiveUntil(sub, 'seq/end');
    t.same(
      got.map(text),
      [...Array.from({ length: 20 }, (_, i) => String(i)), 'end'],
      'delivered in the order sent, nothing refused',
    );
    const s = await tb.stats();
    t.equal(denied(s, 'publish'), 4);
    t.equal(failures(s, 'publish'), 0);
  });

  await t.test('authorizePublish that throws or hangs: refused, one warn line, later packets go on', async (t) => {
    const { client: sub } = await RawClient.connected(port, { clientId: 'fail-sub' });
    t.teardown(() => sub.destroy());
    t.same(await subscribe(sub, { '#': 1 }), [1]);
    const { client: pub } = await RawClient.connected(port, { clientId: 'fail-pub' });
    t.teardown(() => pub.destroy());
    const before = await tb.stats();
    const a = packetId();
    const b = packetId();
    const c = packetId();
    pub.send({
      cmd: 'publish',
      topic: 'hang/1',
      payload: Buffer.from('h'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: a,
    });
    pub.send({
      cmd: 'publish',
      topic: 'throw/1',
      payload: Buffer.from('t'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: b,
    });
    pub.send({
      cmd: 'publish',
      topic: 'after/1',
      payload: Buffer.from('ok'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: c,
    });
    const acks = [await pub.expect('puback'), await pub.expect('puback'), await pub.expect('puback')];
    t.same(
      acks.map((p) => p.messageId),
      [a, b, c],
      'acknowledged in order',
    );
    const got = await receiveUntil(sub, 'after/1');
    t.same(got.map(text), ['ok'], 'only the allowed one delivered');
    const after = await tb.stats();
    t.equal(failures(after, 'publish') - failures(before, 'publish'), 2);
    const lines = logs.lines.filter((l) => l.clientId === 'fail-pub' && l.level === 40);
    t.equal(lines.length, 1, 'one warn line for the connection');
    t.match(lines[0], { msg: 'auth plug-in failed: publish refused', why: 'timed out after 300 ms', topic: 'hang/1' });
  });

  await t.test(
    'authorizeSubscribe: true, false, a lower QoS, a throw; later packets wait for the answer',
    async (t) => {
      const { client } = await RawClient.connected(port, { clientId: 'sub-checks' });
      t.teardown(() => client.destroy());
      const before = await tb.stats();
      const messageId = packetId();
      client.send({
        cmd: 'subscribe',
        messageId,
        subscriptions: [
          { topic: 'ok/#', qos: 1 },
          { topic: 'deny/#', qos: 1 },
          { topic: 'qos0/#', qos: 2 },
          { topic: 'throw/#', qos: 1 },
          { topic: 'hang/#', qos: 0 },
        ],
      });
      // Sent before the plug-in answers: handled after the subscription, so it comes back.
      client.send({ cmd: 'publish', topic: 'ok/1', payload: Buffer.from('mine'), qos: 0, retain: false, dup: false });
      const first = await client.next();
      const second = await client.next();
      const suback = [first, second].find((p) => p.cmd === 'suback');
      const echo = [first, second].find((p) => p.cmd === 'publish');
      t.same(suback?.cmd === 'suback' ? suback.granted : null, [1, 0x80, 0, 0x80, 0x80]);
      t.equal(echo?.cmd === 'publish' ? echo.topic : null, 'ok/1', 'the PUBLISH behind it was held, then routed');
      const s = await tb.stats();
      t.equal(denied(s, 'subscribe') - denied(before, 'subscribe'), 3);
      t.equal(failures(s, 'subscribe') - failures(before, 'subscribe'), 2);
    },
  );

  await t.test('the user name the plug-in accepted is the one it is asked about later', async (t) => {
    const { client: sub } = await RawClient.connected(port, { clientId: 'alice-sub' });
    t.teardown(() => sub.destroy());
    await subscribe(sub, { 'alice/#': 0, 'marker/#': 0 });
    const alice = await RawClient.connected(port, { clientId: 'alice-2', username: 'alice', password: pw('secret') });
    t.teardown(() => alice.client.destroy());
    const anon = await RawClient.connected(port, { clientId: 'anon-2' });
    t.teardown(() => anon.client.destroy());
    anon.client.send({
      cmd: 'publish',
      topic: 'alice/x',
      payload: Buffer.from('anon'),
      qos: 0,
      retain: false,
      dup: false,
    });
    anon.client.send({ cmd: 'pingreq' });
    await anon.client.expect('pingresp');
    alice.client.send({
      cmd: 'publish',
      topic: 'alice/x',
      payload: Buffer.from('alice'),
      qos: 0,
      retain: false,
      dup: false,
    });
    alice.client.send({
      cmd: 'publish',
      topic: 'marker/x',
      payload: Buffer.from('m'),
      qos: 0,
      retain: false,
      dup: false,
    });
    const got = await receiveUntil(sub, 'marker/x');
    t.same(got.map(text), ['alice', 'm']);
  });
});

t.test('only some functions: the rest is not asked', async (t) => {
  const dir = tempDir(t);
  const authPlugin = join(dir, 'subscribe-only.mjs');
  writeFileSync(authPlugin, `export const authorizeSubscribe = ({ filter }) => !filter.startsWith('no/');\n`);
  const tb = await startBroker({ authPlugin });
  t.teardown(tb.stop);
  const { client } = await RawClient.connected(tb.port, { clientId: 'partial', username: 'any', password: pw('x') });
  t.teardown(() => client.destroy());
  t.same(await subscribe(client, { 'yes/#': 1, 'no/#': 1 }), [1, 0x80]);
  client.send({ cmd: 'publish', topic: 'yes/1', payload: Buffer.from('y'), qos: 0, retain: false, dup: false });
  const p = await client.expect('publish');
  t.equal(p.topic, 'yes/1', 'publishing needs no answer from the plug-in');
});

t.test('a bad plug-in stops the CLI with one line naming the key', async (t) => {
  const dir = tempDir(t);
  const none = join(dir, 'none.mjs');
  writeFileSync(none, 'export const something = 1;\n');
  const notFunction = join(dir, 'not-function.mjs');
  writeFileSync(notFunction, 'export const authenticate = true;\n');
  const cases = [
    {
      path: join(dir, 'missing.mjs'),
      want: /^tern: authPlugin .*missing\.mjs: cannot load it \(ERR_MODULE_NOT_FOUND\)\n$/,
    },
    {
      path: none,
      want: /^tern: authPlugin .*none\.mjs: exports none of authenticate, authorizePublish, authorizeSubscribe, authenticateEnhanced\n$/,
    },
    { path: notFunction, want: /^tern: authPlugin .*not-function\.mjs: authenticate is not a function\n$/ },
  ];
  for (const c of cases) {
    const r = await tern([
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--no-metrics',
      '--workers',
      '1',
      '--auth-plugin',
      c.path,
    ]);
    t.equal(r.code, 1, `${c.path}: exit 1`);
    t.match(r.stderr, c.want);
  }
});
