// Every file the store publishes appears whole or not at all: write a temp name in the same
// directory, fsync it, rename over the final name, fsync the directory. A crash leaves at worst
// a `.tmp-*` file, which readers never look at and `Store.open` sweeps away.
import { open, rename, mkdir, rm, readdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

export const TEMP_PREFIX = '.tmp-';

export function tempNameBeside(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`);
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

/** Removes leftovers of interrupted atomic writes in a directory. */
export async function sweepTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith(TEMP_PREFIX)).map((n) => rm(join(dir, n), { recursive: true, force: true })));
}
