/**
 * Authentication at CONNECT: the password file (scrypt), the anonymous rule, CONNACK 0x04 and
 * 0x05 with a log line and a metric each, packets pipelined behind a CONNECT, the slowdown of
 * an address that keeps failing (and only of it), and reloading the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccessFileError, AuthThrottle, type StatsSnapshot } from '@tern/broker';
import { encode, type Packet } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { attempt, connectAs, freshAddress, pw, reloadAccess, tempDir, writePasswordFile } from './support/access.js';
import { receiveUntil, subscribe } from './support/flows.js';
import { Inbox } from './support/mqttjs.js';

const rejected = (s: StatsSnapshot, reason: string): number => s.counters.connectionsRejected[reason] ?? 0;

t.test('with a password file', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'passwords');
  await writePasswordFile(passwordFile, { alice: 'alice-pw', bob: 'bob-pw' });
  const tb = await startBroker({ passwordFile });
  t.teardown(tb.stop);
  const { port, logs } = tb;

  await t.test('anonymous access is off by default, and the start-up line says why', async (t) => {
    const line = await logs.waitFor('anonymous access');
    t.equal(line.msg, 'anonymous access refused: a password file is configured (allowAnonymous: auto)');
    t.match(line, { allowAnonymous: 'auto', passwordFile, users: 2 });
    const { client, returnCode } = await attempt(port, { clientId: 'anon-1' });
    t.equal(returnCode, 0x05, 'CONNACK 0x05 not authorized');
    await client.waitClosed();
    const refused = await logs.waitFor((l) => l.clientId === 'anon-1' && l.msg.startsWith('connection refused'));
    t.equal(refused.msg, 'connection refused: anonymous access is not allowed');
  });

  await t.test('the right user name and password get in (MQTT.js), and can publish', async (t) => {
    const alice = await connectAs(t, port, 'alice-1', 'alice', 'alice-pw');
    const inbox = new Inbox(alice);
    await alice.subscribeAsync('auth/echo', { qos: 1 });
    await alice.publishAsync('auth/echo', 'hello', { qos: 1 });
    t.equal((await inbox.next()).payload, 'hello');
  });

  await t.test('a wrong password or an unknown user: CONNACK 0x04, counted, logged without the password', async (t) => {
    const before = await tb.stats();
    const wrong = await attempt(port, { clientId: 'wrong-1', username: 'alice', password: pw('Secret-Guess-1') });
    t.equal(wrong.returnCode, 0x04, 'wrong password: bad user name or password');
    await wrong.client.waitClosed();
    const unknown = await attempt(port, { clientId: 'wrong-2', username: 'mallory', password: pw('Secret-Guess-2') });
    t.equal(unknown.returnCode, 0x04, 'unknown user: the same answer');
    await unknown.client.waitClosed();
    const after = await tb.stats();
    t.equal(rejected(after, 'bad-credentials') - rejected(before, 'bad-credentials'), 2, 'bad-credentials counted');
    const first = await logs.waitFor((l) => l.clientId === 'wrong-1' && l.msg.startsWith('connection refused'));
    t.equal(first.msg, 'connection refused: bad user name or password (wrong password)');
    t.match(first, { username: 'alice', returnCode: 4 });
    const second = await logs.waitFor((l) => l.clientId === 'wrong-2' && l.msg.startsWith('connection refused'));
    t.equal(second.msg, 'connection refused: bad user name or password (unknown user)');
    t.notOk(
      logs.lines.some((l) => JSON.stringify(l).includes('Secret-Guess')),
      'no log line holds a password',
    );
  });

  await t.test('a user name without a password: CONNACK 0x05, counted', async (t) => {
    const before = await tb.stats();
    const { client, returnCode } = await attempt(port, { clientId: 'nopass-1', username: 'alice' });
    t.equal(returnCode, 0x05);
    await client.waitClosed();
    const after = await tb.stats();
    t.equal(rejected(after, 'not-authorized') - rejected(before, 'not-authorized'), 1, 'not-authorized counted');
    const line = await logs.waitFor((l) => l.clientId === 'nopass-1' && l.msg.startsWith('connection refused'));
    t.equal(line.msg, 'connection refused: no password given');
  });

  await t.test('packets sent behind the CONNECT wait for the check, then run in order', async (t) => {
    const client = await RawClient.open(port, 4, freshAddress());
    t.teardown(() => client.destroy());
    const packets: Packet[] = [
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
        clientId: 'pipelined',
        username: 'bob',
        password: pw('bob-pw'),
      },
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'auth/pipelined', qos: 1 }] },
      {
        cmd: 'publish',
        topic: 'auth/pipelined',
        payload: Buffer.from('behind'),
        qos: 1,
        retain: false,
        dup: false,
        messageId: 2,
      },
    ];
    // One write: the broker decodes all three before the password check ends.
    client.sendBytes(Buffer.concat(packets.map((p) => encode(p, 4))));
    t.equal((await client.expect('connack')).returnCode, 0, 'CONNACK first');
    const rest = [await client.next(), await client.next(), await client.next()];
    t.same(
      rest.map((p) => p.cmd).sort(),
      ['puback', 'publish', 'suback'],
      'the SUBSCRIBE and the PUBLISH were handled',
    );
    const delivered = rest.find((p) => p.cmd === 'publish');
    t.match(delivered, { topic: 'auth/pipelined' }, 'the PUBLISH reached the subscription made before it');
  });

  await t.test('packets behind a refused CONNECT are dropped', async (t) => {
    const { client: watcher } = await RawClient.connected(
      port,
      { clientId: 'watcher', username: 'alice', password: pw('alice-pw') },
      freshAddress(),
    );
    t.teardown(() => watcher.destroy());
    await subscribe(watcher, { 'auth/leak/#': 1 });
    const client = await RawClient.open(port, 4, freshAddress());
    const connect: Packet = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
      clientId: 'leaker',
      username: 'alice',
      password: pw('not-it'),
    };
    const publish: Packet = {
      cmd: 'publish',
      topic: 'auth/leak/1',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
    };
    client.sendBytes(Buffer.concat([encode(connect, 4), encode(publish, 4)]));
    t.equal((await client.expect('connack')).returnCode, 0x04);
    await client.waitClosed();
    const { client: marker } = await RawClient.connected(
      port,
      { clientId: 'marker', username: 'bob', password: pw('bob-pw') },
      freshAddress(),
    );
    t.teardown(() => marker.destroy());
    marker.send({
      cmd: 'publish',
      topic: 'auth/leak/marker',
      payload: Buffer.from('m'),
      qos: 1,
      retain: false,
      dup: false,
      messageId: 1,
    });
    const got = await receiveUntil(watcher, 'auth/leak/marker');
    t.same(
      got.map((p) => p.topic),
      ['auth/leak/marker'],
      'only the marker: the refused client published nothing',
    );
  });

  await t.test('repeated failures slow that address down, and no other', async (t) => {
    const bad = freshAddress();
    const guess = (n: number) => ({ clientId: `guess-${n}`, username: 'alice', password: pw(`guess-${n}`) });
    const first = await attempt(port, guess(1), bad);
    t.equal(first.returnCode, 0x04, 'the first failure is answered at once');
    const second = await attempt(port, guess(2), bad);
    t.equal(second.returnCode, 0x04);
    if (tb.workers === 0) {
      // (With routing workers the second attempt may reach another worker before word of the
      // first failure does; by the third, every worker has heard of one.)
      const delayed = await logs.waitFor((l) => l.clientId === 'guess-2' && l.msg.startsWith('connection refused'));
      t.ok((delayed.delayedMs as number) > 0, 'the second attempt was held back before its check');
    }

    // A third attempt from the same address is held back; meanwhile a client from another
    // address gets in at once: its CONNACK arrives while the third one's is still pending.
    const third = await RawClient.open(port, 4, bad);
    t.teardown(() => third.destroy());
    third.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, ...guess(3) });
    let thirdAnswered = false;
    const thirdConnack = third.expect('connack').then((p) => {
      thirdAnswered = true;
      return p;
    });
    const other = await attempt(port, { clientId: 'other-address', username: 'bob', password: pw('bob-pw') });
    t.teardown(() => other.client.destroy());
    t.equal(other.returnCode, 0, 'the other address is let in');
    t.equal(thirdAnswered, false, 'while the failing address still waits');
    t.equal((await thirdConnack).returnCode, 0x04, 'and then it is refused');
    const line = await logs.waitFor((l) => l.clientId === 'guess-3' && l.msg.startsWith('connection refused'));
    t.ok((line.delayedMs as number) > 0, 'logged with the delay');
  });

  await t.test('a password check runs off the event loop: other clients are served meanwhile', async (t) => {
    // A costly hash (32 MiB, about a tenth of a second): the worker answers a PINGREQ before it ends.
    const slowFile = join(dir, 'slow-passwords');
    await writePasswordFile(slowFile, { slow: 'slow-pw' }, { N: 32_768, r: 8, p: 1 });
    const slow = await startBroker({ passwordFile: slowFile, allowAnonymous: true, workers: 0 });
    t.teardown(slow.stop);
    const { client: pinger } = await RawClient.connected(slow.port, { clientId: 'pinger' });
    t.teardown(() => pinger.destroy());
    const client = await RawClient.open(slow.port);
    t.teardown(() => client.destroy());
    client.sendConnect({ clientId: 'slow-login', username: 'slow', password: pw('slow-pw') });
    let loggedIn = false;
    const connack = client.expect('connack').then((p) => {
      loggedIn = true;
      return p;
    });
    // Sent once the check has started, on a connection to the same thread.
    await slow.logs.waitFor((l) => l.clientId === 'slow-login' && l.msg === 'checking credentials');
    pinger.send({ cmd: 'pingreq' });
    await pinger.expect('pingresp');
    t.equal(loggedIn, false, 'PINGRESP while the password check still runs');
    t.equal((await connack).returnCode, 0);
  });

  await t.test('a reload reads the password file again; connections stay', async (t) => {
    const bob = await connectAs(t, port, 'bob-stays', 'bob', 'bob-pw');
    await writePasswordFile(passwordFile, { alice: 'alice-pw', carol: 'carol-pw' });
    await reloadAccess(tb);
    const line = await logs.waitFor((l) => l.msg.startsWith('access files reloaded'));
    // alice's line was written again with a fresh salt: a changed password, as far as the file says.
    t.equal(line.msg, 'access files reloaded: 1 user added, 1 user removed, 1 password changed');
    t.match(line, { usersAdded: ['carol'], usersRemoved: ['bob'], usersChanged: ['alice'] });
    const carol = await attempt(port, { clientId: 'carol-1', username: 'carol', password: pw('carol-pw') });
    t.teardown(() => carol.client.destroy());
    t.equal(carol.returnCode, 0, 'a new user gets in');
    const gone = await attempt(port, { clientId: 'bob-again', username: 'bob', password: pw('bob-pw') });
    t.equal(gone.returnCode, 0x04, 'a removed user does not');
    await bob.publishAsync('auth/still-here', 'yes', { qos: 1 });
    t.equal(bob.connected, true, 'a connection made before the reload keeps running');

    writeFileSync(passwordFile, 'carol:not-a-hash\n');
    await reloadAccess(tb);
    const refused = await logs.waitFor((l) => l.msg.startsWith('access files reload refused'));
    t.match(refused.msg, `password file ${passwordFile}: line 1: expected $scrypt$`);
    const still = await attempt(port, { clientId: 'carol-2', username: 'carol', password: pw('carol-pw') });
    t.teardown(() => still.client.destroy());
    t.equal(still.returnCode, 0, 'a bad file changes nothing');
  });
});

t.test('allowAnonymous true with a password file: anonymous clients in, user names still checked', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'passwords');
  await writePasswordFile(passwordFile, { alice: 'alice-pw' });
  const tb = await startBroker({ passwordFile, allowAnonymous: true });
  t.teardown(tb.stop);
  t.equal((await tb.logs.waitFor('anonymous access')).msg, 'anonymous access allowed: allowAnonymous is true');
  const anon = await attempt(tb.port, { clientId: 'anon' });
  t.teardown(() => anon.client.destroy());
  t.equal(anon.returnCode, 0);
  const wrong = await attempt(tb.port, { clientId: 'wrong', username: 'alice', password: pw('nope') });
  t.equal(wrong.returnCode, 0x04, 'a wrong password is refused, not let in as anonymous');
});

t.test('without a password file: anonymous by default, user names taken as they come', async (t) => {
  const tb = await startBroker();
  t.teardown(tb.stop);
  t.equal(
    (await tb.logs.waitFor('anonymous access')).msg,
    'anonymous access allowed: no password file is configured (allowAnonymous: auto)',
  );
  const named = await attempt(tb.port, { clientId: 'named', username: 'whoever', password: pw('anything') });
  t.teardown(() => named.client.destroy());
  t.equal(named.returnCode, 0);
});

t.test('allowAnonymous false and no password file: every CONNECT is refused, with a warning', async (t) => {
  const tb = await startBroker({ allowAnonymous: false });
  t.teardown(tb.stop);
  const line = await tb.logs.waitFor('anonymous access');
  t.equal(
    line.msg,
    'anonymous access refused: allowAnonymous is false and no password file is configured: every CONNECT is refused',
  );
  t.equal(line.level, 40, 'at warn');
  for (const fields of [{ clientId: 'a' }, { clientId: 'b', username: 'x', password: pw('y') }]) {
    const { client, returnCode } = await attempt(tb.port, fields);
    t.equal(returnCode, 0x05, fields.clientId);
    await client.waitClosed();
  }
});

t.test('a bad password file stops start-up with one line naming it', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'broken');
  writeFileSync(passwordFile, '# users\nalice:$scrypt$N=3,r=8,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==\n');
  const err = await startBroker({ passwordFile }).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, AccessFileError);
  t.match(err, {
    code: 'TERN_ACCESS_FILE',
    message: `password file ${passwordFile}: line 2: N=3 is not a power of two in 2..2^24`,
  });
  const missing = await startBroker({ passwordFile: join(dir, 'missing') }).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(missing, { code: 'TERN_ACCESS_FILE', message: /missing: cannot read it \(ENOENT\)$/ });
});

t.test('the throttle: doubling per recent failure up to a cap, forgotten over time, per address', async (t) => {
  const throttle = new AuthThrottle({ baseMs: 100, capMs: 1000, decayMs: 10_000, maxAddresses: 2 });
  const a = '10.0.0.1';
  t.equal(throttle.delayMs(a, 0), 0, 'no failure, no delay');
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    throttle.failed(a, 0);
    delays.push(throttle.delayMs(a, 0));
  }
  t.same(delays, [100, 200, 400, 800, 1000, 1000], 'doubling, capped');
  t.equal(throttle.delayMs('10.0.0.2', 0), 0, 'another address is not slowed');
  t.equal(throttle.failures(a, 25_000), 4, 'one failure forgotten per quiet decay period');
  t.equal(throttle.delayMs(a, 60_000), 0, 'all forgotten after long enough');
  throttle.failed('10.0.0.3', 0);
  throttle.failed('10.0.0.4', 0);
  throttle.failed('10.0.0.5', 0);
  t.equal(throttle.size, 2, 'bounded: the least recently failed address goes first');
  t.equal(throttle.failures('10.0.0.3', 0), 0);
});
