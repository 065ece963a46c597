/**
 * MQTT 5 enhanced authentication (MQTT 5.0 section 4.12) through the auth plug-in's
 * authenticateEnhanced: a challenge-response plug-in written to a temporary directory (the
 * broker sends a nonce in AUTH 0x18, the client answers with it reversed), CONNECT exchanges of
 * zero, one and two rounds, refusals and failures, protocol errors during the exchange,
 * re-authentication, and MQTT.js doing the exchange.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatsSnapshot } from '@tern/broker';
import { type AuthPacket, encode, type Packet } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { freshAddress, pw, tempDir, writePasswordFile } from './support/access.js';
import { packetId } from './support/flows.js';

const METHOD = 'TEST-CHALLENGE';

/**
 * The client's first data says how many rounds it wants (`rounds=N`, default 1) and may name
 * the user to let it in as (`user=NAME`). Every round the plug-in sends a fresh nonce, kept in
 * the connection's state; the right answer is the nonce reversed.
 */
const PLUGIN = `
import { randomBytes } from 'node:crypto';

export async function authenticateEnhanced({ clientId, username, method, data, remoteAddress, step, reauth, state }) {
  if (method !== '${METHOD}') return { allow: false, badMethod: true, reason: 'not offered' };
  if (clientId.startsWith('throws')) throw new Error('vault down');
  if (clientId.startsWith('hangs')) return new Promise(() => {});
  if (clientId.startsWith('odd')) return { allow: 'yes' };
  if (typeof remoteAddress !== 'string') return { allow: false, reason: 'no remote address' };
  const text = data === undefined ? '' : data.toString();
  if (step === 0) {
    const rounds = /rounds=(\\d+)/.exec(text);
    state.rounds = rounds === null ? 1 : Number(rounds[1]);
    state.user = /user=(\\w+)/.exec(text)?.[1] ?? username;
    state.exchanges = (state.exchanges ?? 0) + 1;
    state.reauth = reauth;
  } else {
    if (step !== state.step || reauth !== state.reauth) return { allow: false, reason: 'lost count' };
    const expected = Buffer.from(state.nonce).reverse();
    if (data === undefined || !data.equals(expected)) return { allow: false, reason: 'wrong answer' };
    state.rounds--;
  }
  if (state.rounds === 0) {
    const welcome = (reauth ? 'welcome back ' : 'welcome ') + state.exchanges;
    return { allow: true, data: Buffer.from(welcome), username: state.user };
  }
  state.step = step + 1;
  state.nonce = randomBytes(8);
  return { continue: state.nonce };
}
`;

const denied = (s: StatsSnapshot): number => s.counters.authPluginDenied.connect ?? 0;
const failures = (s: StatsSnapshot): number => s.counters.authPluginFailures.connect ?? 0;

const text = (b: Buffer | undefined): string | undefined => b?.toString();
const reversed = (b: Buffer): Buffer => Buffer.from([...b].reverse());

type Props = { authenticationMethod?: string; authenticationData?: Buffer };

/** A raw MQTT 5 client from an address of its own that has sent CONNECT with a method. */
async function connectWithMethod(
  t: { teardown: (fn: () => void) => void },
  port: number,
  clientId: string,
  data?: string,
  method = METHOD,
): Promise<RawClient> {
  const client = await RawClient.open(port, 5, freshAddress());
  t.teardown(() => client.destroy());
  const properties: Props = { authenticationMethod: method };
  if (data !== undefined) properties.authenticationData = Buffer.from(data);
  client.sendConnect({ clientId, properties });
  return client;
}

/** Reads the broker's AUTH 0x18 and answers it: the nonce reversed, or `wrong`. */
async function answerChallenge(client: RawClient, wrong?: string, method = METHOD): Promise<AuthPacket> {
  const challenge = await client.expect('auth');
  const nonce = challenge.properties?.authenticationData ?? Buffer.alloc(0);
  const answer = wrong === undefined ? reversed(nonce) : Buffer.from(wrong);
  client.send({
    cmd: 'auth',
    reasonCode: 0x18,
    properties: { authenticationMethod: method, authenticationData: answer },
  });
  return challenge;
}

