/**
 * Broker configuration: defaults, a JSON config file, TERN_* environment variables and
 * command-line flags, applied in that order. Every value is validated at start; a bad one
 * stops start-up with one line naming the key, the value and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { parseRedisUrl } from '@tern/cluster';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type OverflowPolicy = 'drop-oldest' | 'drop-new';

export interface BrokerConfig {
  /** TCP port for MQTT. 0 picks a free port. @default 1883 */
  port: number;
  /** Address every MQTT listener binds (TCP, TLS, WebSocket, WSS). @default '0.0.0.0' */
  host: string;
  /** Serve MQTT over plain TCP on `port`. @default true */
  tcpEnabled: boolean;
  /** Serve MQTT over TLS on `tlsPort` (tlsCert and tlsKey required). @default false */
  tlsEnabled: boolean;
  /** Port for MQTT over TLS. 0 picks a free port. @default 8883 */
  tlsPort: number;
  /** PEM certificate (chain) of the TLS and WSS listeners; read again on SIGHUP. @default '' */
  tlsCert: string;
  /** PEM private key of tlsCert; read again on SIGHUP. @default '' */
  tlsKey: string;
  /** PEM CA certificates client certificates are checked against; '' = Node's default CAs. @default '' */
  tlsCa: string;
  /**
   * Ask TLS and WSS clients for a certificate: 'none', 'request' (checked when sent) or
   * 'require' (mutual TLS: no certificate signed by tlsCa, no connection). @default 'none'
   */
  tlsClientCert: 'none' | 'request' | 'require';
  /**
   * A client with a verified certificate is authenticated as its subject CN (no password
   * needed; the CONNECT's user name is ignored); the ACL applies to that user. @default false
   */
  tlsCnAsUsername: boolean;
  /** Serve MQTT over WebSocket on `wsPort`. @default false */
  wsEnabled: boolean;
  /** Port for MQTT over WebSocket. 0 picks a free port. @default 8080 */
  wsPort: number;
  /** The HTTP path WebSockets are opened on (WS and WSS). @default '/mqtt' */
  wsPath: string;
  /** Serve MQTT over WebSocket over TLS on `wssPort` (the TLS certificate and key). @default false */
  wssEnabled: boolean;
  /** Port for MQTT over WSS. 0 picks a free port. @default 8081 */
  wssPort: number;
  /** @default 'info' */
  logLevel: LogLevel;
  /** Outbound QoS 1/2 messages in flight per client. @default 32 */
  maxInflight: number;
  /** Messages queued per session behind the inflight window or while offline. @default 1000 */
  maxQueued: number;
  /** What a full session queue drops. @default 'drop-oldest' */
  queueOverflow: OverflowPolicy;
  /** Largest packet accepted from a client, in bytes. @default 1048576 */
  maxPacketSize: number;
  /** Connections held at once; 0 = unlimited. @default 0 */
  maxConnections: number;
  /** A socket that sends no CONNECT within this many ms is closed. @default 10000 */
  connectTimeoutMs: number;
  /**
   * Bytes waiting in a subscriber's socket beyond which QoS 0 messages to it are dropped
   * (and counted) instead of buffered. @default 1048576
   */
  maxSocketBuffer: number;
  /** Seconds between $SYS publications; 0 turns $SYS off. @default 10 */
  sysInterval: number;
  /** Serve /metrics, /health, /ready and the admin endpoints over HTTP. @default true */
  metrics: boolean;
  /** HTTP port for metrics and health. 0 picks a free port. @default 9464 */
  metricsPort: number;
  /** Address the HTTP endpoint binds. @default '0.0.0.0' */
  metricsHost: string;
  /** This node's name in metric labels and logs. @default the host name */
  nodeName: string;
  /** Human-readable logs instead of JSON lines. @default false */
  logPretty: boolean;
  /** Longest a graceful shutdown may take before the process exits anyway, ms. @default 10000 */
  shutdownTimeoutMs: number;
  /**
   * File where persistent sessions and retained messages are saved (on shutdown and every
   * persistenceInterval seconds) and loaded at start; '' keeps them in memory only. @default ''
   */
  persistenceFile: string;
  /** Seconds between saves of persistenceFile; 0 saves only at shutdown. @default 60 */
  persistenceInterval: number;
  /** Routing workers (threads) of this node. @default the number of available CPU cores */
  workers: number;
  /**
   * Connections opened and closed on a routing worker after which, once they settle, it runs
   * one full garbage collection (heap-trim.ts); 0 never does. @default 1000
   */
  heapTrimConnections: number;
  /**
   * Password file (`tern passwd` writes it): user names and salted scrypt hashes checked at
   * CONNECT; '' = none. @default ''
   */
  passwordFile: string;
  /**
   * Whether a client without a user name gets in: 'auto' means yes exactly when no
   * passwordFile is configured. @default 'auto'
   */
  allowAnonymous: 'auto' | boolean;
  /** Topic ACL file (Mosquitto's syntax, docs/security.md); '' = every topic allowed. @default '' */
  aclFile: string;
  /**
   * Redis that joins this node to a cluster (redis://, rediss://, redis-sentinel://,
   * redis-cluster://; docs/cluster.md); '' = a node on its own. @default ''
   */
  redis: string;
  /** Namespace of the cluster's keys and channels in Redis. @default 'tern' */
  redisPrefix: string;
  /** How often this node tells the cluster it is alive, ms. @default 1000 */
  clusterHeartbeatMs: number;
  /** A node silent this long is taken for dead: its routes go, its wills fire. @default 5000 */
  clusterNodeTimeoutMs: number;
  /**
   * Directory of a node on its own whose persistent sessions, queued messages and retained
   * messages are kept on disk (SQLite) as they change, surviving any restart; '' = memory
   * (see persistenceFile). @default ''
   */
  dataDir: string;
  /** Distinct topic filters one session may hold; more get SUBACK 0x80. 0 = unlimited. @default 0 */
  maxSubscriptions: number;
  /**
   * Longest topic name or filter, in UTF-8 bytes: a longer PUBLISH topic (or will topic)
   * closes the connection, a longer filter gets SUBACK 0x80. 0 = the protocol's 65535. @default 0
   */
  maxTopicLength: number;
  /** Most levels in a topic name or filter, treated as maxTopicLength is. 0 = unlimited. @default 0 */
  maxTopicLevels: number;
  /**
   * PUBLISH packets per second one client may send; a faster one is slowed (its socket is
   * not read until it is back under the rate), never dropped. 0 = unlimited. @default 0
   */
  maxPublishRate: number;
  /**
   * Resident memory (RSS) of the process, in bytes, above which new CONNECTs get CONNACK 0x03
   * and QoS 0 deliveries are shed; checked twice a second. 0 = off. @default 0
   */
  memoryHighWaterMark: number;
  /**
   * An ES module (path) exporting authenticate / authorizePublish / authorizeSubscribe,
   * consulted after the password file and the ACL (docs/security.md); '' = none. @default ''
   */
  authPlugin: string;
  /** Longest a call into authPlugin may take; a call that takes longer is a refusal. @default 5000 */
  authPluginTimeoutMs: number;
  /**
   * MQTT 5 receive maximum Tern announces: QoS 1/2 PUBLISHes one client may have
   * unacknowledged; one more is DISCONNECT 0x93. @default 65535
   */
  receiveMaximum: number;
  /** MQTT 5 topic aliases a client may set on one connection (0: none). @default 64 */
  topicAliasMaximum: number;
  /**
   * Longest keepalive, in seconds: an MQTT 5 client asking for more (or for none) is told
   * this one (server keep alive) and held to it. 0 = whatever the client asks. @default 0
   */
  maxKeepalive: number;
  /** Longest MQTT 5 session expiry interval granted, in seconds; 0 = as asked. @default 0 */
  maxSessionExpiry: number;
  /**
   * Another server's address for MQTT 5 clients: when set, clients leaving at shutdown are
   * told to use it (DISCONNECT 0x9C with this server reference). '' = none. @default ''
   */
  serverReference: string;
  /**
   * With serverReference: the server has moved for good (0x9D, server moved) rather than for
   * now (0x9C, use another server). @default false
   */
  serverMoved: boolean;
  /**
   * What an MQTT 5 client that asks for response information is told (a topic prefix for its
   * responses, say); `%c` becomes its client id. '' = none is given. @default ''
   */
  responseInformation: string;
}

