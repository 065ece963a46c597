import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

/** The one root logger. Library packages never configure logging; they get child loggers. */
export function createRootLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
