// Every file the store publishes appears whole or not at all: write a temp name in the same
// directory, fsync it, rename over the final name, fsync the directory. A crash leaves at worst
// a `.tmp-<name>-<pid>-<random>` file, which readers never look at and the next command's
// repair removes once process <pid> is gone (src/store/repair.ts).
import { open, rename, mkdir, rm, readdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

export const TEMP_PREFIX = '.tmp-';

export function tempNameBeside(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameBeside(path);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
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
export async function sweepTemps(dir: string, isDead: (name: string) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const gone = names.filter((n) => n.startsWith(TEMP_PREFIX) && isDead(n));
  await Promise.all(gone.map((n) => rm(join(dir, n), { recursive: true, force: true })));
  return gone.map((n) => join(dir, n));
}