t.test('enhanced authentication through the plug-in', async (t) => {
  const dir = tempDir(t);
  const authPlugin = join(dir, 'plugin.mjs');
  writeFileSync(authPlugin, PLUGIN);
  // A password file (so anonymous clients are refused) and an ACL: the plug-in's yes replaces
  // the password check, the ACL still applies to the user it names.
  const passwordFile = join(dir, 'passwords');
  await writePasswordFile(passwordFile, { bob: 'bob-secret' });
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, 'user alice\ntopic readwrite alice/#\n\nuser bob\ntopic readwrite bob/#\n');
  const tb = await startBroker({ authPlugin, authPluginTimeoutMs: 300, passwordFile, aclFile });
  t.teardown(tb.stop);
  const { port, logs } = tb;

  await t.test('one round: AUTH 0x18 with a nonce, the right answer, CONNACK 0 with the method', async (t) => {
    const client = await connectWithMethod(t, port, 'one-round', 'rounds=1');
    const challenge = await answerChallenge(client);
    t.equal(challenge.reasonCode, 0x18, 'continue authentication');
    t.equal(challenge.properties?.authenticationMethod, METHOD, 'the AUTH carries the method [MQTT-4.12.0-5]');
    t.equal(challenge.properties?.authenticationData?.length, 8, 'and the nonce');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0);
    t.equal(connack.properties?.authenticationMethod, METHOD, 'CONNACK carries the method [MQTT-4.12.0-5]');
    t.equal(text(connack.properties?.authenticationData), 'welcome 1', 'and the final data');
    client.send({ cmd: 'pingreq' });
    await client.expect('pingresp');
  });

  await t.test('two rounds; the user the plug-in names gets its ACL rules', async (t) => {
    const client = await connectWithMethod(t, port, 'two-rounds', 'rounds=2 user=alice');
    const first = await answerChallenge(client);
    const second = await answerChallenge(client);
    t.not(
      text(first.properties?.authenticationData),
      text(second.properties?.authenticationData),
      'a new nonce per round',
    );
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0, 'in without a password, although anonymous clients are refused here');
    client.send({
      cmd: 'subscribe',
      messageId: packetId(),
      subscriptions: [
        { topic: 'alice/#', qos: 0 },
        { topic: 'bob/#', qos: 0 },
      ],
    });
    const suback = await client.expect('suback');
    t.same(suback.granted, [0, 0x87], "alice's ACL section applies");
  });

  await t.test('no round at all: allowed at the CONNECT, final data in CONNACK', async (t) => {
    const client = await connectWithMethod(t, port, 'no-round', 'rounds=0');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0);
    t.equal(text(connack.properties?.authenticationData), 'welcome 1');
  });

  await t.test('the plug-in decides, not the password file: a CONNECT user name is let in as given', async (t) => {
    const client = await RawClient.open(port, 5, freshAddress());
    t.teardown(() => client.destroy());
    client.sendConnect({
      clientId: 'bob-enhanced',
      username: 'bob',
      password: pw('not-his-password'),
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=1') },
    });
    await answerChallenge(client);
    t.equal((await client.expect('connack')).returnCode, 0);
    client.send({ cmd: 'subscribe', messageId: packetId(), subscriptions: [{ topic: 'bob/#', qos: 0 }] });
    t.same((await client.expect('suback')).granted, [0], "bob's ACL section applies");
  });

  await t.test('a wrong answer: CONNACK 0x87, one info line with the method, counted', async (t) => {
    const before = await tb.stats();
    const client = await connectWithMethod(t, port, 'wrong-answer', 'rounds=2');
    await answerChallenge(client);
    await answerChallenge(client, 'not the nonce');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x87, 'not authorized');
    t.equal(connack.properties?.reasonString, 'the auth plug-in refused (wrong answer)');
    t.equal(connack.properties?.authenticationData, undefined, 'no data in a refusal');
    await client.waitClosed();
    const after = await tb.stats();
    t.equal(denied(after) - denied(before), 1, 'counted as denied');
    t.equal(failures(after) - failures(before), 0, 'not a failure');
    const lines = logs.lines.filter((l) => l.clientId === 'wrong-answer' && l.msg.startsWith('connection refused'));
    t.equal(lines.length, 1, 'one line');
    t.match(lines[0], {
      level: 30,
      msg: 'connection refused: the auth plug-in refused (wrong answer)',
      method: METHOD,
      returnCode: 0x05,
    });
    const logged = JSON.stringify(logs.lines.filter((l) => l.clientId === 'wrong-answer'));
    t.notMatch(logged, /not the nonce|rounds=2/, 'authentication data is never logged');
  });

  await t.test('a method the plug-in does not offer: CONNACK 0x8C', async (t) => {
    const client = await connectWithMethod(t, port, 'other-method', 'x', 'SCRAM-SHA-256');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x8c, 'bad authentication method');
    await client.waitClosed();
    const line = await logs.waitFor((l) => l.clientId === 'other-method' && l.msg.startsWith('connection refused'));
    t.match(line, {
      method: 'SCRAM-SHA-256',
      msg: 'connection refused: the auth plug-in does not offer the authentication method',
    });
  });

  await t.test('a plug-in that throws, hangs or answers nonsense: refused and counted as failures', async (t) => {
    const before = await tb.stats();
    const cases = [
      { clientId: 'throws-1', why: 'the auth plug-in failed (threw: vault down)' },
      { clientId: 'hangs-1', why: 'the auth plug-in failed (timed out after 300 ms)' },
      { clientId: 'odd-1', why: 'the auth plug-in failed (unexpected answer { allow })' },
    ];
    for (const c of cases) {
      const client = await connectWithMethod(t, port, c.clientId, 'rounds=1');
      const connack = await client.expect('connack');
      t.equal(connack.returnCode, 0x87, `${c.clientId}: not authorized`);
      await client.waitClosed();
      const lines = logs.lines.filter((l) => l.clientId === c.clientId && l.msg.startsWith('connection refused'));
      t.equal(lines.length, 1, `${c.clientId}: one line`);
      t.match(lines[0], { msg: `connection refused: ${c.why}`, method: METHOD });
    }
    const after = await tb.stats();
    t.equal(denied(after) - denied(before), 3);
    t.equal(failures(after) - failures(before), 3);
  });

  await t.test('an AUTH with another method during the exchange: CONNACK 0x82', async (t) => {
    const client = await connectWithMethod(t, port, 'switches-method', 'rounds=1');
    await answerChallenge(client, undefined, 'OTHER');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x82, 'protocol error');
    t.match(connack.properties?.reasonString, /another authentication method/);
    await client.waitClosed();
  });

  await t.test('a PUBLISH before CONNACK of an exchange: CONNACK 0x82 [MQTT-3.1.2-30]', async (t) => {
    const before = await tb.stats();
    const client = await connectWithMethod(t, port, 'publishes-early', 'rounds=1');
    await client.expect('auth');
    client.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x82);
    await client.waitClosed();
    t.equal((await tb.stats()).counters.protocolErrors - before.counters.protocolErrors, 1, 'counted');
  });

  await t.test('an AUTH before the broker asked for one: CONNACK 0x82', async (t) => {
    const client = await RawClient.open(port, 5, freshAddress());
    t.teardown(() => client.destroy());
    // CONNECT and AUTH in one write: the AUTH is decoded while the plug-in is still deciding.
    const connect: Packet = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 0,
      clientId: 'auth-too-early',
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=1') },
    };
    const auth: Packet = { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD } };
    client.sendBytes(Buffer.concat([encode(connect, 5), encode(auth, 5)]));
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x82);
    await client.waitClosed();
  });

  await t.test('re-authentication: AUTH 0x19, 0x18 rounds, AUTH 0x00; other packets flow meanwhile', async (t) => {
    const client = await connectWithMethod(t, port, 'reauth-ok', 'rounds=1');
    await answerChallenge(client);
    t.equal((await client.expect('connack')).returnCode, 0);
    client.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=2') },
    });
    client.send({ cmd: 'pingreq' });
    // The PINGRESP does not wait for the plug-in: it comes before or after the first AUTH.
    const two = [await client.next(), await client.next()];
    t.same(two.map((p) => p.cmd).sort(), ['auth', 'pingresp'], 'the connection goes on during re-authentication');
    const challenge = two.find((p) => p.cmd === 'auth') as AuthPacket;
    t.equal(challenge.reasonCode, 0x18);
    t.equal(challenge.properties?.authenticationMethod, METHOD);
    const nonce = challenge.properties?.authenticationData as Buffer;
    client.send({
      cmd: 'auth',
      reasonCode: 0x18,
      properties: { authenticationMethod: METHOD, authenticationData: reversed(nonce) },
    });
    await answerChallenge(client);
    const success = await client.expect('auth');
    t.equal(success.reasonCode, 0x00, 'success');
    t.equal(success.properties?.authenticationMethod, METHOD);
    t.equal(text(success.properties?.authenticationData), 'welcome back 2', 'the state object lasts the connection');
    // And again: a second re-authentication on the same connection.
    client.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=0') },
    });
    const again = await client.expect('auth');
    t.equal(again.reasonCode, 0x00);
    t.equal(text(again.properties?.authenticationData), 'welcome back 3');
  });

  await t.test('re-authentication refused: DISCONNECT 0x87 and close, counted', async (t) => {
    const before = await tb.stats();
    const client = await connectWithMethod(t, port, 'reauth-bad', 'rounds=1');
    await answerChallenge(client);
    t.equal((await client.expect('connack')).returnCode, 0);
    client.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=1') },
    });
    await answerChallenge(client, 'wrong');
    const disconnect = await client.expect('disconnect');
    t.equal(disconnect.reasonCode, 0x87, 'not authorized');
    t.equal(disconnect.properties?.reasonString, 'the auth plug-in refused (wrong answer)');
    await client.waitClosed();
    const after = await tb.stats();
    t.equal(denied(after) - denied(before), 1);
    const line = await logs.waitFor(
      (l) => l.clientId === 'reauth-bad' && l.msg.startsWith('re-authentication refused'),
    );
    t.match(line, {
      level: 30,
      method: METHOD,
      msg: 're-authentication refused: the auth plug-in refused (wrong answer)',
    });
  });

  await t.test('re-authentication with another method: DISCONNECT 0x82', async (t) => {
    const client = await connectWithMethod(t, port, 'reauth-switch', 'rounds=0');
    t.equal((await client.expect('connack')).returnCode, 0);
    client.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'OTHER' } });
    t.equal((await client.expect('disconnect')).reasonCode, 0x82);
    await client.waitClosed();
  });

  await t.test('AUTH 0x18 from a connected client nobody asked: DISCONNECT 0x82', async (t) => {
    const client = await connectWithMethod(t, port, 'reauth-unasked', 'rounds=0');
    t.equal((await client.expect('connack')).returnCode, 0);
    client.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD } });
    t.equal((await client.expect('disconnect')).reasonCode, 0x82);
    await client.waitClosed();
  });

  await t.test('AUTH from a client that connected without a method: DISCONNECT 0x82 [MQTT-4.12.0-7]', async (t) => {
    const client = await RawClient.open(port, 5, freshAddress());
    t.teardown(() => client.destroy());
    const connack = await client.connect({ clientId: 'no-method', username: 'bob', password: pw('bob-secret') });
    t.equal(connack.returnCode, 0, 'the password file lets bob in');
    t.equal(connack.properties?.authenticationMethod, undefined, 'no method in CONNACK [MQTT-4.12.0-6]');
    client.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
    const disconnect = await client.expect('disconnect');
    t.equal(disconnect.reasonCode, 0x82, 'protocol error');
    await client.waitClosed();
  });

  await t.test('MQTT.js answers the challenges in its handleAuth', async (t) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      clientId: 'mqttjs-enhanced',
      reconnectPeriod: 0,
      properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('rounds=2 user=alice') },
    });
    t.teardown(() => client.end(true));
    let rounds = 0;
    client.handleAuth = (packet, callback) => {
      rounds++;
      const nonce = packet.properties?.authenticationData ?? Buffer.alloc(0);
      callback(undefined, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: METHOD, authenticationData: reversed(nonce) },
      });
    };
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    t.equal(rounds, 2, 'two challenges answered');
    t.equal(connack.properties?.authenticationMethod, METHOD);
    t.equal(text(connack.properties?.authenticationData), 'welcome 1');
    const granted = await client.subscribeAsync('alice/#', { qos: 1 });
    t.equal(granted[0]?.qos, 1);
  });
});

