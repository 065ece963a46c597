/**
 * Who may connect, and as whom: the password file, the anonymous rule, the ACL file, and the
 * throttle that slows an address guessing passwords. Each broker (each routing worker) holds
 * one Access and loads the files itself; a reload reads them again and swaps the tables only
 * when both files are valid.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnackReturnCode } from '@tern/protocol';
import type { BrokerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { AclRules, parseAclFile } from './acl.js';
import {
  AccessFileError,
  type PasswordEntry,
  type PasswordTable,
  parsePasswordFile,
  UNKNOWN_USER,
  verifyPassword,
} from './password-file.js';
import { type AuthPlugin, loadAuthPlugin } from './plugin.js';
import { AuthThrottle, addressKey } from './throttle.js';

type AccessConfig = Pick<BrokerConfig, 'passwordFile' | 'aclFile' | 'allowAnonymous'> &
  Partial<Pick<BrokerConfig, 'authPlugin' | 'authPluginTimeoutMs'>>;

export interface AccessTables {
  /** Users from the password file; null when none is configured. */
  passwords: PasswordTable | null;
  /** The ACL; null when no ACL file is configured (everything is allowed). */
  acl: AclRules | null;
}

/** The result of a CONNECT's check. A refusal names its CONNACK code and metric reason. */
export type AuthOutcome =
  | { ok: true; user: string | null; delayedMs: number }
  | {
      ok: false;
      returnCode: number;
      reason: 'bad-credentials' | 'not-authorized';
      why: string;
      delayedMs: number;
      /** Set when the auth plug-in refused: it said no ('denied') or threw or timed out ('failed'). */
      plugin?: 'denied' | 'failed';
    };

/** What a reload did, as plain data (it crosses from routing workers to the supervisor). */
export type AccessReloadResult =
  | {
      ok: true;
      /** One phrase per change ("1 user added", "ACL rules changed (3 -> 4)"); empty: nothing changed. */
      changes: string[];
      usersAdded: string[];
      usersRemoved: string[];
      usersChanged: string[];
      anonymous: boolean;
    }
  | { ok: false; error: string };

/** Whether anonymous clients get in under `config`, and why, in words for the log. */
export function anonymousPolicy(config: AccessConfig): { allowed: boolean; why: string } {
  const withFile = config.passwordFile !== '';
  if (config.allowAnonymous === 'auto') {
    return withFile
      ? { allowed: false, why: 'a password file is configured (allowAnonymous: auto)' }
      : { allowed: true, why: 'no password file is configured (allowAnonymous: auto)' };
  }
  if (config.allowAnonymous) return { allowed: true, why: 'allowAnonymous is true' };
  return withFile
    ? { allowed: false, why: 'allowAnonymous is false' }
    : { allowed: false, why: 'allowAnonymous is false and no password file is configured: every CONNECT is refused' };
}

async function readText(kind: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new AccessFileError(`${kind} ${file}: cannot read it (${e.code ?? e.message})`);
  }
}

/** Reads and checks both files (throws AccessFileError with one line naming the file and line). */
export async function loadAccessTables(config: AccessConfig): Promise<AccessTables> {
  const [passwords, acl] = await Promise.all([
    config.passwordFile === ''
      ? null
      : readText('password file', config.passwordFile).then((t) => parsePasswordFile(t, config.passwordFile)),
    config.aclFile === '' ? null : readText('ACL file', config.aclFile).then((t) => parseAclFile(t, config.aclFile)),
  ]);
  return { passwords, acl };
}

/** Logs the start-up line: whether anonymous clients get in, and why. */
export function logAccessPolicy(log: Logger, config: AccessConfig, tables: AccessTables): void {
  const { allowed, why } = anonymousPolicy(config);
  const fields = {
    allowAnonymous: config.allowAnonymous,
    passwordFile: config.passwordFile || null,
    users: tables.passwords?.size ?? null,
    aclFile: config.aclFile || null,
    aclRules: tables.acl?.size ?? null,
  };
  const everyoneRefused = !allowed && tables.passwords === null;
  log[everyoneRefused ? 'warn' : 'info'](fields, `anonymous access ${allowed ? 'allowed' : 'refused'}: ${why}`);
}

