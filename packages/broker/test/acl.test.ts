/**
 * The topic ACL: per-user sections, the anonymous section, patterns with %u and %c, deny
 * rules winning, SUBACK 0x80 for a refused filter, refused publishes acknowledged and
 * dropped (and counted), deliveries and retained messages checked per topic, wills, and a
 * reload that applies to clients already connected.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAclFile, type StatsSnapshot } from '@tern/broker';
import type { Packet, QoS } from '@tern/protocol';
import { RawClient, startBroker, type TestBroker } from '@tern/testkit';
import t from 'tap';
import { attempt, pw, reloadAccess, tempDir, writePasswordFile } from './support/access.js';
import { publish, receive, receiveUntil, subscribe, text } from './support/flows.js';

const ACL = `# Anonymous clients: the lines before the first user.
topic read public/#
topic write public/anonymous/#

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read shared/#
topic write shared/alice

user bob
topic read alice/inbox/#
topic write alice/inbox/bob
topic read shared/#
topic write shared/bob

user admin
topic #

# Every client: %u is the user name, %c the client id.
pattern readwrite devices/%u/#
pattern deny devices/%u/locked
pattern read clients/%c/in
pattern write clients/%c/out
`;

const USERS = { alice: 'alice-pw', bob: 'bob-pw', admin: 'admin-pw' };
const FAILURE = 0x80;

const denied = (s: StatsSnapshot, action: string): number => s.counters.aclDenied[action] ?? 0;

/** A raw client logged in as `user` (anonymous when undefined). */
async function login(
  t: { teardown: (fn: () => unknown) => void },
  tb: TestBroker,
  clientId: string,
  user?: keyof typeof USERS,
  extra: Partial<Extract<Packet, { cmd: 'connect' }>> = {},
): Promise<RawClient> {
  const credentials = user === undefined ? {} : { username: user, password: pw(USERS[user]) };
  const fields = { clientId, ...credentials, ...extra };
  const { client, returnCode } = await attempt(tb.port, fields);
  t.teardown(() => client.destroy());
  if (returnCode !== 0) throw new Error(`${clientId}: CONNACK ${returnCode}`);
  return client;
}

