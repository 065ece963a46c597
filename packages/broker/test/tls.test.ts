/**
 * MQTT over TLS: publish and subscribe through MQTT.js over mqtts, mutual TLS (a client
 * without a certificate signed by the CA is refused), the certificate's CN as the user name
 * (the ACL applies to it), a bad certificate file stopping start-up with one line, and SIGHUP
 * replacing the certificate for new connections while open ones stay up.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { makeTestCertificates, startBroker, type TestBroker } from '@tern/testkit';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import t from 'tap';
import { tempDir } from './support/access.js';
import { startCli, tern } from './support/cli.js';
import { Inbox } from './support/mqttjs.js';

const certs = await makeTestCertificates({ clientUser: 'device-17' });
t.teardown(() => certs.remove());

const ca = readFileSync(certs.ca);
const fingerprint = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;

const TLS_ON = { tlsEnabled: true, tlsPort: 0, tlsCert: certs.server.cert, tlsKey: certs.server.key };

/** An MQTT.js client over mqtts, trusting the test CA; ended when the test ends. */
async function connectTls(
  t: { teardown: (fn: () => unknown) => void },
  port: number,
  clientId: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
    ca,
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...extra,
  });
  t.teardown(() => client.endAsync(true));
  return client;
}

/** Tries to connect; resolves with the error when the broker refuses (during the handshake). */
async function refused(port: number, extra: IClientOptions): Promise<Error> {
  try {
    const client = await mqtt.connectAsync(
      `mqtts://127.0.0.1:${port}`,
      {
        ca,
        clientId: 'refused',
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        ...extra,
        // No retries: a close without an error (the broker hung up during the handshake) rejects too.
      },
      false,
    );
    await client.endAsync(true);
  } catch (err) {
    return err as Error;
  }
  throw new Error('the broker let a client in that it should have refused');
}

/** The SUBACK's return codes (MQTT.js rejects a SUBACK holding 0x80; the codes are what is tested). */
async function grants(client: MqttClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted === undefined) throw err;
    return granted;
  }
}

const peerFingerprint = (client: MqttClient): string =>
  (client.stream as TLSSocket).getPeerCertificate().fingerprint256;

async function startTlsBroker(t: { teardown: (fn: () => unknown) => void }, options = {}): Promise<TestBroker> {
  const tb = await startBroker({ ...TLS_ON, ...options });
  t.teardown(() => tb.stop());
  return tb;
}

t.test('MQTT over TLS: publish and subscribe through mqtts, beside plain TCP', async (t) => {
  const tb = await startTlsBroker(t);
  const tlsPort = tb.ports.tls as number;
  t.ok(tlsPort > 0, 'the TLS listener is bound');
  t.not(tlsPort, tb.port, 'on its own port');
  const line = await tb.logs.waitFor((l) => l.msg === 'listening' && l.protocol === 'mqtts');
  t.match(line, { host: '127.0.0.1', port: tlsPort, listener: 'tls' }, 'one line names the TLS listener');

  const sub = await connectTls(t, tlsPort, 'tls-sub');
  t.equal(peerFingerprint(sub), fingerprint(certs.server.cert), 'the configured certificate is served');
  const inbox = new Inbox(sub);
  await sub.subscribeAsync('tls/#', { qos: 1 });
  const pub = await connectTls(t, tlsPort, 'tls-pub');
  await pub.publishAsync('tls/hello', 'over tls', { qos: 1 });
  t.match(await inbox.next(), { topic: 'tls/hello', payload: 'over tls', qos: 1 });

  // A plain TCP client shares the same broker.
  const plain = await mqtt.connectAsync({ port: tb.port, host: '127.0.0.1', clientId: 'tcp-pub', reconnectPeriod: 0 });
  t.teardown(() => plain.endAsync(true));
  await plain.publishAsync('tls/from-tcp', 'plain', { qos: 1 });
  t.match(await inbox.next(), { topic: 'tls/from-tcp', payload: 'plain' });

  const stats = await tb.stats();
  t.equal(stats.counters.connectionsAccepted.tls, 2, 'TLS connections counted under listener="tls"');
  t.equal(stats.counters.connectionsAccepted.tcp, 1, 'TCP ones under listener="tcp"');
});

