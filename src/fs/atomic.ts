// Files that appear whole or not at all (every file the store publishes, a tar-split, a saved
// archive): write a temp name in the same directory, fsync it, rename over the final name, fsync
// the directory. A crash leaves at worst a `.tmp-<name>-<pid>-<random>` file, which readers never
// look at and the store's repair removes once process <pid> is gone, or <pid> belongs to a process
// started after the file was written (src/store/repair.ts).
//
// fsync is most of what publishing a small layer costs (about 2 ms each on ext4, a journal
// commit). Files that are published together are therefore written and fsynced concurrently,
// and their directory fsynced once: concurrent fsyncs share one journal commit.
import { createWriteStream, open as openFd, fsync as fsyncFd, close as closeFd } from 'node:fs';
import { open, rename, mkdir, rm, readdir, link, copyFile, writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

export const TEMP_PREFIX = '.tmp-';

export function tempNameBeside(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * fsync(2) of a file or directory by path (a directory: so the names in it survive a crash).
 * Through the callback API on a plain descriptor: open, fsync and close are three requests to
 * libuv's thread pool and nothing else, without a FileHandle's reference counting and promise
 * plumbing, which a bare fsync does not need (and which is where the one hang seen in this code
 * sat: a `tsbuild load` on Node 20 idle for good between a FileHandle's open and its close, the
 * pool empty; never reproduced: docs/performance.md, issue 22's sixth and seventh rounds).
 */
function fsyncPath(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    openFd(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      fsyncFd(fd, (syncErr) => closeFd(fd, (closeErr) => (syncErr || closeErr ? reject(syncErr ?? closeErr) : resolve())));
    });
  });
}

export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir);
}

/**
 * Writes and fsyncs a new file. Only for a directory nobody reads yet (a write set that is
 * published by renaming the directory): elsewhere a reader could see it half written.
 */
export async function writeFileSynced(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * fsync(2) of several files and directories at once: concurrent fsyncs share a journal commit.
 * Settles only when every one has (the first failure is thrown then), so that a caller that
 * removes the files on failure does not race descriptors still open on them.
 */
export async function fsyncAll(paths: readonly string[]): Promise<void> {
  const failed = (await Promise.allSettled(paths.map(fsyncPath))).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Gives a private directory `dest` a copy of `src`: a hard link when both are on one
 * filesystem (no bytes copied), else a copy. Not fsynced: the caller fsyncs it (fsyncAll) with
 * the rest of what it publishes.
 */
export async function linkOrCopy(src: string, dest: string): Promise<void> {
  try {
    await link(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  await copyFile(src, dest);
}

export interface AtomicWriteOptions {
  readonly mode?: number;
  /**
   * false: no fsync, for a cache whose files are checked when read (a build cache record, a
   * context's checksums): still whole or absent to every process, killed or not, but a power
   * cut may lose or cut short what was written last, which then reads as a miss.
   */
  readonly durable?: boolean;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeFilesAtomic(dirname(path), { [basename(path)]: data }, opts);
}

/**
 * Publishes several files of one directory, each whole or not at all (a crash can leave some
 * published and not others). The temp files are written and fsynced concurrently, renamed,
 * and the directory is fsynced once (none of the fsyncs with `durable: false`).
 */
export async function writeFilesAtomic(
  dir: string,
  files: Record<string, string | Uint8Array>,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const { mode = 0o644, durable = true } = opts;
  await mkdir(dir, { recursive: true });
  const names = Object.keys(files);
  const temps = names.map((n) => tempNameBeside(join(dir, n)));
  try {
    await Promise.all(
      names.map((n, i) => (durable ? writeFileSynced(temps[i]!, files[n]!, mode) : writeFile(temps[i]!, files[n]!, { flag: 'wx', mode }))),
    );
    for (let i = 0; i < names.length; i++) await rename(temps[i]!, join(dir, names[i]!));
  } catch (err) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw err;
  }
  if (durable) await fsyncDir(dir);
}

/** Publishes a fully written directory under its final name. Fails if the name exists. */
export async function publishDir(tmpDir: string, finalDir: string): Promise<void> {
  await mkdir(dirname(finalDir), { recursive: true });
  await rename(tmpDir, finalDir);
  await fsyncDir(dirname(finalDir));
}

/**
 * Removes leftovers of interrupted atomic writes in a directory: `.tmp-*` names whose process is
 * gone (a live process's temp file is about to be renamed into place). Returns what it removed.
 */
export async function sweepTemps(dir: string, isDead: (name: string, path: string) => boolean | Promise<boolean>): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const gone: string[] = [];
  for (const n of names) if (n.startsWith(TEMP_PREFIX) && (await isDead(n, join(dir, n)))) gone.push(join(dir, n));
  await Promise.all(gone.map((p) => rm(p, { recursive: true, force: true })));
  return gone;
}

/**
 * A file written as a stream, then published whole by commit() or dropped by abort().
 * `durable: false` (an export out of the store: `save -o`, `build -o type=tar`) skips the
 * fsync: the file still appears whole or not at all to any process, killed or not, but a power
 * cut may leave it short, as `docker save -o` and `buildah push docker-archive:` leave theirs.
 * Waiting for the disk cost W7-save (a 300 MB archive) 0.7-0.9 s of its 1.8-2.1 s.
 */
export class AtomicFile {
  readonly stream: Writable;
  private readonly done: Promise<void>;
  private readonly tmpPath: string;

  private constructor(
    readonly path: string,
    private readonly durable: boolean,
  ) {
    this.tmpPath = tempNameBeside(path);
    // `flush: true` fsyncs the descriptor before it is closed.
    this.stream = createWriteStream(this.tmpPath, { flags: 'wx', mode: 0o644, flush: durable });
    this.done = finished(this.stream);
    // A failure is reported by commit(); keep Node from calling it unhandled meanwhile.
    this.done.catch(() => undefined);
  }

  static create(path: string, opts: { durable?: boolean } = {}): AtomicFile {
    return new AtomicFile(path, opts.durable ?? true);
  }

  /** Resolves when the stream has been ended and flushed; rejects if writing failed. */
  get written(): Promise<void> {
    return this.done;
  }

  /** Call after ending `stream` (directly or through a pipe): waits for it, then renames into place. */
  async commit(): Promise<void> {
    await this.done;
    await rename(this.tmpPath, this.path);
    if (this.durable) await fsyncDir(dirname(this.path));
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}