export const DEFAULT_CONFIG: Readonly<BrokerConfig> = Object.freeze({
  port: 1883,
  host: '0.0.0.0',
  tcpEnabled: true,
  tlsEnabled: false,
  tlsPort: 8883,
  tlsCert: '',
  tlsKey: '',
  tlsCa: '',
  tlsClientCert: 'none',
  tlsCnAsUsername: false,
  wsEnabled: false,
  wsPort: 8080,
  wsPath: '/mqtt',
  wssEnabled: false,
  wssPort: 8081,
  logLevel: 'info',
  maxInflight: 32,
  maxQueued: 1000,
  queueOverflow: 'drop-oldest',
  maxPacketSize: 1_048_576,
  maxConnections: 0,
  connectTimeoutMs: 10_000,
  maxSocketBuffer: 1_048_576,
  sysInterval: 10,
  metrics: true,
  metricsPort: 9464,
  metricsHost: '0.0.0.0',
  nodeName: hostname(),
  logPretty: false,
  shutdownTimeoutMs: 10_000,
  persistenceFile: '',
  persistenceInterval: 60,
  workers: availableParallelism(),
  heapTrimConnections: 1000,
  passwordFile: '',
  allowAnonymous: 'auto',
  aclFile: '',
  redis: '',
  redisPrefix: 'tern',
  clusterHeartbeatMs: 1000,
  clusterNodeTimeoutMs: 5000,
  dataDir: '',
  maxSubscriptions: 0,
  maxTopicLength: 0,
  maxTopicLevels: 0,
  maxPublishRate: 0,
  memoryHighWaterMark: 0,
  authPlugin: '',
  authPluginTimeoutMs: 5000,
  receiveMaximum: 65_535,
  topicAliasMaximum: 64,
  maxKeepalive: 0,
  maxSessionExpiry: 0,
  serverReference: '',
  serverMoved: false,
  responseInformation: '',
});

