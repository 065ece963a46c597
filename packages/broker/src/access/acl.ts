/**
 * The topic ACL file, in Mosquitto's syntax:
 *
 *   # anonymous clients: the lines before the first `user` (or after `anonymous`)
 *   topic read public/#
 *   user alice
 *   topic readwrite alice/#
 *   topic deny alice/secret/#
 *   # every client; %u is the user name, %c the client id
 *   pattern readwrite devices/%u/#
 *
 * `topic [read|write|readwrite|deny] <filter>` (readwrite when the access is left out; the
 * filter is the rest of the line) gives the current section's clients a right; `pattern`
 * lines apply to every client, with %u and %c substituted per client. With an ACL file, what
 * no rule grants is refused, and a deny rule wins over every grant. A PUBLISH needs write
 * access to its topic, each delivery read access to its topic; the SUBSCRIBE rule is at
 * ClientAcl.canSubscribe.
 *
 * A client's rules are compiled once, at CONNECT (ClientAcl): filters split into levels and
 * substitutions done, so a check walks a few small arrays and builds nothing.
 */
import { isValidTopicFilter } from '@tern/protocol';
import { AccessFileError } from './password-file.js';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

interface Rule {
  access: AclAccess;
  filter: string;
}

const ACCESS_WORDS: ReadonlySet<string> = new Set(['read', 'write', 'readwrite', 'deny']);
/** `$`: a leading wildcard does not match a topic starting with it [MQTT-4.7.2-1]. */
const DOLLAR = 36;

const hasWildcard = (value: string): boolean => value.includes('+') || value.includes('#');

/** A parsed ACL file. */
export class AclRules {
  /** Rules for clients without a (verified) user name. */
  readonly anonymous: Rule[] = [];
  /** Rules per user name. */
  readonly users = new Map<string, Rule[]>();
  /** `pattern` rules: every client, with %u and %c substituted. */
  readonly patterns: Rule[] = [];

  /** Rules in the file (topic and pattern lines). */
  get size(): number {
    let n = this.anonymous.length + this.patterns.length;
    for (const rules of this.users.values()) n += rules.length;
    return n;
  }

  /**
   * The rules that apply to one client: its section (the anonymous one when `user` is null)
   * and every pattern. A pattern that needs %u is skipped for an anonymous client. A user
   * name or client id containing + or # cannot widen a grant: such a grant is skipped, while
   * a deny rule keeps the wildcard (it can only refuse more).
   */
  compile(user: string | null, clientId: string): ClientAcl {
    const acl = new ClientAcl(user, clientId);
    for (const rule of user === null ? this.anonymous : (this.users.get(user) ?? [])) acl.add(rule.access, rule.filter);
    for (const rule of this.patterns) {
      const needsUser = rule.filter.includes('%u');
      if (needsUser && user === null) continue;
      const wild = (needsUser && hasWildcard(user as string)) || (rule.filter.includes('%c') && hasWildcard(clientId));
      if (wild && rule.access !== 'deny') continue;
      acl.add(rule.access, rule.filter.replaceAll('%u', user ?? '').replaceAll('%c', clientId));
    }
    return acl;
  }

  /** A short description of what changed from `before`, for the reload log line. */
  static describeChange(before: AclRules | null, after: AclRules | null): string | null {
    if (before === null && after === null) return null;
    if (before === null) return `ACL on (${after?.size} rules)`;
    if (after === null) return 'ACL off';
    if (fingerprint(before) === fingerprint(after)) return null;
    return `ACL rules changed (${before.size} -> ${after.size})`;
  }
}

function fingerprint(rules: AclRules): string {
  const section = (list: Rule[]) => list.map((r) => `${r.access} ${r.filter}`).join('\n');
  const users = [...rules.users].map(([user, list]) => `user ${user}\n${section(list)}`).sort();
  return [section(rules.anonymous), section(rules.patterns), ...users].join('\n--\n');
}

