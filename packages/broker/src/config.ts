/**
 * Broker configuration: defaults, a JSON config file, TERN_* environment variables and
 * command-line flags, applied in that order. Every value is validated at start; a bad one
 * stops start-up with one line naming the key, the value and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type OverflowPolicy = 'drop-oldest' | 'drop-new';

export interface BrokerConfig {
  /** TCP port for MQTT. 0 picks a free port. @default 1883 */
  port: number;
  /** Address to bind. @default '0.0.0.0' */
  host: string;
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
}

export const DEFAULT_CONFIG: Readonly<BrokerConfig> = Object.freeze({
  port: 1883,
  host: '0.0.0.0',
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
  passwordFile: '',
  allowAnonymous: 'auto',
  aclFile: '',
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
  passwordFile: { kind: 'string', emptyAllowed: true },
  allowAnonymous: { kind: 'auto-bool' },
  aclFile: { kind: 'string', emptyAllowed: true },
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
  '--password-file': 'passwordFile',
  '--allow-anonymous': 'allowAnonymous',
  '--acl-file': 'aclFile',
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
  return config as unknown as BrokerConfig;
}

/** Validates a programmatic config (tests, embedding) the same way. */
export function resolveConfig(partial: Partial<BrokerConfig> = {}): BrokerConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, raw] of Object.entries(partial)) {
    if (raw !== undefined) config[key] = coerce(key, raw, 'options');
  }
  return config as unknown as BrokerConfig;
}

export const HELP = `Usage: tern [options]

Tern MQTT broker (MQTT 3.1, 3.1.1). Options override TERN_* environment variables,
which override the config file, which overrides the defaults.

  -p, --port <n>               TCP port for MQTT (default ${DEFAULT_CONFIG.port}; 0 = any free port)
      --host <addr>            address to bind (default ${DEFAULT_CONFIG.host})
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
      --password-file <f>      users and scrypt hashes checked at CONNECT ('' = none; see tern passwd)
      --allow-anonymous[=auto] let clients without a user name in (--no-allow-anonymous: refuse them;
                               default auto: allowed exactly when no password file is configured)
      --acl-file <f>           topic ACL, Mosquitto syntax ('' = every topic allowed)
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