/** A configuration problem: stops start-up. `message` is the one line to print. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'TERN_CONFIG_INVALID';
}

type Rule =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'string'; emptyAllowed?: boolean }
  | { kind: 'bool' }
  /** true, false, or 'auto' (decided from other settings). */
  | { kind: 'auto-bool' }
  | { kind: 'enum'; values: readonly string[] };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const RULES: Record<keyof BrokerConfig, Rule> = {
  port: { kind: 'int', min: 0, max: 65_535 },
  host: { kind: 'string' },
  tcpEnabled: { kind: 'bool' },
  tlsEnabled: { kind: 'bool' },
  tlsPort: { kind: 'int', min: 0, max: 65_535 },
  tlsCert: { kind: 'string', emptyAllowed: true },
  tlsKey: { kind: 'string', emptyAllowed: true },
  tlsCa: { kind: 'string', emptyAllowed: true },
  tlsClientCert: { kind: 'enum', values: ['none', 'request', 'require'] },
  tlsCnAsUsername: { kind: 'bool' },
  wsEnabled: { kind: 'bool' },
  wsPort: { kind: 'int', min: 0, max: 65_535 },
  wsPath: { kind: 'string' },
  wssEnabled: { kind: 'bool' },
  wssPort: { kind: 'int', min: 0, max: 65_535 },
  logLevel: { kind: 'enum', values: LOG_LEVELS },
  maxInflight: { kind: 'int', min: 1, max: 65_535 },
  maxQueued: { kind: 'int', min: 0, max: 10_000_000 },
  queueOverflow: { kind: 'enum', values: ['drop-oldest', 'drop-new'] },
  maxPacketSize: { kind: 'int', min: 16, max: 268_435_460 },
  maxConnections: { kind: 'int', min: 0, max: 10_000_000 },
  connectTimeoutMs: { kind: 'int', min: 100, max: 3_600_000 },
  maxSocketBuffer: { kind: 'int', min: 1024, max: 1_073_741_824 },
  sysInterval: { kind: 'int', min: 0, max: 86_400 },
  metrics: { kind: 'bool' },
  metricsPort: { kind: 'int', min: 0, max: 65_535 },
  metricsHost: { kind: 'string' },
  nodeName: { kind: 'string' },
  logPretty: { kind: 'bool' },
  shutdownTimeoutMs: { kind: 'int', min: 0, max: 3_600_000 },
  persistenceFile: { kind: 'string', emptyAllowed: true },
  persistenceInterval: { kind: 'int', min: 0, max: 86_400 },
  workers: { kind: 'int', min: 1, max: 256 },
  heapTrimConnections: { kind: 'int', min: 0, max: 10_000_000 },
  passwordFile: { kind: 'string', emptyAllowed: true },
  allowAnonymous: { kind: 'auto-bool' },
  aclFile: { kind: 'string', emptyAllowed: true },
  redis: { kind: 'string', emptyAllowed: true },
  redisPrefix: { kind: 'string' },
  clusterHeartbeatMs: { kind: 'int', min: 50, max: 60_000 },
  clusterNodeTimeoutMs: { kind: 'int', min: 200, max: 600_000 },
  dataDir: { kind: 'string', emptyAllowed: true },
  maxSubscriptions: { kind: 'int', min: 0, max: 10_000_000 },
  receiveMaximum: { kind: 'int', min: 1, max: 65_535 },
  topicAliasMaximum: { kind: 'int', min: 0, max: 65_535 },
  maxKeepalive: { kind: 'int', min: 0, max: 65_535 },
  maxSessionExpiry: { kind: 'int', min: 0, max: 4_294_967_295 },
  serverReference: { kind: 'string', emptyAllowed: true },
  serverMoved: { kind: 'bool' },
  responseInformation: { kind: 'string', emptyAllowed: true },
  maxTopicLength: { kind: 'int', min: 0, max: 65_535 },
  maxTopicLevels: { kind: 'int', min: 0, max: 65_535 },
  maxPublishRate: { kind: 'int', min: 0, max: 10_000_000 },
  memoryHighWaterMark: { kind: 'int', min: 0, max: 1_099_511_627_776 },
  authPlugin: { kind: 'string', emptyAllowed: true },
  authPluginTimeoutMs: { kind: 'int', min: 1, max: 600_000 },
};

