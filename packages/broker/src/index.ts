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
export { createRootLogger, type Logger } from './logger.js';
export { BrokerStats } from './stats.js';
export { VERSION } from './version.js';