t.test('without authenticateEnhanced a method is refused with 0x8C', async (t) => {
  const dir = tempDir(t);
  const authPlugin = join(dir, 'plugin.mjs');
  writeFileSync(authPlugin, 'export function authenticate() { return true; }\n');
  const withPlugin = await startBroker({ authPlugin });
  t.teardown(withPlugin.stop);
  const without = await startBroker();
  t.teardown(without.stop);
  for (const [name, tb] of [
    ['a plug-in without authenticateEnhanced', withPlugin],
    ['no plug-in', without],
  ] as const) {
    const client = await connectWithMethod(t, tb.port, 'no-enhanced', 'rounds=1');
    const connack = await client.expect('connack');
    t.equal(connack.returnCode, 0x8c, `${name}: bad authentication method`);
    t.equal(connack.properties?.reasonString, 'unsupported authentication method');
    await client.waitClosed();
    const line = await tb.logs.waitFor((l) => l.msg.startsWith('connection refused'));
    t.match(line, { method: METHOD, msg: 'connection refused: unsupported authentication method' });
    t.equal((await tb.stats()).counters.connectionsRejected['bad-credentials'], 1, `${name}: counted`);
  }
});

t.test('the connect timeout covers the whole exchange', async (t) => {
  const dir = tempDir(t);
  const authPlugin = join(dir, 'plugin.mjs');
  writeFileSync(authPlugin, PLUGIN);
  const tb = await startBroker({ authPlugin, connectTimeoutMs: 200 });
  t.teardown(tb.stop);
  const client = await connectWithMethod(t, tb.port, 'never-answers', 'rounds=1');
  t.equal((await client.expect('auth')).reasonCode, 0x18);
  // The client never answers the challenge: the broker gives up on it.
  await client.waitClosed();
  t.equal((await tb.stats()).counters.limitsHit['connect-timeout'], 1);
});