t.test('topic ACL', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'passwords');
  const aclFile = join(dir, 'acl');
  await writePasswordFile(passwordFile, USERS);
  writeFileSync(aclFile, ACL);
  const tb = await startBroker({ passwordFile, aclFile, allowAnonymous: true });
  t.teardown(tb.stop);
  const { logs } = tb;

  const admin = await login(t, tb, 'admin', 'admin');
  let markers = 0;
  /** Publishes a marker on `topic` as admin; resolves with what `client` received up to it. */
  const upTo = async (client: RawClient, topic: string) => {
    await publish(admin, topic, `marker ${++markers}`, 1);
    return receiveUntil(client, topic);
  };

  await t.test('SUBSCRIBE: 0x80 for each filter no read rule covers, or a deny rule covers', async (t) => {
    const alice = await login(t, tb, 'alice-sub', 'alice');
    const before = await tb.stats();
    const filters: Record<string, QoS> = {
      'alice/#': 1, // granted: a deny covering part of it holds those topics back per message
      'alice/secret/#': 1, // a deny rule covers it whole
      'alice/secret/plans': 1,
      'bob/#': 1, // no rule
      '#': 1, // no rule covers every topic
      'shared/+': 0, // covered by read shared/#
      'shared/alice': 2,
      'public/#': 1, // the anonymous section is not alice's
      'devices/alice/#': 1, // pattern, %u = alice
      'devices/bob/#': 1,
      'clients/alice-sub/in': 1, // pattern, %c = alice-sub
      'clients/other/in': 1,
      '$SYS/#': 1, // no rule
    };
    const granted = await subscribe(alice, filters);
    t.same(granted, [1, FAILURE, FAILURE, FAILURE, FAILURE, 0, 2, FAILURE, 1, FAILURE, 1, FAILURE, FAILURE]);
    const after = await tb.stats();
    t.equal(denied(after, 'subscribe') - denied(before, 'subscribe'), 8, 'each refused filter counted');
    const line = await logs.waitFor((l) => l.clientId === 'alice-sub' && l.msg === 'subscription refused by the ACL');
    t.equal(line.filter, 'alice/secret/#');
  });

  await t.test('a refused PUBLISH is acknowledged at every QoS, dropped, counted and logged at debug', async (t) => {
    const alice = await login(t, tb, 'alice-pub', 'alice');
    const bob = await login(t, tb, 'bob-watch', 'bob');
    t.same(await subscribe(bob, { 'shared/#': 2 }), [2]);
    const before = await tb.stats();
    // alice may read shared/# but write only shared/alice.
    for (const qos of [0, 1, 2] as const) await publish(alice, 'shared/bob', `forged at ${qos}`, qos);
    t.pass('PUBACK, PUBREC/PUBCOMP as for any publish');
    await publish(alice, 'shared/alice', 'allowed', 1);
    const got = await receiveUntil(bob, 'shared/alice');
    t.same(
      got.map((p) => [p.topic, text(p)]),
      [['shared/alice', 'allowed']],
      'only the allowed publish arrived',
    );
    const after = await tb.stats();
    t.equal(denied(after, 'publish') - denied(before, 'publish'), 3, 'three drops counted');
    const line = await logs.waitFor(
      (l) => l.clientId === 'alice-pub' && l.msg === 'publish refused by the ACL: dropped',
    );
    t.match(line, { topic: 'shared/bob', level: 20 });
  });

  await t.test('deny wins: over readwrite alice/# for publishing and for delivery', async (t) => {
    const alice = await login(t, tb, 'alice-deny', 'alice');
    t.same(await subscribe(alice, { 'alice/#': 1 }), [1]);
    const before = await tb.stats();
    await publish(alice, 'alice/secret/plans', 'mine?', 1);
    // admin may write anywhere; alice's subscription covers alice/secret/..., her ACL does not.
    await publish(admin, 'alice/secret/plans', 'from admin', 1);
    await publish(admin, 'alice/notes', 'hello alice', 1);
    const got = await upTo(alice, 'alice/marker');
    t.same(
      got.map((p) => [p.topic, text(p)]),
      [
        ['alice/notes', 'hello alice'],
        ['alice/marker', `marker ${markers}`],
      ],
      'nothing under alice/secret/ reached her',
    );
    const after = await tb.stats();
    t.equal(denied(after, 'publish') - denied(before, 'publish'), 1, "alice's own publish refused");
    t.ok(denied(after, 'delivery') - denied(before, 'delivery') >= 1, "admin's message held back from alice");
  });

  await t.test('retained messages sent on SUBSCRIBE are checked per topic', async (t) => {
    await publish(admin, 'alice/secret/retained', 'hidden', 1, true);
    await publish(admin, 'alice/retained', 'visible', 1, true);
    const alice = await login(t, tb, 'alice-retained', 'alice');
    const before = await tb.stats();
    t.same(await subscribe(alice, { 'alice/#': 1 }), [1]);
    const got = await upTo(alice, 'alice/marker');
    t.same(
      got.map((p) => [p.topic, p.retain]),
      [
        ['alice/retained', true],
        ['alice/marker', false],
      ],
      'the retained message under a denied topic was not sent',
    );
    const after = await tb.stats();
    t.equal(denied(after, 'retained') - denied(before, 'retained'), 1, 'counted');
    // Leave no retained message behind for the tests that follow.
    await publish(admin, 'alice/secret/retained', '', 1, true);
    await publish(admin, 'alice/retained', '', 1, true);
  });

  await t.test('%u and %c: each client gets its own subtree', async (t) => {
    const bob = await login(t, tb, 'bob-devices', 'bob');
    t.same(await subscribe(bob, { 'devices/bob/#': 1, 'devices/alice/#': 1 }), [1, FAILURE]);
    const before = await tb.stats();
    await publish(bob, 'devices/alice/t', 'not mine', 1);
    await publish(bob, 'devices/bob/locked', 'denied by the pattern', 1);
    await publish(bob, 'devices/bob/t', 'mine', 1);
    const got = await receiveUntil(bob, 'devices/bob/t');
    t.same(
      got.map((p) => p.topic),
      ['devices/bob/t'],
    );
    t.equal(denied(await tb.stats(), 'publish') - denied(before, 'publish'), 2);

    // Patterns apply to anonymous clients too (those without %u).
    const camera = await login(t, tb, 'cam-1');
    t.same(await subscribe(camera, { 'clients/cam-1/in': 1, 'clients/cam-2/in': 1 }), [1, FAILURE]);
    const { client: watcher } = await RawClient.connected(
      tb.port,
      { clientId: 'admin-watch', username: 'admin', password: pw('admin-pw') },
      '127.0.0.1',
    );
    t.teardown(() => watcher.destroy());
    await subscribe(watcher, { 'clients/#': 1 });
    await publish(camera, 'clients/cam-2/out', 'impersonating', 1);
    await publish(camera, 'clients/cam-1/out', 'reading', 1);
    const seen = await receiveUntil(watcher, 'clients/cam-1/out');
    t.same(
      seen.map((p) => p.topic),
      ['clients/cam-1/out'],
    );
    await publish(admin, 'clients/cam-1/in', 'command', 1);
    t.equal((await receive(camera)).topic, 'clients/cam-1/in');
  });

  await t.test('a client id holding a wildcard gets no pattern grant from it', async (t) => {
    const sneaky = await login(t, tb, '+');
    t.same(await subscribe(sneaky, { 'clients/+/in': 1 }), [FAILURE], 'clients/%c/in with %c = + is not granted');
  });

  await t.test('the anonymous section: the lines before the first user', async (t) => {
    const anon = await login(t, tb, 'anon-acl');
    t.same(await subscribe(anon, { 'public/#': 1, 'alice/#': 1 }), [1, FAILURE]);
    await publish(anon, 'public/news', 'not writable', 1);
    await publish(anon, 'public/anonymous/hello', 'writable', 1);
    const got = await receiveUntil(anon, 'public/anonymous/hello');
    t.same(
      got.map((p) => p.topic),
      ['public/anonymous/hello'],
    );
  });

  await t.test('wills: checked for write access at CONNECT (0x05), published when allowed', async (t) => {
    const before = await tb.stats();
    const refused = await attempt(tb.port, {
      clientId: 'alice-bad-will',
      username: 'alice',
      password: pw('alice-pw'),
      will: { topic: 'shared/bob', payload: Buffer.from('forged will'), qos: 1, retain: false },
    });
    t.equal(refused.returnCode, 0x05, 'not authorized');
    await refused.client.waitClosed();
    const line = await logs.waitFor((l) => l.clientId === 'alice-bad-will' && l.msg.startsWith('connection refused'));
    t.match(line, { msg: 'connection refused: the ACL does not allow the will topic', willTopic: 'shared/bob' });
    const after = await tb.stats();
    t.equal(denied(after, 'will') - denied(before, 'will'), 1);
    t.equal(
      (after.counters.connectionsRejected['not-authorized'] ?? 0) -
        (before.counters.connectionsRejected['not-authorized'] ?? 0),
      1,
    );

    const { client: watcher } = await RawClient.connected(
      tb.port,
      { clientId: 'will-watch', username: 'admin', password: pw('admin-pw') },
      '127.0.0.1',
    );
    t.teardown(() => watcher.destroy());
    await subscribe(watcher, { 'alice/status': 1 });
    const alice = await login(t, tb, 'alice-will', 'alice', {
      will: { topic: 'alice/status', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    alice.destroy();
    const will = await receive(watcher);
    t.same([will.topic, text(will)], ['alice/status', 'gone']);
  });

  await t.test('a reload applies to connected clients: their next publishes, subscribes and deliveries', async (t) => {
    const alice = await login(t, tb, 'alice-reload', 'alice');
    t.same(await subscribe(alice, { 'alice/#': 1 }), [1]);
    writeFileSync(
      aclFile,
      ACL.replace(
        'topic deny alice/secret/#',
        'topic deny alice/secret/#\ntopic deny alice/notes/#\ntopic deny alice/out',
      ),
    );
    await reloadAccess(tb);
    const line = await logs.waitFor((l) => l.msg.startsWith('access files reloaded'));
    t.match(line.msg, /ACL rules changed \(\d+ -> \d+\)/);
    await publish(admin, 'alice/notes/new', 'now denied', 1);
    await publish(alice, 'alice/out', 'now denied too', 1);
    const got = await upTo(alice, 'alice/marker');
    t.same(
      got.map((p) => p.topic),
      ['alice/marker'],
      'the subscription made before the reload stays, its deliveries follow the new rules',
    );
    t.same(await subscribe(alice, { 'alice/notes/#': 1 }), [FAILURE], 'a new SUBSCRIBE follows them too');
    writeFileSync(aclFile, ACL);
    await reloadAccess(tb);
  });
});

t.test('a bad ACL file stops start-up with one line naming the file and line', async (t) => {
  const dir = tempDir(t);
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, 'user alice\ntopik read a/b\n');
  const err = await startBroker({ aclFile }).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(err, {
    code: 'TERN_ACCESS_FILE',
    message: `ACL file ${aclFile}: line 2: unknown keyword 'topik' (expected user, anonymous, topic or pattern)`,
  });
  writeFileSync(aclFile, 'topic read a/#/b\n');
  const bad = await startBroker({ aclFile }).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(bad, { message: `ACL file ${aclFile}: line 1: 'a/#/b' is not a valid topic filter` });
});

