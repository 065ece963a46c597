import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG, VERSION } from '@tern/broker';
import { RawClient } from '@tern/testkit';
import t from 'tap';
import { startCli, tern } from './support/cli.js';
import { run } from './support/mqttjs.js';

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);

t.test('tern command line', async (t) => {
  await t.test('--help prints the usage and exits 0', async (t) => {
    for (const flag of ['--help', '-h']) {
      const r = await tern([flag]);
      t.equal(r.code, 0, flag);
      t.match(r.stdout, /^Usage: tern \[options\]/);
      t.match(r.stdout, /--max-inflight <n>/);
      t.equal(r.stderr, '');
    }
  });

  await t.test('--version prints the package version', async (t) => {
    const r = await tern(['--version']);
    t.equal(r.code, 0);
    t.equal(r.stdout, `tern ${VERSION}\n`);
  });

  await t.test('--print-config: defaults < config file < TERN_* env < flags', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tern-cli-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'tern.json');
    writeFileSync(file, JSON.stringify({ port: 1111, maxInflight: 7, logLevel: 'warn' }));

    const plain = await tern(['--print-config']);
    t.equal(plain.code, 0);
    t.same(JSON.parse(plain.stdout), DEFAULT_CONFIG, 'the defaults');

    const layered = await tern(['--print-config', '--config', file, '--port', '3333'], {
      TERN_PORT: '2222',
      TERN_MAX_QUEUED: '5',
      TERN_LOG_LEVEL: 'debug',
    });
    t.equal(layered.code, 0);
    t.same(JSON.parse(layered.stdout), {
      ...DEFAULT_CONFIG,
      port: 3333,
      maxInflight: 7,
      maxQueued: 5,
      logLevel: 'debug',
    });
  });

  await t.test('config/tern.example.json lists every key with its default', async (t) => {
    const example = fileURLToPath(new URL('../../../config/tern.example.json', import.meta.url));
    const keys = Object.keys(JSON.parse(readFileSync(example, 'utf8')) as object);
    t.same([...keys].sort(), [...Object.keys(DEFAULT_CONFIG)].sort(), 'the same keys as the code');
    // The node name's and the worker count's defaults depend on the machine; the example shows
    // placeholders.
    const r = await tern([
      '--print-config',
      '--config',
      example,
      '--node-name',
      DEFAULT_CONFIG.nodeName,
      '--workers',
      String(DEFAULT_CONFIG.workers),
    ]);
    t.equal(r.code, 0, r.stderr);
    t.same(JSON.parse(r.stdout), DEFAULT_CONFIG, 'the same values as the code');
  });

  await t.test('booleans: a flag alone is true, --no-<flag> is false, env takes true/false', async (t) => {
    const on = await tern(['--print-config', '--log-pretty', '--no-metrics']);
    t.match(JSON.parse(on.stdout), { logPretty: true, metrics: false });
    const env = await tern(['--print-config'], { TERN_METRICS: 'false', TERN_LOG_PRETTY: 'yes' });
    t.match(JSON.parse(env.stdout), { logPretty: true, metrics: false });
    const bad = await tern(['--print-config'], { TERN_METRICS: 'maybe' });
    t.equal(bad.code, 1);
    t.equal(bad.stderr, 'tern: TERN_METRICS: metrics = "maybe" is not valid: expected true or false\n');
  });

  await t.test('an unknown option: exit 1, one line naming it', async (t) => {
    const r = await tern(['--bogus-flag']);
    t.equal(r.code, 1);
    t.equal(r.stdout, '');
    t.equal(lines(r.stderr).length, 1);
    t.match(r.stderr, /--bogus-flag: unknown option/);
  });

  await t.test('a bad value: exit 1, one line naming the key, the value and what is allowed', async (t) => {
    const cases: Array<{ args: string[]; env?: Record<string, string>; want: RegExp }> = [
      { args: ['--port', '70000'], want: /--port: port = "70000" is not valid: expected an integer in 0\.\.65535/ },
      {
        args: ['--queue-overflow', 'maybe'],
        want: /--queue-overflow: queueOverflow = "maybe" is not valid: expected one of drop-oldest, drop-new/,
      },
      {
        args: [],
        env: { TERN_MAX_INFLIGHT: '0' },
        want: /TERN_MAX_INFLIGHT: maxInflight = "0" is not valid: expected an integer in 1\.\.65535/,
      },
      { args: ['--port'], want: /--port: missing value/ },
    ];
    for (const c of cases) {
      const r = await tern(c.args, c.env);
      t.equal(r.code, 1, c.args.join(' ') || JSON.stringify(c.env));
      t.equal(lines(r.stderr).length, 1, 'one line');
      t.match(r.stderr, c.want);
    }
  });

  await t.test('an unknown key in the config file: exit 1, naming the key', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tern-cli-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'tern.json');
    writeFileSync(file, JSON.stringify({ port: 0, maxInfligth: 10 }));
    const r = await tern(['--config', file]);
    t.equal(r.code, 1);
    t.equal(lines(r.stderr).length, 1);
    t.match(r.stderr, /unknown key 'maxInfligth'/);
    t.match(r.stderr, file);

    writeFileSync(file, '{ not json');
    const broken = await tern(['--config', file]);
    t.equal(broken.code, 1);
    t.equal(lines(broken.stderr).length, 1, 'a file that is not JSON: one line too');
  });

  await t.test('a port already in use: exit 1, one line', async (t) => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const r = await tern(['--host', '127.0.0.1', '--port', String(port)]);
    t.equal(r.code, 1);
    t.equal(lines(r.stderr).length, 1);
    t.match(r.stderr, `cannot listen on 127.0.0.1:${port}: address already in use`);
  });

  await t.test('SIGTERM: logs shutting down, closes the connections and exits 0', async (t) => {
    const { child, port, logs, exited } = await startCli();
    t.teardown(() => child.kill('SIGKILL'));
    const { client } = await RawClient.connected(port, { clientId: 'cli-connected' });
    t.teardown(() => client.destroy());
    child.kill('SIGTERM');
    t.same(await exited, { code: 0, signal: null });
    await client.waitClosed();
    t.ok(
      logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
      'shutting down line',
    );
  });

  await t.test('mosquitto_pub -> mosquitto_sub, QoS 1, through the CLI broker', async (t) => {
    const { child, port } = await startCli();
    t.teardown(() => child.kill('SIGKILL'));
    const base = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-q', '1', '-t', 'cli/round-trip'];
    // Line-buffered, so the SUBACK line is seen when it happens, not at exit.
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...base, '-d', '-C', '1', '-W', '10'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => sub.kill('SIGKILL'));
    const subExit = new Promise<number | null>((resolve) => sub.once('exit', (code) => resolve(code)));
    const subOut: string[] = [];
    // -d prints the protocol exchange: publish only once the SUBACK is in.
    await new Promise<void>((resolve) => {
      createInterface({ input: sub.stdout }).on('line', (line) => {
        subOut.push(line);
        if (line.includes('received SUBACK')) resolve();
      });
    });
    const pub = await run('mosquitto_pub', [...base, '-d', '-m', 'hello tern']);
    t.equal(pub.code, 0, 'mosquitto_pub exits 0');
    t.match(pub.stdout, /received PUBACK/, 'the broker acknowledged the QoS 1 PUBLISH');
    t.equal(await subExit, 0, 'mosquitto_sub got its one message');
    t.ok(
      subOut.some((l) => /received PUBLISH \(d0, q1, r0, m\d+, 'cli\/round-trip'/.test(l)),
      'delivered at QoS 1',
    );
    t.ok(
      subOut.some((l) => l.includes('sending PUBACK')),
      'and acknowledged',
    );
    t.ok(subOut.includes('hello tern'), 'the payload');
    child.kill('SIGTERM');
  });
});
