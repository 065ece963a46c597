import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config.js';

export interface RootLoggerOptions {
  level: LogLevel;
  /** Human-readable lines (colours on a terminal) instead of one JSON object per line. */
  pretty?: boolean;
  /** Bound into every line, e.g. the node name. */
  base?: Record<string, unknown>;
}

/** The one root logger. Library packages never configure logging; they get child loggers. */
export function createRootLogger(options: RootLoggerOptions): Logger {
  const settings = {
    level: options.level,
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.pretty !== true) return pino(settings);
  // Synchronous, in this thread: a log line is on the terminal before the process can exit.
  return pino(settings, pretty({ colorize: process.stdout.isTTY === true, sync: true }));
}

export type { Logger };
