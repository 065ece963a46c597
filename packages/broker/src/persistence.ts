/**
 * Single-node durability: persistent sessions and retained messages are saved to one file
 * (periodically and at shutdown) and loaded at start, so a restart of the embedded broker
 * loses no queued message. A save writes a temporary file, syncs it and renames it over the
 * old one: a crash mid-save leaves the previous snapshot intact.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { decodeSnapshot, encodeSnapshot } from '@tern/session';
import type { Broker } from './broker.js';
import type { Logger } from './logger.js';

/** The snapshot file could not be read or written; `message` is one line naming the file. */
export class PersistenceError extends Error {
  override readonly name = 'PersistenceError';
  readonly code: 'TERN_PERSISTENCE_LOAD' | 'TERN_PERSISTENCE_SAVE';

  constructor(code: PersistenceError['code'], message: string, cause?: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

export class Persistence {
  private readonly broker: Broker;
  private readonly file: string;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  /** The save under way, so a periodic save and the final one never write at once. */
  private saving: Promise<void> | null = null;

  constructor(broker: Broker, file: string, log: Logger) {
    this.broker = broker;
    this.file = file;
    this.log = log.child({ component: 'persistence' });
  }

  /**
   * Loads the snapshot into the broker (before it accepts clients). A missing file is a first
   * start; an unreadable one stops start-up rather than silently dropping sessions.
   */
  async load(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.log.info({ file: this.file }, 'no snapshot yet: starting with no saved sessions');
        return;
      }
      throw new PersistenceError('TERN_PERSISTENCE_LOAD', `cannot read ${this.file}: ${(err as Error).message}`, err);
    }
    let contents: ReturnType<typeof decodeSnapshot>;
    try {
      contents = decodeSnapshot(bytes, this.broker.sessionLimits);
    } catch (err) {
      throw new PersistenceError('TERN_PERSISTENCE_LOAD', `cannot load ${this.file}: ${(err as Error).message}`, err);
    }
    this.broker.restore(contents);
    let queued = 0;
    for (const session of contents.sessions) queued += session.queue.length + session.inflight.size;
    this.log.info(
      {
        file: this.file,
        sessions: contents.sessions.length,
        queued,
        retained: contents.retained.length,
        savedAt: new Date(contents.savedAt).toISOString(),
      },
      'loaded saved sessions and retained messages',
    );
  }

  /** Saves every `intervalSeconds` (0: only when asked). */
  start(intervalSeconds: number): void {
    if (intervalSeconds <= 0) return;
    this.timer = setInterval(() => {
      this.save().catch((err: unknown) => this.log.error({ err }, 'periodic save failed'));
    }, intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Writes the current state; waits for a save already under way first. */
  async save(): Promise<void> {
    while (this.saving !== null) await this.saving;
    this.saving = this.write().finally(() => {
      this.saving = null;
    });
    return this.saving;
  }

  private async write(): Promise<void> {
    const contents = this.broker.snapshotContents();
    const bytes = encodeSnapshot(contents);
    const temporary = `${this.file}.${process.pid}.tmp`;
    try {
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.file);
    } catch (err) {
      await rm(temporary, { force: true });
      throw new PersistenceError('TERN_PERSISTENCE_SAVE', `cannot save ${this.file}: ${(err as Error).message}`, err);
    }
    this.log.debug({ file: this.file, bytes: bytes.length, retained: contents.retained.length }, 'snapshot saved');
  }
}
