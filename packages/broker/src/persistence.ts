/**
 * Single-node durability: the node's persistent sessions and retained messages are saved to
 * one file (periodically and at shutdown) and loaded at start, so a restart of the embedded
 * broker loses no queued message. A save writes a temporary file, syncs it and renames it over
 * the old one: a crash mid-save leaves the previous snapshot intact.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
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

export class SnapshotFile {
  readonly file: string;
  private readonly log: Logger;
  /** The write under way, so a periodic save and the final one never write at once. */
  private writing: Promise<void> | null = null;

  constructor(file: string, log: Logger) {
    this.file = file;
    this.log = log.child({ component: 'persistence' });
  }

  /** The saved snapshot, or null on a first start (no file yet). */
  async read(): Promise<Uint8Array | null> {
    try {
      return await readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.log.info({ file: this.file }, 'no snapshot yet: starting with no saved sessions');
        return null;
      }
      throw new PersistenceError('TERN_PERSISTENCE_LOAD', `cannot read ${this.file}: ${(err as Error).message}`, err);
    }
  }

  /** Writes `bytes` as the new snapshot; waits for a write already under way first. */
  async write(bytes: Uint8Array): Promise<void> {
    while (this.writing !== null) await this.writing;
    this.writing = this.replace(bytes).finally(() => {
      this.writing = null;
    });
    return this.writing;
  }

  private async replace(bytes: Uint8Array): Promise<void> {
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
    this.log.debug({ file: this.file, bytes: bytes.length }, 'snapshot saved');
  }
}