/** Parses an ACL file; `file` names it in the one-line error. */
export function parseAclFile(text: string, file: string): AclRules {
  const rules = new AclRules();
  let section = rules.anonymous;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const fail = (why: string): never => {
      throw new AccessFileError(`ACL file ${file}: line ${i + 1}: ${why}`);
    };
    const space = line.search(/\s/);
    const keyword = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space).trim();
    switch (keyword) {
      case 'user': {
        if (rest.length === 0) fail('user needs a name');
        section = rules.users.get(rest) ?? [];
        rules.users.set(rest, section);
        break;
      }
      case 'anonymous':
        if (rest.length > 0) fail('anonymous takes nothing after it');
        section = rules.anonymous;
        break;
      case 'topic':
      case 'pattern': {
        const space2 = rest.search(/\s/);
        const first = space2 < 0 ? rest : rest.slice(0, space2);
        // The access word is optional (readwrite); the filter is the rest of the line.
        const hasAccess = ACCESS_WORDS.has(first);
        const access = (hasAccess ? first : 'readwrite') as AclAccess;
        const filter = hasAccess ? (space2 < 0 ? '' : rest.slice(space2).trim()) : rest;
        if (filter.length === 0) fail(`${keyword} needs a topic filter`);
        if (!isValidTopicFilter(filter)) fail(`'${filter}' is not a valid topic filter`);
        (keyword === 'topic' ? section : rules.patterns).push({ access, filter });
        break;
      }
      default:
        fail(`unknown keyword '${keyword}' (expected user, anonymous, topic or pattern)`);
    }
  }
  return rules;
}

/**
 * One client's compiled rules. `canPublish` and `canRead` run per message: a loop over a few
 * level arrays, matching in place over the topic string.
 */
export class ClientAcl {
  /** Whom the rules were compiled for (a reload compiles them again). */
  readonly user: string | null;
  readonly clientId: string;
  private readonly read: string[][] = [];
  private readonly write: string[][] = [];
  private readonly deny: string[][] = [];

  constructor(user: string | null, clientId: string) {
    this.user = user;
    this.clientId = clientId;
  }

  add(access: AclAccess, filter: string): void {
    const levels = filter.split('/');
    if (access === 'deny') this.deny.push(levels);
    if (access === 'read' || access === 'readwrite') this.read.push(levels);
    if (access === 'write' || access === 'readwrite') this.write.push(levels);
  }

  /** May the client publish to `topic` (and have a will there)? */
  canPublish(topic: string): boolean {
    return !anyMatches(this.deny, topic) && anyMatches(this.write, topic);
  }

  /** May the client receive a message on `topic`? */
  canRead(topic: string): boolean {
    return !anyMatches(this.deny, topic) && anyMatches(this.read, topic);
  }

  /**
   * May the client subscribe to `filter`? When one read rule covers the whole filter (every
   * topic it can match) and no deny rule does. A deny rule covering only part of it leaves
   * the subscription granted: those topics are held back per delivery (canRead). So with
   * `topic read sensors/#` and `topic deny sensors/secret/#`, `sensors/#` is granted without
   * sensors/secret/..., `sensors/secret/#` is refused, and `#` is refused.
   */
  canSubscribe(filter: string): boolean {
    const levels = filter.split('/');
    for (const d of this.deny) if (covers(d, levels)) return false;
    for (const r of this.read) if (covers(r, levels)) return true;
    return false;
  }
}

function anyMatches(list: string[][], topic: string): boolean {
  for (let i = 0; i < list.length; i++) if (matches(list[i] as string[], topic)) return true;
  return false;
}

/**
 * Whether `topic` matches the filter split into `levels`, walking the topic in place. A
 * leading wildcard does not match a topic starting with `$` [MQTT-4.7.2-1]; `#` also matches
 * the parent level (`a/#` matches `a`) [MQTT-4.7.1-2].
 */
export function matches(levels: readonly string[], topic: string): boolean {
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level === '#') return !(i === 0 && topic.charCodeAt(0) === DOLLAR);
    if (pos > topic.length) return false;
    let end = topic.indexOf('/', pos);
    if (end < 0) end = topic.length;
    if (level === '+') {
      if (i === 0 && topic.charCodeAt(0) === DOLLAR) return false;
    } else if (end - pos !== level.length || !topic.startsWith(level, pos)) {
      return false;
    }
    pos = end + 1;
  }
  return pos === topic.length + 1;
}

/** Whether every topic that `filter` matches is also matched by `rule` (both split into levels). */
export function covers(rule: readonly string[], filter: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const r = rule[i];
    const f = filter[i];
    if (r === '#') return !(i === 0 && f !== undefined && f.charCodeAt(0) === DOLLAR);
    if (r === undefined || f === undefined) return r === f;
    if (f === '#') return false;
    if (r === '+') {
      if (i === 0 && f.charCodeAt(0) === DOLLAR) return false;
    } else if (r !== f) {
      return false;
    }
  }
}
