export { Access, type AccessReloadResult, type AuthOutcome, anonymousPolicy } from './access/access.js';
export { AclRules, ClientAcl, parseAclFile } from './access/acl.js';
export {
  AccessFileError,
  formatHash,
  hashPassword,
  type PasswordEntry,
  parsePasswordFile,
  verifyPassword,
} from './access/password-file.js';
export { AuthThrottle, type ThrottleSettings } from './access/throttle.js';
export { Broker, type CoarseClock } from './broker.js';
export { Client, type CloseReason } from './client.js';
export {
  type BrokerConfig,
  ConfigError,
  DEFAULT_CONFIG,
  loadConfig,
  parseArgs,
  resolveConfig,
} from './config.js';
export { type HttpServer, type HttpServerOptions, type ReadyState, startHttpServer } from './http-server.js';
export { createRootLogger, type Logger, type RootLoggerOptions } from './logger.js';
export { type MetricsOptions, TernMetrics } from './metrics/collector.js';
export { CounterCarry } from './metrics/counter-carry.js';
export {
  brokerStatsSource,
  type SnapshotCounters,
  type SnapshotGauges,
  type StatsSnapshot,
  type StatsSource,
  snapshotStats,
} from './metrics/snapshot.js';
export { TernNode } from './node.js';
export { PersistenceError, SnapshotFile } from './persistence.js';
export { type AclDenial, BrokerStats, type RejectReason } from './stats.js';
export { VERSION } from './version.js';
export type { SessionInfo } from './workers/messages.js';
export { Supervisor, type SupervisorOptions } from './workers/supervisor.js';
