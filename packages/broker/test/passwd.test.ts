/**
 * `tern passwd` (adding, replacing and removing users in a password file, written atomically
 * with mode 0600) and the password and ACL files in the `tern` command: the start-up line, a
 * bad file stopping start-up, and SIGHUP reading them again.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePasswordFile, verifyPassword } from '@tern/broker';
import { RawClient } from '@tern/testkit';
import t from 'tap';
import { attempt, pw, tempDir, writePasswordFile } from './support/access.js';
import { CLI, cleanEnv, type Running, startCli, tern } from './support/cli.js';
import { type Exit, run } from './support/mqttjs.js';

/** Runs `tern passwd args...` with `input` on its standard input (a pipe, not a terminal). */
function passwd(args: readonly string[], input = ''): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'passwd', ...args], { env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const HASH_LINE = /^(\w+):\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

t.test('tern passwd', async (t) => {
  await t.test('adds a user: a new file, mode 0600, one scrypt line the broker can check', async (t) => {
    const file = join(tempDir(t), 'passwords');
    const r = await passwd([file, 'alice'], 'alice-pw\n');
    t.same(r, { code: 0, stdout: '', stderr: '' });
    const text = readFileSync(file, 'utf8');
    t.match(text.trimEnd(), HASH_LINE);
    t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');
    const entry = parsePasswordFile(text, file).get('alice');
    t.ok(entry !== undefined && (await verifyPassword(entry, pw('alice-pw'))), 'the password checks');
    t.notOk(entry !== undefined && (await verifyPassword(entry, pw('alice-pw\n'))), 'without the line break');
  });

  await t.test('an existing user gets a new hash in place; comments and other users are kept', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'passwords');
    await writePasswordFile(file, { alice: 'old', bob: 'bob-pw' });
    const before = readFileSync(file, 'utf8').split('\n');
    const r = await passwd([file, 'alice'], 'new\r\nignored second line\n');
    t.equal(r.code, 0, r.stderr);
    const after = readFileSync(file, 'utf8').split('\n');
    t.equal(after.length, before.length, 'no line added');
    t.equal(after[0], '# test users', 'the comment stays');
    t.not(after[1], before[1], "alice's line changed");
    t.match(after[1], HASH_LINE);
    t.equal(after[2], before[2], "bob's line is untouched");
    const table = parsePasswordFile(after.join('\n'), file);
    t.ok(await verifyPassword(table.get('alice') as NonNullable<ReturnType<typeof table.get>>, pw('new')));
    t.same(readdirSync(dir), ['passwords'], 'no temporary file left behind');
  });

  await t.test('--delete removes a user', async (t) => {
    const file = join(tempDir(t), 'passwords');
    await writePasswordFile(file, { alice: 'a', bob: 'b' });
    const r = await passwd(['--delete', file, 'alice']);
    t.same(r, { code: 0, stdout: '', stderr: '' });
    t.same([...parsePasswordFile(readFileSync(file, 'utf8'), file).keys()], ['bob']);
    t.equal(statSync(file).mode & 0o777, 0o600);
  });

  await t.test('every failure is one line and exit code 1; the file is left as it was', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'passwords');
    await writePasswordFile(file, { alice: 'a' });
    const original = readFileSync(file, 'utf8');
    const broken = join(dir, 'broken');
    writeFileSync(broken, '# users\nalice:plain-text\n');
    const cases: Array<{ args: string[]; input?: string; want: string }> = [
      { args: [file], want: 'tern passwd: usage: tern passwd [--delete] <file> <user> (see tern passwd --help)' },
      { args: [file, 'a:b'], input: 'x\n', want: "tern passwd: user name 'a:b' contains ':'" },
      { args: [file, 'carol'], want: 'tern passwd: no password on standard input' },
      { args: [file, 'carol'], input: '\n', want: 'tern passwd: the password is empty' },
      { args: ['--delete', file, 'carol'], want: `tern passwd: ${file}: no user 'carol'` },
      {
        args: ['--delete', join(dir, 'none'), 'alice'],
        want: `tern passwd: ${join(dir, 'none')}: cannot read it (ENOENT)`,
      },
      {
        args: [broken, 'bob'],
        input: 'x\n',
        want: `tern passwd: ${broken}: line 2: expected $scrypt$N=<n>,r=<n>,p=<n>$<salt>$<hash>`,
      },
    ];
    for (const c of cases) {
      const r = await passwd(c.args, c.input);
      t.equal(r.code, 1, c.args.join(' '));
      t.equal(r.stdout, '');
      t.equal(r.stderr, `${c.want}\n`);
    }
    t.equal(readFileSync(file, 'utf8'), original, 'unchanged');
    t.same(readdirSync(dir).sort(), ['broken', 'passwords'], 'no temporary file left behind');
  });

  // script(1) gives the command a pseudo-terminal.
  const noScript = (await run('sh', ['-c', 'command -v script'])).code !== 0;
  await t.test(
    'on a terminal: asked for twice, never echoed',
    { skip: noScript && 'script(1) is not installed' },
    async (t) => {
      const file = join(tempDir(t), 'passwords');
      // Each answer is typed once its prompt shows (echo is off by then).
      const child = spawn('script', ['-qec', `${process.execPath} ${CLI} passwd ${file} alice`, '/dev/null'], {
        env: cleanEnv(),
      });
      t.teardown(() => child.kill('SIGKILL'));
      let screen = '';
      let answered = 0;
      child.stdout.on('data', (c: Buffer) => {
        screen += c.toString();
        const prompts = screen.split('Password').length - 1;
        while (answered < prompts) {
          answered++;
          child.stdin.write('tty-secret\r');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      t.equal(code, 0, screen);
      t.match(screen, /Password: [\s\S]*Password again: /, 'two prompts');
      t.notMatch(screen, /tty-secret/, 'the password never appears on the terminal');
      const entry = parsePasswordFile(readFileSync(file, 'utf8'), file).get('alice');
      t.ok(entry !== undefined && (await verifyPassword(entry, pw('tty-secret'))), 'the typed password is stored');
    },
  );

  await t.test('--help, and the broker help names the subcommand', async (t) => {
    const r = await passwd(['--help']);
    t.equal(r.code, 0);
    t.match(r.stdout, /^Usage: tern passwd <file> <user>/);
    const help = await tern(['--help']);
    t.match(help.stdout, /tern passwd <file> <user>/);
    t.match(help.stdout, /--password-file <f>/);
    t.match(help.stdout, /--acl-file <f>/);
  });
});

t.test('the tern command with a password file and an ACL', async (t) => {
  const killed = (running: Running): Running => {
    t.teardown(() => running.child.kill('SIGKILL'));
    return running;
  };

  await t.test('a missing or bad file stops start-up with one line', async (t) => {
    const dir = tempDir(t);
    const missing = join(dir, 'missing');
    const r = await tern(['--port', '0', '--no-metrics', '--password-file', missing]);
    t.equal(r.code, 1);
    t.equal(r.stderr, `tern: password file ${missing}: cannot read it (ENOENT)\n`);
    const acl = join(dir, 'acl');
    writeFileSync(acl, '# rules\ntopic read a/#/b\n');
    const bad = await tern(['--port', '0', '--no-metrics', '--acl-file', acl]);
    t.equal(bad.code, 1);
    t.equal(bad.stderr, `tern: ACL file ${acl}: line 2: 'a/#/b' is not a valid topic filter\n`);
  });

  await t.test('start-up says whether anonymous clients get in; SIGHUP reads both files again', async (t) => {
    const dir = tempDir(t);
    const passwordFile = join(dir, 'passwords');
    const aclFile = join(dir, 'acl');
    await writePasswordFile(passwordFile, { alice: 'alice-pw' });
    writeFileSync(aclFile, 'user alice\ntopic readwrite alice/#\n');
    const cli = killed(await startCli(['--password-file', passwordFile, '--acl-file', aclFile]));
    const policy = await cli.waitForLog((l) => l.msg.startsWith('anonymous access'));
    t.equal(policy.msg, 'anonymous access refused: a password file is configured (allowAnonymous: auto)');
    t.match(policy, { users: 1, aclRules: 1 });

    const alice = await attempt(cli.port, { clientId: 'alice', username: 'alice', password: pw('alice-pw') });
    t.teardown(() => alice.client.destroy());
    t.equal(alice.returnCode, 0);
    const carolBefore = await attempt(cli.port, { clientId: 'carol-0', username: 'carol', password: pw('carol-pw') });
    t.equal(carolBefore.returnCode, 0x04, 'carol is not a user yet');

    t.equal((await passwd([passwordFile, 'carol'], 'carol-pw\n')).code, 0);
    writeFileSync(aclFile, 'user alice\ntopic readwrite alice/#\nuser carol\ntopic read alice/#\n');
    cli.child.kill('SIGHUP');
    const reloaded = await cli.waitForLog((l) => l.msg.startsWith('access files reloaded'));
    t.equal(reloaded.msg, 'access files reloaded: 1 user added, ACL rules changed (1 -> 2)');
    t.same(reloaded.usersAdded, ['carol']);

    const carol = await attempt(cli.port, { clientId: 'carol', username: 'carol', password: pw('carol-pw') });
    t.teardown(() => carol.client.destroy());
    t.equal(carol.returnCode, 0, 'carol gets in after the reload');
    carol.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'alice/#', qos: 0 }] });
    t.same((await carol.client.expect('suback')).granted, [0], 'with the new ACL');
    alice.client.send({ cmd: 'pingreq' });
    await alice.client.expect('pingresp');
    t.pass("alice's connection kept running through the reload");
    const anon = await RawClient.connected(cli.port, { clientId: 'anon' });
    t.equal(anon.connack.returnCode, 0x05, 'anonymous clients are still refused');
  });
});