export const CONFIG_KEYS = Object.keys(RULES) as (keyof BrokerConfig)[];

function describe(rule: Rule): string {
  switch (rule.kind) {
    case 'int':
      return `an integer in ${rule.min}..${rule.max}`;
    case 'string':
      return rule.emptyAllowed ? 'a string' : 'a non-empty string';
    case 'bool':
      return 'true or false';
    case 'auto-bool':
      return 'true, false or auto';
    case 'enum':
      return `one of ${rule.values.join(', ')}`;
  }
}

/**
 * Checks one value against its key's rule; strings from env/flags are converted.
 * `source` names where it came from in the error ("config file x.json", "TERN_PORT", "--port").
 */
function coerce(key: string, raw: unknown, source: string): unknown {
  const rule = RULES[key as keyof BrokerConfig];
  if (rule === undefined) {
    throw new ConfigError(`${source}: unknown key '${key}' (known keys: ${CONFIG_KEYS.join(', ')})`);
  }
  const bad = (): never => {
    throw new ConfigError(`${source}: ${key} = ${JSON.stringify(raw)} is not valid: expected ${describe(rule)}`);
  };
  switch (rule.kind) {
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < rule.min || n > rule.max) bad();
      return n;
    }
    case 'string':
      if (typeof raw !== 'string' || (raw.length === 0 && rule.emptyAllowed !== true)) bad();
      return raw;
    case 'bool':
    case 'auto-bool': {
      if (typeof raw === 'boolean') return raw;
      const text = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
      if (text === 'true' || text === '1' || text === 'yes') return true;
      if (text === 'false' || text === '0' || text === 'no') return false;
      if (text === 'auto' && rule.kind === 'auto-bool') return 'auto';
      return bad();
    }
    case 'enum':
      if (typeof raw !== 'string' || !rule.values.includes(raw)) bad();
      return raw;
  }
}

