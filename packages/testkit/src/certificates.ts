/**
 * Test certificates made at test time with the `openssl` command: a CA, two server
 * certificates for 127.0.0.1 and localhost (the second for reload tests), a client
 * certificate signed by the CA, and one signed by nobody the broker trusts. EC P-256 keys:
 * quick to make. Valid for two days.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a PEM certificate and its unencrypted key. */
export interface CertificatePair {
  cert: string;
  key: string;
}

export interface TestCertificates {
  /** The directory holding every file (removed by remove()). */
  dir: string;
  /** The CA certificate (PEM path): what the broker checks client certificates against. */
  ca: string;
  /** Server certificate for 127.0.0.1 and localhost, signed by the CA (CN "tern test server"). */
  server: CertificatePair;
  /** Another one, with CN "tern test server 2": a certificate to reload to. */
  secondServer: CertificatePair;
  /** Client certificate signed by the CA, CN = `clientUser`. */
  client: CertificatePair;
  /** The CN of `client`. */
  clientUser: string;
  /** A self-signed client certificate (CN = `clientUser` too): not trusted by the broker. */
  untrustedClient: CertificatePair;
  remove(): void;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { timeout: 30_000 });
}

/** A certificate signed by the CA at `dir`/ca.*, with `extensions` (openssl -addext values). */
async function signed(dir: string, name: string, cn: string, extensions: string[]): Promise<CertificatePair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const caArgs = ['-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key')];
  const add = extensions.flatMap((e) => ['-addext', e]);
  await openssl([
    'req',
    '-x509',
    ...KEY,
    ...caArgs,
    '-keyout',
    pair.key,
    '-out',
    pair.cert,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    ...add,
  ]);
  return pair;
}

/** Makes the certificates in a fresh temporary directory. */
export async function makeTestCertificates(options: { clientUser?: string } = {}): Promise<TestCertificates> {
  const clientUser = options.clientUser ?? 'device-17';
  const dir = mkdtempSync(join(tmpdir(), 'tern-certs-'));
  try {
    const ca = join(dir, 'ca.crt');
    await openssl([
      'req',
      '-x509',
      ...KEY,
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      ca,
      '-days',
      '2',
      '-subj',
      '/CN=Tern Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const serverExtensions = [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=critical,CA:FALSE',
      'extendedKeyUsage=serverAuth',
    ];
    const clientExtensions = ['basicConstraints=critical,CA:FALSE', 'extendedKeyUsage=clientAuth'];
    const [server, secondServer, client] = await Promise.all([
      signed(dir, 'server', 'tern test server', serverExtensions),
      signed(dir, 'server2', 'tern test server 2', serverExtensions),
      signed(dir, 'client', clientUser, clientExtensions),
    ]);
    const untrustedClient = { cert: join(dir, 'untrusted.crt'), key: join(dir, 'untrusted.key') };
    await openssl([
      'req',
      '-x509',
      ...KEY,
      '-keyout',
      untrustedClient.key,
      '-out',
      untrustedClient.cert,
      '-days',
      '2',
      '-subj',
      `/CN=${clientUser}`,
    ]);
    return {
      dir,
      ca,
      server,
      secondServer,
      client,
      clientUser,
      untrustedClient,
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
