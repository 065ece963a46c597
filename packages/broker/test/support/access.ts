/**
 * Helpers for the authentication and ACL tests: password files written with cheap scrypt
 * parameters (the format and the check are the real ones), loopback source addresses so
 * each test's failed logins count against an address of its own, and a reload that resolves
 * once every worker has read the files again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatHash, hashPassword } from '@tern/broker';
import type { Packet } from '@tern/protocol';
import { RawClient, type TestBroker } from '@tern/testkit';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** Cheap parameters for test users: the same code path as the default, a fraction of the time. */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

export function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-access-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a password file with `users` (name -> password). */
export async function writePasswordFile(
  file: string,
  users: Record<string, string>,
  params: { N: number; r: number; p: number } = TEST_SCRYPT,
): Promise<void> {
  const lines = ['# test users'];
  for (const [user, password] of Object.entries(users)) {
    lines.push(`${user}:${formatHash(await hashPassword(password, params))}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

let nextHost = 10;

/**
 * A loopback address no other connection of this test process uses (127.0.0.10, .11, ...):
 * connections from it are a separate remote address to the broker.
 */
export function freshAddress(): string {
  const n = nextHost++;
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}

type ConnectFields = Partial<Extract<Packet, { cmd: 'connect' }>>;

/** CONNECT with these fields from `localAddress` (a fresh one by default); resolves with the CONNACK code. */
export async function attempt(
  port: number,
  fields: ConnectFields & { password?: Buffer },
  localAddress = freshAddress(),
): Promise<{ client: RawClient; returnCode: number }> {
  const { client, connack } = await RawClient.connected(port, fields, localAddress);
  return { client, returnCode: connack.returnCode };
}

export const pw = (text: string): Buffer => Buffer.from(text);

/** An MQTT.js 3.1.1 client logged in as `username`, ended when the test ends. */
export async function connectAs(
  t: { teardown: (fn: () => unknown) => void },
  port: number,
  clientId: string,
  username?: string,
  password?: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = await mqtt.connectAsync({
    port,
    host: '127.0.0.1',
    clientId,
    username,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...extra,
  });
  t.teardown(() => client.endAsync(true));
  return client;
}

/**
 * Makes the broker read its password and ACL files again (what SIGHUP does) and resolves
 * once every routing worker has.
 */
export async function reloadAccess(tb: TestBroker): Promise<void> {
  if (tb.broker !== null) {
    tb.broker.applyConfig({ ...tb.broker.config });
    await tb.broker.accessReload;
    return;
  }
  const supervisor = tb.supervisor as NonNullable<TestBroker['supervisor']>;
  await supervisor.reload({ ...supervisor.config });
}