const FLAG_TO_KEY: Record<string, keyof BrokerConfig> = {
  '--port': 'port',
  '-p': 'port',
  '--host': 'host',
  '--tcp-enabled': 'tcpEnabled',
  '--tls-enabled': 'tlsEnabled',
  '--tls-port': 'tlsPort',
  '--tls-cert': 'tlsCert',
  '--tls-key': 'tlsKey',
  '--tls-ca': 'tlsCa',
  '--tls-client-cert': 'tlsClientCert',
  '--tls-cn-as-username': 'tlsCnAsUsername',
  '--ws-enabled': 'wsEnabled',
  '--ws-port': 'wsPort',
  '--ws-path': 'wsPath',
  '--wss-enabled': 'wssEnabled',
  '--wss-port': 'wssPort',
  '--log-level': 'logLevel',
  '--max-inflight': 'maxInflight',
  '--max-queued': 'maxQueued',
  '--queue-overflow': 'queueOverflow',
  '--max-packet-size': 'maxPacketSize',
  '--max-connections': 'maxConnections',
  '--connect-timeout-ms': 'connectTimeoutMs',
  '--max-socket-buffer': 'maxSocketBuffer',
  '--sys-interval': 'sysInterval',
  '--metrics': 'metrics',
  '--metrics-port': 'metricsPort',
  '--metrics-host': 'metricsHost',
  '--node-name': 'nodeName',
  '--log-pretty': 'logPretty',
  '--shutdown-timeout-ms': 'shutdownTimeoutMs',
  '--persistence-file': 'persistenceFile',
  '--persistence-interval': 'persistenceInterval',
  '--workers': 'workers',
  '--heap-trim-connections': 'heapTrimConnections',
  '--password-file': 'passwordFile',
  '--allow-anonymous': 'allowAnonymous',
  '--acl-file': 'aclFile',
  '--redis': 'redis',
  '--redis-prefix': 'redisPrefix',
  '--cluster-heartbeat-ms': 'clusterHeartbeatMs',
  '--cluster-node-timeout-ms': 'clusterNodeTimeoutMs',
  '--data-dir': 'dataDir',
  '--max-subscriptions': 'maxSubscriptions',
  '--receive-maximum': 'receiveMaximum',
  '--topic-alias-maximum': 'topicAliasMaximum',
  '--max-keepalive': 'maxKeepalive',
  '--max-session-expiry': 'maxSessionExpiry',
  '--server-reference': 'serverReference',
  '--server-moved': 'serverMoved',
  '--response-information': 'responseInformation',
  '--max-topic-length': 'maxTopicLength',
  '--max-topic-levels': 'maxTopicLevels',
  '--max-publish-rate': 'maxPublishRate',
  '--memory-high-water-mark': 'memoryHighWaterMark',
  '--auth-plugin': 'authPlugin',
  '--auth-plugin-timeout-ms': 'authPluginTimeoutMs',
};

