// Files that appear complete or not at all: written under a temporary name in the same
// directory, fsynced, renamed over the final name, and the directory fsynced so the rename
// survives a crash. A reader of layerdb never sees half a tar-split.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

export class AtomicFile {
  readonly stream: Writable;
  private readonly done: Promise<void>;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
  ) {
    // `flush: true` fsyncs the descriptor before it is closed.
    this.stream = createWriteStream(tmpPath, { flags: 'wx', mode: 0o644, flush: true });
    this.done = finished(this.stream);
    // A failure is reported by commit(); keep Node from calling it unhandled meanwhile.
    this.done.catch(() => undefined);
  }

  static create(path: string): AtomicFile {
    const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    return new AtomicFile(path, tmp);
  }

  /** Resolves when the stream has been ended and flushed; rejects if writing failed. */
  get written(): Promise<void> {
    return this.done;
  }

  /** Call after ending `stream` (directly or through a pipe): waits for it, then renames into place. */
  async commit(): Promise<void> {
    await this.done;
    await rename(this.tmpPath, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}