t.test('rules, checked one by one', async (t) => {
  const rules = parseAclFile(ACL, 'acl');
  t.equal(rules.size, 15);
  const alice = rules.compile('alice', 'a1');
  const anon = rules.compile(null, 'c1');
  const cases: Array<[string, boolean, boolean]> = [
    // topic, alice may publish, alice may read
    ['alice/x', true, true],
    ['alice', true, true], // alice/# matches its parent level [MQTT-4.7.1-2]
    ['alice/secret', false, false],
    ['alice/secret/x/y', false, false],
    ['alicex', false, false],
    ['shared/alice', true, true],
    ['shared/bob', false, true],
    ['devices/alice/a/b', true, true],
    ['devices/alice/locked', false, false],
    ['clients/a1/in', false, true],
    ['clients/a1/out', true, false],
    ['$SYS/broker/uptime', false, false],
  ];
  for (const [topic, write, read] of cases) {
    t.equal(alice.canPublish(topic), write, `alice publish ${topic}`);
    t.equal(alice.canRead(topic), read, `alice read ${topic}`);
  }
  t.equal(anon.canRead('public/a'), true);
  t.equal(anon.canPublish('public/a'), false);
  t.equal(anon.canPublish('devices//x'), false, 'no %u pattern for an anonymous client');
  t.equal(anon.canRead('clients/c1/in'), true, '%c patterns apply to anonymous clients');
  const admin = rules.compile('admin', 'adm');
  t.equal(admin.canSubscribe('#'), true);
  t.equal(admin.canSubscribe('$SYS/#'), false, '# does not cover $ topics');
  t.equal(admin.canSubscribe('devices/admin/#'), true, 'a deny covering part of a filter does not refuse it');
  t.equal(admin.canSubscribe('devices/admin/locked'), false);
  t.equal(admin.canSubscribe('devices/+/locked'), true, 'the deny covers only devices/admin/locked');
  t.equal(rules.compile('nobody', 'n').canRead('alice/x'), false, 'a user with no section gets the patterns only');
});