export interface ParsedArgs {
  help: boolean;
  version: boolean;
  printConfig: boolean;
  configFile: string | undefined;
  overrides: Partial<Record<keyof BrokerConfig, string>>;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { help: false, version: false, printConfig: false, configFile: undefined, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`${flag}: missing value`);
      i++;
      return next;
    };
    if (flag === '--help' || flag === '-h') out.help = true;
    else if (flag === '--version' || flag === '-v') out.version = true;
    else if (flag === '--print-config') out.printConfig = true;
    else if (flag === '--config' || flag === '-c') out.configFile = value();
    else {
      // Booleans: `--log-pretty` or `--log-pretty=false`; `--no-metrics` turns one off.
      const negated = flag.startsWith('--no-') ? FLAG_TO_KEY[`--${flag.slice(5)}`] : undefined;
      if (negated !== undefined && RULES[negated].kind.endsWith('bool') && inline === undefined) {
        out.overrides[negated] = 'false';
        continue;
      }
      const key = FLAG_TO_KEY[flag];
      if (key === undefined) throw new ConfigError(`${arg}: unknown option (see --help)`);
      out.overrides[key] = RULES[key].kind.endsWith('bool') && inline === undefined ? 'true' : value();
    }
  }
  return out;
}

/** TERN_MAX_INFLIGHT -> maxInflight */
function envName(key: string): string {
  return `TERN_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Builds the effective configuration: defaults < config file < TERN_* env < flags. */
export function loadConfig(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  const file = args.configFile ?? env.TERN_CONFIG;
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${file}: expected a JSON object`);
    }
    for (const [key, raw] of Object.entries(parsed)) config[key] = coerce(key, raw, `config file ${file}`);
  }
  for (const key of CONFIG_KEYS) {
    const name = envName(key);
    const raw = env[name];
    if (raw !== undefined) config[key] = coerce(key, raw, name);
  }
  for (const [key, raw] of Object.entries(args.overrides)) {
    const flag = Object.keys(FLAG_TO_KEY).find((f) => FLAG_TO_KEY[f] === key && f.startsWith('--')) ?? key;
    config[key] = coerce(key, raw, flag);
  }
  checkListeners(config as unknown as BrokerConfig);
  checkCluster(config as unknown as BrokerConfig);
  return config as unknown as BrokerConfig;
}

/** Validates a programmatic config (tests, embedding) the same way. */
export function resolveConfig(partial: Partial<BrokerConfig> = {}): BrokerConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, raw] of Object.entries(partial)) {
    if (raw !== undefined) config[key] = coerce(key, raw, 'options');
  }
  checkListeners(config as unknown as BrokerConfig);
  checkCluster(config as unknown as BrokerConfig);
  return config as unknown as BrokerConfig;
}

/** A Redis URL Tern cannot use stops start-up here, before anything connects. */
function checkCluster(config: BrokerConfig): void {
  if (config.dataDir !== '' && config.redis !== '') {
    throw new ConfigError('dataDir and redis cannot be combined: a node of a cluster keeps its sessions in Redis');
  }
  if (config.dataDir !== '' && config.persistenceFile !== '') {
    throw new ConfigError('dataDir and persistenceFile cannot be combined: dataDir already keeps everything on disk');
  }
  if (config.redis === '') return;
  try {
    parseRedisUrl(config.redis);
  } catch (err) {
    throw new ConfigError(`redis = ${JSON.stringify(config.redis)} is not valid: ${(err as Error).message}`);
  }
  if (config.clusterNodeTimeoutMs < 3 * config.clusterHeartbeatMs) {
    throw new ConfigError(
      `clusterNodeTimeoutMs = ${config.clusterNodeTimeoutMs} is not valid: expected at least 3 x clusterHeartbeatMs (${3 * config.clusterHeartbeatMs})`,
    );
  }
}

