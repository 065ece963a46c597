/**
 * The password file: one user per line, a salted scrypt hash with its parameters, so a
 * stolen file costs an attacker a slow, memory-hard computation per guess:
 *
 *   alice:$scrypt$N=16384,r=8,p=1$<salt, base64>$<hash, base64>
 *
 * Blank lines and lines starting with `#` are ignored. Verification runs scrypt in libuv's
 * thread pool (the callback API), so a worker's event loop never waits for it.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** A configuration file of the access layer cannot be used: stops start-up, refuses a reload. */
export class AccessFileError extends Error {
  override readonly name = 'AccessFileError';
  readonly code = 'TERN_ACCESS_FILE';
}

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

export interface PasswordEntry extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

/** Cost of new hashes: 16 MiB and about 50 ms per check on a current core (OWASP's minimum for scrypt). */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 16_384, r: 8, p: 1 });
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** The most memory one check may take (128 x N x r bytes): a file cannot make a login cost more. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PARAMS = /^N=(\d+),r=(\d+),p=(\d+)$/;

/** Users and their hashes, by user name. */
export type PasswordTable = Map<string, PasswordEntry>;

/** Why a user name cannot be stored, or null when it can. */
export function userNameProblem(user: string): string | null {
  if (user.length === 0) return 'the user name is empty';
  if (user.includes(':')) return `user name '${user}' contains ':'`;
  if (/[\r\n]/.test(user)) return 'the user name contains a line break';
  if (Buffer.byteLength(user) > 65_535) return 'the user name is longer than 65535 bytes';
  return null;
}

/** Checks scrypt parameters read from a file; returns why they are unusable, or null. */
function paramsProblem({ N, r, p }: ScryptParams): string | null {
  if (N < 2 || N > 2 ** 24 || (N & (N - 1)) !== 0) return `N=${N} is not a power of two in 2..2^24`;
  if (r < 1 || r > 64) return `r=${r} is not in 1..64`;
  if (p < 1 || p > 16) return `p=${p} is not in 1..16`;
  if (128 * N * r > MAX_SCRYPT_MEMORY) return `N=${N},r=${r} needs more than 256 MiB per check`;
  return null;
}

/** One line's hash part (`$scrypt$...`), or a reason it is not one. */
export function parseHash(text: string): PasswordEntry | string {
  const parts = text.split('$');
  if (parts.length !== 5 || parts[0] !== '') return 'expected $scrypt$N=<n>,r=<n>,p=<n>$<salt>$<hash>';
  if (parts[1] !== 'scrypt') return `unknown hash algorithm '${parts[1]}' (expected scrypt)`;
  const m = PARAMS.exec(parts[2] as string);
  if (m === null) return `bad scrypt parameters '${parts[2]}' (expected N=<n>,r=<n>,p=<n>)`;
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const problem = paramsProblem(params);
  if (problem !== null) return problem;
  const [salt, hash] = [parts[3] as string, parts[4] as string];
  if (!BASE64.test(salt) || !BASE64.test(hash)) return 'salt and hash must be base64';
  const entry = { ...params, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
  if (entry.salt.length < 8) return 'the salt is shorter than 8 bytes';
  if (entry.hash.length < 16) return 'the hash is shorter than 16 bytes';
  return entry;
}

export function formatHash(entry: PasswordEntry): string {
  return `$scrypt$N=${entry.N},r=${entry.r},p=${entry.p}$${entry.salt.toString('base64')}$${entry.hash.toString('base64')}`;
}

/** One line of the file: a user or nothing (blank, comment), or a reason it is neither. */
export function parseLine(line: string): { user: string; entry: PasswordEntry } | null | string {
  const text = line.trim();
  if (text.length === 0 || text.startsWith('#')) return null;
  const colon = text.indexOf(':');
  if (colon <= 0) return 'expected <user>:$scrypt$...';
  const entry = parseHash(text.slice(colon + 1));
  if (typeof entry === 'string') return entry;
  return { user: text.slice(0, colon), entry };
}

/** Parses a whole file; `file` names it in the one-line error. */
export function parsePasswordFile(text: string, file: string): PasswordTable {
  const table: PasswordTable = new Map();
  const firstLine = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const parsed = parseLine(lines[i] as string);
    if (parsed === null) continue;
    if (typeof parsed === 'string') throw new AccessFileError(`password file ${file}: line ${i + 1}: ${parsed}`);
    const seen = firstLine.get(parsed.user);
    if (seen !== undefined) {
      throw new AccessFileError(
        `password file ${file}: line ${i + 1}: user '${parsed.user}' is already on line ${seen}`,
      );
    }
    firstLine.set(parsed.user, i + 1);
    table.set(parsed.user, parsed.entry);
  }
  return table;
}

function derive(password: Buffer | string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 x N x r bytes (plus a little); Node's default cap is 32 MiB.
    const options = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r };
    scrypt(password, salt, length, options, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

/** A new salted hash of `password`. */
export async function hashPassword(
  password: Buffer | string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<PasswordEntry> {
  const salt = randomBytes(SALT_BYTES);
  return { ...params, salt, hash: await derive(password, salt, HASH_BYTES, params) };
}

/** Whether `password` matches `entry`, compared in constant time. */
export async function verifyPassword(entry: PasswordEntry, password: Buffer): Promise<boolean> {
  const key = await derive(password, entry.salt, entry.hash.length, entry);
  return timingSafeEqual(key, entry.hash);
}

/**
 * What an unknown user's password is checked against, so that a wrong user name takes as
 * long as a wrong password and the answer does not tell which user names exist.
 */
export const UNKNOWN_USER: PasswordEntry = {
  ...DEFAULT_SCRYPT,
  salt: randomBytes(SALT_BYTES),
  hash: randomBytes(HASH_BYTES),
};
