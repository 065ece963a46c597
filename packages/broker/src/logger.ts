import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config.js';

export interface RootLoggerOptions {
  level: LogLevel;
  /** Human-readable lines (colours on a terminal) instead of one JSON object per line. */
  pretty?: boolean;
  /** Bound into every line, e.g. the node name. */
  base?: Record<string, unknown>;
  /**
   * Write each line straight to file descriptor 1 (a routing worker: its process.stdout is a
   * stream through the main thread, which a line must not wait on or outlive).
   */
  directStdout?: boolean;
  /** Where lines go instead of stdout (a test's capture, a worker's parent). Not with `pretty`. */
  stream?: { write(line: string): void };
}

/** The one root logger. Library packages never configure logging; they get child loggers. */
export function createRootLogger(options: RootLoggerOptions): Logger {
  const settings = {
    level: options.level,
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.stream !== undefined) return pino(settings, options.stream);
  if (options.pretty !== true) {
    return options.directStdout === true ? pino(settings, pino.destination({ dest: 1, sync: true })) : pino(settings);
  }
  // Synchronous, in this thread: a log line is on the terminal before the process can exit.
  return pino(
    settings,
    pretty({ colorize: process.stdout.isTTY === true, sync: true, destination: options.directStdout ? 1 : undefined }),
  );
}

export type { Logger };