/** Logs what a reload of the files did (`level` info for the node's line, debug for a worker's). */
export function logAccessReload(log: Logger, result: AccessReloadResult, level: 'info' | 'debug' = 'info'): void {
  if (!result.ok) {
    log.error(`access files reload refused, the previous ones stay in force: ${result.error}`);
    return;
  }
  const { usersAdded, usersRemoved, usersChanged } = result;
  const fields = { usersAdded, usersRemoved, usersChanged, anonymous: result.anonymous };
  const summary = result.changes.length === 0 ? 'nothing changed' : result.changes.join(', ');
  log[level](fields, `access files reloaded: ${summary}`);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function sameEntry(a: PasswordEntry, b: PasswordEntry): boolean {
  return a.N === b.N && a.r === b.r && a.p === b.p && a.salt.equals(b.salt) && a.hash.equals(b.hash);
}

export class Access {
  passwords: PasswordTable | null = null;
  acl: AclRules | null = null;
  /** The auth plug-in (authPlugin), imported by load(); null when none is configured. */
  plugin: AuthPlugin | null = null;
  /** Whether a CONNECT without a (verifiable) user name gets in. */
  anonymous: boolean;
  readonly throttle = new AuthThrottle();
  /** Told of every failed attempt (a routing worker shares it with the others). */
  onFailure: ((address: string) => void) | null = null;
  private generation = 0;

  /**
   * Until load() the tables are empty but in force: a configured password file admits
   * nobody, a configured ACL allows nothing.
   */
  constructor(config: AccessConfig) {
    this.anonymous = anonymousPolicy(config).allowed;
    if (config.passwordFile !== '') this.passwords = new Map();
    if (config.aclFile !== '') this.acl = new AclRules();
  }

  /** Reads the files of `config` and puts them in force; throws AccessFileError when one is bad. */
  async load(config: AccessConfig): Promise<AccessTables> {
    // The plug-in is imported once: a module cannot be imported afresh (authPlugin needs a restart).
    if (this.plugin === null && config.authPlugin !== undefined && config.authPlugin !== '') {
      this.plugin = await loadAuthPlugin(config.authPlugin, config.authPluginTimeoutMs ?? 5000);
    }
    const generation = ++this.generation;
    const tables = await loadAccessTables(config);
    if (generation === this.generation) this.apply(config, tables);
    return tables;
  }

  /** Reads the files again; a bad file changes nothing. Never throws. */
  async reload(config: AccessConfig): Promise<AccessReloadResult> {
    const generation = ++this.generation;
    let tables: AccessTables;
    try {
      tables = await loadAccessTables(config);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    const before = { passwords: this.passwords, acl: this.acl, anonymous: this.anonymous };
    // A newer reload started meanwhile: it decides.
    if (generation !== this.generation) {
      return { ok: true, changes: [], usersAdded: [], usersRemoved: [], usersChanged: [], anonymous: this.anonymous };
    }
    this.apply(config, tables);
    const old = before.passwords ?? new Map<string, PasswordEntry>();
    const now = tables.passwords ?? new Map<string, PasswordEntry>();
    const usersAdded = [...now.keys()].filter((u) => !old.has(u));
    const usersRemoved = [...old.keys()].filter((u) => !now.has(u));
    const usersChanged = [...now].filter(([u, e]) => old.has(u) && !sameEntry(old.get(u) as PasswordEntry, e));
    const changes: string[] = [];
    if ((before.passwords === null) !== (tables.passwords === null)) {
      changes.push(tables.passwords === null ? 'password file off' : 'password file on');
    }
    if (usersAdded.length > 0) changes.push(`${plural(usersAdded.length, 'user')} added`);
    if (usersRemoved.length > 0) changes.push(`${plural(usersRemoved.length, 'user')} removed`);
    if (usersChanged.length > 0) changes.push(`${plural(usersChanged.length, 'password')} changed`);
    const acl = AclRules.describeChange(before.acl, tables.acl);
    if (acl !== null) changes.push(acl);
    if (before.anonymous !== this.anonymous) {
      changes.push(`anonymous access now ${this.anonymous ? 'allowed' : 'refused'}`);
    }
    return {
      ok: true,
      changes,
      usersAdded,
      usersRemoved,
      usersChanged: usersChanged.map(([u]) => u),
      anonymous: this.anonymous,
    };
  }

  private apply(config: AccessConfig, tables: AccessTables): void {
    this.passwords = tables.passwords;
    this.acl = tables.acl;
    this.anonymous = anonymousPolicy(config).allowed;
    if (this.plugin !== null && config.authPluginTimeoutMs !== undefined) {
      this.plugin.timeoutMs = config.authPluginTimeoutMs;
    }
  }

  /**
   * Checks a CONNECT's credentials: the password file and the anonymous rule first, then the
   * plug-in's authenticate when there is one; both must let the client in. A user name the
   * plug-in accepts counts as verified (for the ACL's %u and the plug-in's later calls).
   */
  authenticate(
    remote: string | undefined,
    username: string | undefined,
    password: Buffer | undefined,
    clientId = '',
  ): AuthOutcome | Promise<AuthOutcome> {
    const outcome = this.checkBuiltIn(remote, username, password);
    const plugin = this.plugin;
    if (plugin === null || plugin.authenticateFn === null) return outcome;
    const request = { clientId, username, password, remoteAddress: remote };
    return Promise.resolve(outcome).then((o) => (o.ok ? this.askPlugin(plugin, o, request) : o));
  }

  /**
   * A client whose verified certificate names it (tlsCnAsUsername): no password to check, but
   * the plug-in's authenticate, when there is one, is asked too (user name = the CN, no
   * password), so custom rules (a revocation list, a database) apply to certificate users.
   */
  authenticateCertificate(remote: string | undefined, user: string, clientId = ''): AuthOutcome | Promise<AuthOutcome> {
    const builtIn = { ok: true as const, user, delayedMs: 0 };
    const plugin = this.plugin;
    if (plugin === null || plugin.authenticateFn === null) return builtIn;
    return this.askPlugin(plugin, builtIn, { clientId, username: user, password: undefined, remoteAddress: remote });
  }

  private async askPlugin(
    plugin: AuthPlugin,
    builtIn: AuthOutcome & { ok: true },
    request: {
      clientId: string;
      username: string | undefined;
      password: Buffer | undefined;
      remoteAddress: string | undefined;
    },
  ): Promise<AuthOutcome> {
    const address = addressKey(request.remoteAddress);
    let delayedMs = builtIn.delayedMs;
    // An address that failed recently waits before the plug-in is asked too (unless the
    // password check already made it wait), so guessing through the plug-in is slowed as well.
    if (delayedMs === 0 && address !== null) {
      const delay = this.throttle.delayMs(address, Date.now());
      if (delay > 0) {
        await sleep(delay, undefined, { ref: false });
        delayedMs = delay;
      }
    }
    const verdict = await plugin.authenticate(request);
    if (verdict.allow) return { ok: true, user: request.username ?? builtIn.user, delayedMs };
    const why = verdict.failed
      ? `the auth plug-in failed (${verdict.reason})`
      : `the auth plug-in refused${verdict.reason === '' ? '' : ` (${verdict.reason})`}`;
    const outcome: AuthOutcome = {
      ok: false,
      returnCode: ConnackReturnCode.NOT_AUTHORIZED,
      reason: 'not-authorized',
      why,
      delayedMs,
      plugin: verdict.failed ? 'failed' : 'denied',
    };
    // A broken plug-in is not the client's guess: only a real no slows the address down.
    return verdict.failed ? outcome : this.settle(address, outcome);
  }

  /**
   * The password file and the anonymous rule. Answers at once when nothing slow is needed (an anonymous
   * client let in or refused); a password check (scrypt, off the event loop) or the delay for
   * an address that failed recently answers later. An anonymous client that is let in is
   * never delayed.
   *
   * With a password file, a user name is always checked (a wrong one is refused even when
   * anonymous clients are allowed). Without one, user names cannot be verified: the client is
   * anonymous, for the anonymous rule and for the ACL.
   */
  private checkBuiltIn(
    remote: string | undefined,
    username: string | undefined,
    password: Buffer | undefined,
  ): AuthOutcome | Promise<AuthOutcome> {
    if (this.anonymous && (username === undefined || this.passwords === null)) {
      return { ok: true, user: null, delayedMs: 0 };
    }
    const address = addressKey(remote);
    const delayMs = address === null ? 0 : this.throttle.delayMs(address, Date.now());
    if (delayMs > 0) return this.later(address, username, password, delayMs);
    const outcome = this.decide(username, password);
    return outcome instanceof Promise ? outcome.then((o) => this.settle(address, o)) : this.settle(address, outcome);
  }

  private async later(
    address: string | null,
    username: string | undefined,
    password: Buffer | undefined,
    delayMs: number,
  ): Promise<AuthOutcome> {
    // The timer does not keep a stopping process alive; the connect timeout still applies.
    await sleep(delayMs, undefined, { ref: false });
    const outcome = this.settle(address, await this.decide(username, password));
    outcome.delayedMs = delayMs;
    return outcome;
  }

  private decide(username: string | undefined, password: Buffer | undefined): AuthOutcome | Promise<AuthOutcome> {
    const table = this.passwords;
    if (username === undefined || table === null) {
      if (this.anonymous) return { ok: true, user: null, delayedMs: 0 };
      return refusal(
        ConnackReturnCode.NOT_AUTHORIZED,
        'not-authorized',
        username === undefined ? 'anonymous access is not allowed' : 'no password file: no user can log in',
      );
    }
    if (password === undefined) return refusal(ConnackReturnCode.NOT_AUTHORIZED, 'not-authorized', 'no password given');
    const entry = table.get(username);
    return verifyPassword(entry ?? UNKNOWN_USER, password).then((match) =>
      match && entry !== undefined
        ? { ok: true, user: username, delayedMs: 0 }
        : refusal(
            ConnackReturnCode.BAD_USERNAME_OR_PASSWORD,
            'bad-credentials',
            `bad user name or password (${entry === undefined ? 'unknown user' : 'wrong password'})`,
          ),
    );
  }

  private settle(address: string | null, outcome: AuthOutcome): AuthOutcome {
    if (!outcome.ok && address !== null) {
      this.throttle.failed(address, Date.now());
      this.onFailure?.(address);
    }
    return outcome;
  }
}

function refusal(returnCode: number, reason: 'bad-credentials' | 'not-authorized', why: string): AuthOutcome {
  return { ok: false, returnCode, reason, why, delayedMs: 0 };
}
