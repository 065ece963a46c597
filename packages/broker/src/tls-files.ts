/**
 * The certificate, key and CA files of the TLS and WSS listeners: read and checked at start
 * (a bad one stops start-up with one line naming the key) and read again on SIGHUP, where a
 * bad one is reported and the certificate in use stays.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { TlsMaterial, TlsSettings } from '@tern/listener';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';

type TlsConfig = Pick<BrokerConfig, 'tlsEnabled' | 'wssEnabled' | 'tlsCert' | 'tlsKey' | 'tlsCa' | 'tlsClientCert'>;

/** A certificate, key or CA file that cannot be used; `message` is one line naming the key. */
export class TlsFileError extends Error {
  override readonly name = 'TlsFileError';
  readonly code = 'TERN_TLS_FILE';
}

/** What a reload of the files did (plain data: it crosses from routing workers' supervisor to logs). */
export type TlsReloadResult = { ok: true; material: TlsMaterial } | { ok: false; error: string };

/** Whether any listener needs the TLS files. */
export function tlsWanted(config: TlsConfig): boolean {
  return config.tlsEnabled || config.wssEnabled;
}

/** The settings a TLS or WSS server is made from. */
export function tlsSettings(config: TlsConfig, material: TlsMaterial): TlsSettings {
  return { ...material, clientCertificate: config.tlsClientCert };
}

async function readPem(key: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsFileError(`${key} = ${JSON.stringify(file)}: cannot read it (${e.code ?? e.message})`);
  }
}

function check(key: string, file: string, what: string, attempt: () => unknown): void {
  try {
    attempt();
  } catch (err) {
    throw new TlsFileError(`${key} = ${JSON.stringify(file)}: ${what} (${(err as Error).message})`);
  }
}

/** Reads and checks the files; throws TlsFileError naming the first bad one. */
export async function readTlsMaterial(config: TlsConfig): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    readPem('tlsCert', config.tlsCert),
    readPem('tlsKey', config.tlsKey),
    config.tlsCa === '' ? null : readPem('tlsCa', config.tlsCa),
  ]);
  // Checked one by one first, so the line names the file at fault rather than the context.
  check('tlsCert', config.tlsCert, 'not a PEM certificate', () => new X509Certificate(cert));
  check('tlsKey', config.tlsKey, 'not a PEM private key', () => createPrivateKey(key));
  if (ca !== null) check('tlsCa', config.tlsCa, 'not a PEM certificate', () => new X509Certificate(ca));
  check('tlsKey', config.tlsKey, 'does not fit tlsCert', () => createSecureContext({ cert, key }));
  return { cert, key, ca };
}

/** Reads the files again; a bad one changes nothing. Never throws. */
export async function reloadTlsMaterial(config: TlsConfig): Promise<TlsReloadResult> {
  try {
    return { ok: true, material: await readTlsMaterial(config) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Who the certificate names and until when, for the log lines. */
export function describeCertificate(material: TlsMaterial): Record<string, string> {
  const x509 = new X509Certificate(material.cert);
  return { subject: x509.subject.replaceAll('\n', ', '), validTo: x509.validTo, fingerprint256: x509.fingerprint256 };
}

/** One line: the certificate in use now, or why the old one stays. */
export function logTlsReload(log: Logger, result: TlsReloadResult): void {
  if (result.ok) log.info(describeCertificate(result.material), 'TLS certificate reloaded');
  else log.error(`TLS certificate reload refused, the previous one stays in force: ${result.error}`);
}
