/**
 * `tern passwd`: adds a user to a password file (or changes their password), or removes one.
 *
 *   tern passwd <file> <user>             the password comes from standard input: asked for
 *                                         twice without echo on a terminal, else its first line
 *   tern passwd --delete <file> <user>    removes the user
 *
 * The file is written whole to a temporary file beside it (mode 0600) and renamed over the
 * old one, so a broker reading it on SIGHUP sees the old file or the new one, never half of
 * one. Comments and the order of the other users are kept. Every failure is one line.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ReadStream } from 'node:tty';
import { formatHash, hashPassword, parseLine, userNameProblem } from './access/password-file.js';

export const PASSWD_HELP = `Usage: tern passwd <file> <user>            add a user or change their password
       tern passwd --delete <file> <user>   remove a user

The password is read from standard input: asked for twice, without echo, on a terminal;
otherwise the first line is taken. The file is created (mode 0600) if it does not exist.
Hashes are scrypt (N=16384, r=8, p=1) with a random 16-byte salt.
`;

class PasswdError extends Error {}

/** Runs the subcommand with its arguments (after `passwd`); returns the exit code. */
export async function runPasswd(argv: readonly string[]): Promise<number> {
  try {
    const args = [...argv];
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(PASSWD_HELP);
      return 0;
    }
    const del = args[0] === '--delete' || args[0] === '-D';
    if (del) args.shift();
    const [file, user, ...extra] = args;
    if (file === undefined || user === undefined || extra.length > 0 || file.startsWith('-')) {
      throw new PasswdError('usage: tern passwd [--delete] <file> <user> (see tern passwd --help)');
    }
    const problem = userNameProblem(user);
    if (problem !== null) throw new PasswdError(problem);
    const lines = await readLines(file, del);
    const at = lines.findIndex((line) => {
      const parsed = parseLine(line);
      return typeof parsed === 'object' && parsed !== null && parsed.user === user;
    });
    if (del) {
      if (at < 0) throw new PasswdError(`${file}: no user '${user}'`);
      lines.splice(at, 1);
    } else {
      const password = await readPassword();
      const line = `${user}:${formatHash(await hashPassword(password))}`;
      if (at < 0) lines.push(line);
      else lines[at] = line;
    }
    await writeAtomically(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message = err instanceof PasswdError ? e.message : `${e.message}${e.code ? '' : ' (unexpected error)'}`;
    process.stderr.write(`tern passwd: ${message}\n`);
    return 1;
  }
}

/** The file's lines, each checked (a damaged file is not rewritten); none when it does not exist yet. */
async function readLines(file: string, mustExist: boolean): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !mustExist) return [];
    throw new PasswdError(`${file}: cannot read it (${code ?? (err as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    const parsed = parseLine(line);
    if (typeof parsed === 'string') throw new PasswdError(`${file}: line ${i + 1}: ${parsed}`);
  });
  return lines;
}

async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  let password: string;
  if (stdin.isTTY) {
    password = await promptHidden(stdin as ReadStream, 'Password: ');
    const again = await promptHidden(stdin as ReadStream, 'Password again: ');
    if (again !== password) throw new PasswdError('the passwords do not match');
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.length === 0) throw new PasswdError('no password on standard input');
    password = (text.split('\n')[0] as string).replace(/\r$/, '');
  }
  if (password.length === 0) throw new PasswdError('the password is empty');
  // The CONNECT password field holds at most 65535 bytes.
  if (Buffer.byteLength(password) > 65_535) throw new PasswdError('the password is longer than 65535 bytes');
  return password;
}

/** Reads one line from the terminal without echoing it (the prompt goes to stderr). */
function promptHidden(tty: ReadStream, prompt: string): Promise<string> {
  // Echo off before the prompt shows: nothing typed after it is ever echoed.
  tty.setRawMode(true);
  tty.setEncoding('utf8');
  tty.resume();
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      tty.off('data', onData);
      tty.setRawMode(false);
      tty.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && value.length === 0)) {
          finish();
          reject(new PasswdError('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    tty.on('data', onData);
  });
}

/** Writes `text` to a temporary file beside `file` (mode 0600), then renames it over `file`. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(temp, 'wx', 0o600);
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
    handle = null;
    // The mode given to open() is reduced by the umask; the file holds hashes: owner only.
    await chmod(temp, 0o600);
    await rename(temp, file);
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    const e = err as NodeJS.ErrnoException;
    throw new PasswdError(`${file}: cannot write it (${e.code ?? e.message})`);
  }
}