t.test('mutual TLS (tlsClientCert require): only a certificate signed by the CA gets in', async (t) => {
  const tb = await startTlsBroker(t, { tlsCa: certs.ca, tlsClientCert: 'require' });
  const port = tb.ports.tls as number;

  const none = await refused(port, {});
  t.ok(none instanceof Error, `no certificate: refused (${none.message})`);
  const untrusted = await refused(port, {
    cert: readFileSync(certs.untrustedClient.cert),
    key: readFileSync(certs.untrustedClient.key),
  });
  t.ok(untrusted instanceof Error, `a certificate from another CA: refused (${untrusted.message})`);

  const client = await connectTls(t, port, 'mtls-client', {
    cert: readFileSync(certs.client.cert),
    key: readFileSync(certs.client.key),
  });
  const inbox = new Inbox(client);
  await client.subscribeAsync('mtls/echo', { qos: 1 });
  await client.publishAsync('mtls/echo', 'signed by the CA', { qos: 1 });
  t.match(await inbox.next(), { topic: 'mtls/echo', payload: 'signed by the CA' });

  const stats = await tb.stats();
  t.equal(stats.counters.connectionsAccepted.tls, 1, 'refused handshakes never became connections');
  t.equal(stats.gauges.clientsConnected, 1);
});

t.test('tlsCnAsUsername: the certificate CN is the user, and the ACL applies to it', async (t) => {
  const dir = tempDir(t);
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, 'topic read public/#\n\nuser device-17\ntopic readwrite devices/device-17/#\n');
  const tb = await startTlsBroker(t, {
    tlsCa: certs.ca,
    tlsClientCert: 'request',
    tlsCnAsUsername: true,
    aclFile,
  });
  const port = tb.ports.tls as number;
  const withCert = { cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) };

  // The CONNECT's user name is ignored: the certificate says who this is. No password needed.
  const device = await connectTls(t, port, 'cn-device', { ...withCert, username: 'admin' });
  t.same(
    await grants(device, { 'devices/device-17/#': { qos: 1 }, 'public/#': { qos: 1 } }),
    [1, 128],
    "device-17's own tree is granted; the anonymous section's public/# is not device-17's",
  );
  const inbox = new Inbox(device);
  await device.publishAsync('devices/device-17/state', 'on', { qos: 1 });
  t.match(await inbox.next(), { topic: 'devices/device-17/state', payload: 'on' });

  // Without a certificate ('request' lets it in): an anonymous client, with the anonymous rules.
  const anonymous = await connectTls(t, port, 'cn-anonymous');
  t.same(
    await grants(anonymous, { 'devices/device-17/#': { qos: 1 }, 'public/#': { qos: 0 } }),
    [128, 0],
    'no certificate: not device-17',
  );

  // A certificate from another CA with the same CN names nobody: anonymous too.
  const forged = await connectTls(t, port, 'cn-forged', {
    cert: readFileSync(certs.untrustedClient.cert),
    key: readFileSync(certs.untrustedClient.key),
  });
  t.same(
    await grants(forged, { 'devices/device-17/#': { qos: 1 } }),
    [128],
    'an unverified certificate grants nothing',
  );
});

t.test('tlsCnAsUsername with an auth plug-in: the certificate user is put to authenticate too', async (t) => {
  const dir = tempDir(t);
  const plugin = join(dir, 'revocations.mjs');
  // A plug-in that knows device-17's certificate is revoked.
  writeFileSync(
    plugin,
    'export async function authenticate({ username, password }) {\n' +
      "  return password === undefined && username === 'device-17' ? { allow: false, reason: 'revoked' } : true;\n" +
      '}\n',
  );
  const tb = await startTlsBroker(t, {
    tlsCa: certs.ca,
    tlsClientCert: 'request',
    tlsCnAsUsername: true,
    authPlugin: plugin,
  });
  const port = tb.ports.tls as number;
  const withCert = { cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) };
  const error = await refused(port, { ...withCert, clientId: 'revoked-device' });
  t.match(error.message, /Not authorized|not authorized|code 5|Connection refused/i, 'CONNACK 0x05');
  await tb.logs.waitFor((l) => l.msg === 'connection refused: the auth plug-in refused (revoked)');
  t.pass('logged with the reason');
});

