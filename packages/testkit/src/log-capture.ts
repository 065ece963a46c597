import { Writable } from 'node:stream';
import type { Logger } from '@tern/broker';
import { pino } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/**
 * A pino logger whose lines are kept as parsed objects, so tests can assert that a
 * disconnect or a limit was logged, and wait for a line to appear.
 */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  constructor(level: 'trace' | 'debug' | 'info' = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.ingest(chunk.toString('utf8'));
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  /** Takes in JSON log lines written elsewhere (routing workers' lines, sent to the test's thread). */
  ingest(text: string): void {
    for (const part of text.split('\n')) {
      if (part.length === 0) continue;
      const line = JSON.parse(part) as LogLine;
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    }
  }

  /** Lines whose msg contains `text`. */
  find(text: string): LogLine[] {
    return this.lines.filter((l) => l.msg.includes(text));
  }

  /** Resolves with the first line (already logged or coming) that matches. */
  waitFor(match: string | ((l: LogLine) => boolean)): Promise<LogLine> {
    const fn = typeof match === 'string' ? (l: LogLine) => l.msg.includes(match) : match;
    const found = this.lines.find(fn);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ match: fn, resolve }));
  }
}
