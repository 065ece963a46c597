/**
 * Where Redis is, from one URL. One setting covers the three deployments ioredis supports:
 *
 *   redis://[[user]:password@]host[:port][/db]       a single instance (rediss:// for TLS)
 *   redis-sentinel://[[user]:password@]h1:p1,h2:p2/<master-name>[?db=N]
 *   redis-cluster://[[user]:password@]h1:p1,h2:p2    a Redis Cluster (seed nodes)
 *
 * Kept apart from the client (redis-connect.ts) so that checking a configuration does not load
 * ioredis.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; hosts: HostPort[]; master: string; username?: string; password?: string; db: number }
  | { kind: 'cluster'; hosts: HostPort[]; username?: string; password?: string };

export interface HostPort {
  host: string;
  port: number;
}

/** A Redis URL Tern cannot use; the message names what is wrong with it. */
export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
  readonly code = 'TERN_REDIS_URL_INVALID';
}

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;

export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z-]+):\/\//.exec(url)?.[1];
  if (scheme === 'redis' || scheme === 'rediss') {
    try {
      new URL(url);
    } catch {
      throw new RedisUrlError(`not a URL: ${url}`);
    }
    return { kind: 'single', url };
  }
  if (scheme !== 'redis-sentinel' && scheme !== 'redis-cluster') {
    throw new RedisUrlError(`unsupported scheme in ${url} (redis://, rediss://, redis-sentinel://, redis-cluster://)`);
  }
  const rest = url.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@');
  const credentials = at === -1 ? '' : rest.slice(0, at);
  const afterCredentials = at === -1 ? rest : rest.slice(at + 1);
  const [location = '', query = ''] = afterCredentials.split('?', 2);
  const slash = location.indexOf('/');
  const hostList = slash === -1 ? location : location.slice(0, slash);
  const path = slash === -1 ? '' : location.slice(slash + 1);
  const defaultPort = scheme === 'redis-sentinel' ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT;
  const hosts = hostList.split(',').map((entry) => parseHostPort(entry, defaultPort, url));
  const colon = credentials.indexOf(':');
  const username = colon === -1 ? undefined : decodeURIComponent(credentials.slice(0, colon)) || undefined;
  const password =
    credentials === '' ? undefined : decodeURIComponent(colon === -1 ? credentials : credentials.slice(colon + 1));
  if (scheme === 'redis-cluster') return { kind: 'cluster', hosts, username, password };
  if (path === '') throw new RedisUrlError(`${url} names no master (redis-sentinel://host:port/<master-name>)`);
  const dbText = new URLSearchParams(query).get('db') ?? '0';
  const db = Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new RedisUrlError(`db=${dbText} in ${url} is not a database number`);
  return { kind: 'sentinel', hosts, master: decodeURIComponent(path), username, password, db };
}

function parseHostPort(entry: string, defaultPort: number, url: string): HostPort {
  const match = /^([^:]+|\[[^\]]+\])(?::(\d+))?$/.exec(entry);
  if (match === null) throw new RedisUrlError(`cannot read host "${entry}" in ${url}`);
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65_535) throw new RedisUrlError(`port ${port} in ${url} is out of range`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}