/** Rules between the listener keys: at least one listener, TLS with its files, CN with certificates. */
function checkListeners(config: BrokerConfig): void {
  if (!config.tcpEnabled && !config.tlsEnabled && !config.wsEnabled && !config.wssEnabled) {
    throw new ConfigError('no listener enabled: set at least one of tcpEnabled, tlsEnabled, wsEnabled, wssEnabled');
  }
  const secure = config.tlsEnabled ? 'tlsEnabled' : config.wssEnabled ? 'wssEnabled' : null;
  if (secure !== null) {
    for (const key of ['tlsCert', 'tlsKey'] as const) {
      if (config[key] === '') throw new ConfigError(`${key} is required when ${secure} is true (a PEM file path)`);
    }
  }
  if (config.tlsClientCert !== 'none' && config.tlsCa === '') {
    const mode = config.tlsClientCert;
    throw new ConfigError(
      `tlsCa is required when tlsClientCert is '${mode}' (client certificates are checked against it)`,
    );
  }
  if (config.tlsCnAsUsername && config.tlsClientCert === 'none') {
    throw new ConfigError("tlsCnAsUsername needs client certificates: set tlsClientCert to 'request' or 'require'");
  }
  if (!config.wsPath.startsWith('/')) {
    throw new ConfigError(`wsPath = ${JSON.stringify(config.wsPath)} is not valid: expected a path starting with '/'`);
  }
}