t.test('a bad certificate file stops start-up with one line naming the key', async (t) => {
  const base = ['--host', '127.0.0.1', '--port', '0', '--no-metrics', '--tls-enabled', '--tls-port', '0'];
  const cases: Array<{ name: string; args: string[]; want: RegExp }> = [
    {
      name: 'a certificate that does not exist',
      args: ['--tls-cert', join(certs.dir, 'missing.crt'), '--tls-key', certs.server.key],
      want: /^tern: tlsCert = ".*missing\.crt": cannot read it \(ENOENT\)\n$/,
    },
    {
      name: 'a key given as the certificate',
      args: ['--tls-cert', certs.server.key, '--tls-key', certs.server.key],
      want: /^tern: tlsCert = ".*server\.key": not a PEM certificate \(.*\)\n$/,
    },
    {
      name: 'a key that belongs to another certificate',
      args: ['--tls-cert', certs.server.cert, '--tls-key', certs.secondServer.key],
      want: /^tern: tlsKey = ".*server2\.key": does not fit tlsCert \(.*\)\n$/,
    },
    {
      name: 'a CA file that does not exist',
      args: [
        '--tls-cert',
        certs.server.cert,
        '--tls-key',
        certs.server.key,
        '--tls-ca',
        join(certs.dir, 'nope.crt'),
        '--tls-client-cert',
        'require',
      ],
      want: /^tern: tlsCa = ".*nope\.crt": cannot read it \(ENOENT\)\n$/,
    },
    {
      name: 'TLS without a certificate',
      args: ['--tls-key', certs.server.key],
      want: /^tern: tlsCert is required when tlsEnabled is true/,
    },
  ];
  for (const c of cases) {
    const r = await tern([...base, ...c.args]);
    t.equal(r.code, 1, `${c.name}: exit 1`);
    t.match(r.stderr, c.want, `${c.name}: one line`);
  }
  const none = await tern(['--no-tcp-enabled', '--print-config']);
  t.equal(none.code, 1, 'no listener at all: exit 1');
  t.match(none.stderr, /^tern: no listener enabled/);
});

t.test('SIGHUP: new TLS connections get the new certificate, open ones stay', async (t) => {
  const dir = tempDir(t);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  copyFileSync(certs.server.cert, certFile);
  copyFileSync(certs.server.key, keyFile);
  const cli = await startCli([
    '--workers',
    '2',
    '--tls-enabled',
    '--tls-port',
    '0',
    '--tls-cert',
    certFile,
    '--tls-key',
    keyFile,
  ]);
  t.teardown(async () => {
    cli.child.kill('SIGTERM');
    await cli.exited;
  });
  const listening = await cli.waitForLog((l) => l.msg === 'listening' && l.protocol === 'mqtts');
  const port = listening.port as number;

  const old = await connectTls(t, port, 'before-reload');
  t.equal(peerFingerprint(old), fingerprint(certs.server.cert), 'the first certificate before the reload');
  const oldInbox = new Inbox(old);
  await old.subscribeAsync('reload/#', { qos: 1 });

  copyFileSync(certs.secondServer.cert, certFile);
  copyFileSync(certs.secondServer.key, keyFile);
  cli.child.kill('SIGHUP');
  const reloaded = await cli.waitForLog((l) => l.msg === 'TLS certificate reloaded');
  t.equal(reloaded.fingerprint256, fingerprint(certs.secondServer.cert), 'the reload line names the new certificate');

  // Each worker serves some of the new connections: every one gets the new certificate.
  for (let i = 0; i < 4; i++) {
    const fresh = await connectTls(t, port, `after-reload-${i}`);
    t.equal(peerFingerprint(fresh), fingerprint(certs.secondServer.cert), `new connection ${i}: the new certificate`);
    await fresh.publishAsync('reload/new', `from ${i}`, { qos: 1 });
    t.match(await oldInbox.next(), { topic: 'reload/new', payload: `from ${i}` }, 'reaches the old connection');
  }
  t.equal(
    peerFingerprint(old),
    fingerprint(certs.server.cert),
    'the open connection keeps its session and certificate',
  );
  await old.publishAsync('reload/old', 'still here', { qos: 1 });
  t.match(await oldInbox.next(), { topic: 'reload/old', payload: 'still here' }, 'and still works');

  // A broken file at reload: one error line, the certificate in force stays.
  writeFileSync(certFile, 'not a certificate\n');
  cli.child.kill('SIGHUP');
  const refusedLine = await cli.waitForLog((l) => l.msg.startsWith('TLS certificate reload refused'));
  t.match(refusedLine.msg, /tlsCert = ".*cert\.pem": not a PEM certificate/);
  const after = await connectTls(t, port, 'after-bad-reload');
  t.equal(peerFingerprint(after), fingerprint(certs.secondServer.cert), 'the previous certificate stays in force');
});