export const HELP = `Usage: tern [options]

Tern MQTT broker (MQTT 3.1, 3.1.1). Options override TERN_* environment variables,
which override the config file, which overrides the defaults.

  -p, --port <n>               TCP port for MQTT (default ${DEFAULT_CONFIG.port}; 0 = any free port)
      --host <addr>            address every listener binds (default ${DEFAULT_CONFIG.host})
      --no-tcp-enabled         no plain TCP listener (on by default)
      --tls-enabled            MQTT over TLS on --tls-port (default ${DEFAULT_CONFIG.tlsPort}); needs --tls-cert, --tls-key
      --tls-cert <f>, --tls-key <f>, --tls-ca <f>  PEM files (read again on SIGHUP)
      --tls-client-cert <m>    none|request|require: ask clients for a certificate signed by --tls-ca
      --tls-cn-as-username     a verified client certificate's CN is the user name (no password)
      --ws-enabled             MQTT over WebSocket on --ws-port (default ${DEFAULT_CONFIG.wsPort}), path --ws-path (default ${DEFAULT_CONFIG.wsPath})
      --wss-enabled            MQTT over WebSocket over TLS on --wss-port (default ${DEFAULT_CONFIG.wssPort})
  -c, --config <file.json>     JSON config file (keys: ${CONFIG_KEYS.join(', ')})
      --log-level <level>      ${LOG_LEVELS.join('|')} (default ${DEFAULT_CONFIG.logLevel})
      --max-inflight <n>       outbound QoS 1/2 window per client (default ${DEFAULT_CONFIG.maxInflight})
      --max-queued <n>         queued messages per session (default ${DEFAULT_CONFIG.maxQueued})
      --queue-overflow <p>     drop-oldest|drop-new (default ${DEFAULT_CONFIG.queueOverflow})
      --max-packet-size <n>    largest packet accepted, bytes (default ${DEFAULT_CONFIG.maxPacketSize})
      --max-connections <n>    connections at once, 0 = unlimited (default 0)
      --connect-timeout-ms <n> close sockets silent before CONNECT (default ${DEFAULT_CONFIG.connectTimeoutMs})
      --max-socket-buffer <n>  QoS 0 is dropped for subscribers this far behind, bytes (default ${DEFAULT_CONFIG.maxSocketBuffer})
      --sys-interval <s>       seconds between $SYS updates, 0 = off (default ${DEFAULT_CONFIG.sysInterval})
      --no-metrics             no HTTP endpoint for /metrics, /health, /ready (on by default)
      --metrics-port <n>       HTTP port for /metrics, /health, /ready (default ${DEFAULT_CONFIG.metricsPort}; 0 = any)
      --metrics-host <addr>    address the HTTP endpoint binds (default ${DEFAULT_CONFIG.metricsHost})
      --node-name <name>       this node's name in metrics and logs (default: the host name)
      --log-pretty             human-readable logs instead of JSON lines
      --shutdown-timeout-ms <n> longest graceful shutdown before exiting anyway (default ${DEFAULT_CONFIG.shutdownTimeoutMs})
      --persistence-file <f>   save sessions and retained messages here, load them at start ('' = off)
      --persistence-interval <s> seconds between saves, 0 = only at shutdown (default ${DEFAULT_CONFIG.persistenceInterval})
      --workers <n>            routing worker threads (default: CPU cores, ${DEFAULT_CONFIG.workers} here)
      --heap-trim-connections <n>
                               collect garbage after this many connections come or go, 0 = never
                               (default ${DEFAULT_CONFIG.heapTrimConnections})
      --password-file <f>      users and scrypt hashes checked at CONNECT ('' = none; see tern passwd)
      --allow-anonymous[=auto] let clients without a user name in (--no-allow-anonymous: refuse them;
                               default auto: allowed exactly when no password file is configured)
      --acl-file <f>           topic ACL, Mosquitto syntax ('' = every topic allowed)
      --data-dir <dir>         keep persistent sessions and retained messages on disk as they change
                               (SQLite; survives any restart, kill -9 included; '' = memory)
      --redis <url>            join a cluster through Redis: redis://, rediss://, redis-sentinel://h:p,h:p/master,
                               redis-cluster://h:p,h:p ('' = a node on its own; see docs/cluster.md)
      --redis-prefix <name>    namespace of the cluster's keys in Redis (default ${DEFAULT_CONFIG.redisPrefix})
      --cluster-heartbeat-ms <n> how often this node says it is alive (default ${DEFAULT_CONFIG.clusterHeartbeatMs})
      --cluster-node-timeout-ms <n> a node silent this long is reaped, its wills fire (default ${DEFAULT_CONFIG.clusterNodeTimeoutMs})
      --auth-plugin <module>   ES module with authenticate/authorizePublish/authorizeSubscribe/authenticateEnhanced ('' = none)
      --auth-plugin-timeout-ms <n> longest call into the plug-in; longer is a refusal (default ${DEFAULT_CONFIG.authPluginTimeoutMs})
      --max-subscriptions <n>  topic filters per session, 0 = unlimited (default 0)
      --max-topic-length <n>   bytes in a topic or filter, 0 = the protocol's 65535 (default 0)
      --max-topic-levels <n>   levels in a topic or filter, 0 = unlimited (default 0)
      --max-publish-rate <n>   PUBLISH packets per second per client, slowed beyond; 0 = unlimited (default 0)
      --memory-high-water-mark <n> RSS bytes beyond which CONNECTs are refused and QoS 0 shed, 0 = off (default 0)
  MQTT 5 (docs/mqtt5.md):
      --receive-maximum <n>    QoS 1/2 PUBLISHes a client may have unacknowledged (default ${DEFAULT_CONFIG.receiveMaximum})
      --topic-alias-maximum <n> topic aliases a client may set per connection (default ${DEFAULT_CONFIG.topicAliasMaximum})
      --max-keepalive <s>      longest keepalive granted, 0 = as asked (default 0)
      --max-session-expiry <s> longest session expiry interval granted, 0 = as asked (default 0)
      --server-reference <host[:port]> where clients are sent at shutdown (0x9C) ('' = none)
      --server-moved           with --server-reference: moved for good (0x9D)
      --response-information <s> given to clients that ask; %c = client id ('' = none)
      --print-config           print the effective configuration as JSON and exit
  -v, --version                print the version and exit
  -h, --help                   print this help and exit

Environment: TERN_CONFIG, TERN_PORT, TERN_HOST, TERN_LOG_LEVEL, TERN_MAX_INFLIGHT, ... (TERN_ + key in SNAKE_CASE)

Signals: SIGTERM/SIGINT shut down gracefully (a second one exits at once); SIGHUP reloads the
config file and environment (log level and limits) and the password and ACL files; SIGUSR2
toggles the debug log level.

Users: tern passwd <file> <user>            add a user or change a password (asks for it)
       tern passwd --delete <file> <user>   remove a user
`;
