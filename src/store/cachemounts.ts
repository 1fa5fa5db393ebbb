// The directories of RUN --mount=type=cache: package-manager downloads and compiler caches that
// survive between builds and never become part of a layer. BuildKit keeps them as mutable
// snapshots of its cache manager; here they are plain directories under the store root:
//
//   <root>/cachemounts/<sha256 of the id (and of its base, see CacheMountRequest)>/
//     id          the id as written (for `tsbuild du`)
//     0/ 1/ …     instances: 0 is the one `shared` and `locked` use; `private` takes the first
//                 instance no one else holds, and makes a new one when all are in use
//     0.lock …    flock(2) files: a build holds one for each instance it has mounted
//
// BuildKit's sharing rules (Dockerfile reference, RUN --mount=type=cache) become lock modes on an
// instance: shared takes a shared lock (many builds write at once), locked an exclusive one (a
// second build waits), private an exclusive one without waiting (busy: the next instance).
// `prune` takes an instance only when it can lock it exclusively without waiting, so a cache in
// use is never removed under a running step. The locks are the native helper's (lock.ts): the
// kernel drops them when a build dies, however it dies.
import { exists } from '../fs/exists.js';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LockProcess } from './lock.js';

export type CacheSharing = 'shared' | 'private' | 'locked';

export interface CacheMountRequest {
  readonly id: string;
  /**
   * What else tells caches of one id apart: BuildKit's cache is keyed by its id and by the
   * directory it starts from, so the same id with another `from`, `mode`, `uid` or `gid` is
   * another cache. '' when none of them was given.
   */
  readonly base: string;
  readonly sharing: CacheSharing;
  /** Applied to the instance's directory when it is made (BuildKit's mode, uid, gid). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Fills a new instance's directory (`from` + `source`); called once, before first use. */
  readonly seed?: (dir: string) => Promise<void>;
}

/** An instance held by this process until `release`. */
export interface HeldCacheMount {
  readonly dir: string;
  release(): void;
}

export interface CacheMountUsage {
  readonly id: string;
  readonly instances: number;
  readonly size: number;
}

export function cacheMountsDir(root: string): string {
  return join(root, 'cachemounts');
}

function entryDir(root: string, id: string, base: string): string {
  return join(
    cacheMountsDir(root),
    createHash('sha256')
      .update(base === '' ? id : `${id}\0${base}`)
      .digest('hex'),
  );
}

/**
 * Takes an instance of the cache `req.id` as its sharing mode says, making it if need be.
 * `exclusive` is the store lock: instances are made under it, so two builds never make one twice.
 */
export async function acquireCacheMount(
  root: string,
  req: CacheMountRequest,
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<HeldCacheMount> {
  const entry = entryDir(root, req.id, req.base);
  await mkdir(entry, { recursive: true, mode: 0o700 });
  for (let n = 0; ; n++) {
    const lock = new LockProcess(join(entry, `${n}.lock`));
    try {
      if (req.sharing === 'private') {
        if ((await lock.request('t')) === 'busy') {
          lock.close();
          continue;
        }
      } else {
        await lock.request(req.sharing === 'locked' ? 'x' : 's');
      }
      const dir = join(entry, String(n));
      await exclusive(() => ensureInstance(entry, dir, req));
      return { dir, release: () => lock.close() };
    } catch (err) {
      lock.close();
      throw err;
    }
  }
}

async function ensureInstance(entry: string, dir: string, req: CacheMountRequest): Promise<void> {
  if (await exists(dir)) return;
  await writeFile(join(entry, 'id'), req.id);
  // Made aside and renamed: a build killed while seeding leaves a scratch directory, not a cache.
  const scratch = await mkdtemp(join(entry, '.new-'));
  try {
    if (req.seed) await req.seed(scratch);
    await chown(scratch, req.uid, req.gid);
    await chmod(scratch, req.mode);
    await rename(scratch, dir);
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}

/** Every cache with at least one instance, with its bytes on disk. */
export async function listCacheMounts(root: string): Promise<CacheMountUsage[]> {
  const out: CacheMountUsage[] = [];
  for (const name of await readdir(cacheMountsDir(root)).catch(() => [] as string[])) {
    const entry = join(cacheMountsDir(root), name);
    const instances = (await readdir(entry).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
    if (instances.length === 0) continue;
    const id = await readFile(join(entry, 'id'), 'utf8').catch(() => name);
    let size = 0;
    for (const n of instances) size += await treeSize(join(entry, n));
    out.push({ id, instances: instances.length, size });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Removes every instance no build holds; returns what went. Instances in use stay. */
export async function removeCacheMounts(root: string): Promise<CacheMountUsage[]> {
  const removed: CacheMountUsage[] = [];
  for (const name of await readdir(cacheMountsDir(root)).catch(() => [] as string[])) {
    const entry = join(cacheMountsDir(root), name);
    const id = await readFile(join(entry, 'id'), 'utf8').catch(() => name);
    let size = 0;
    let count = 0;
    for (const n of await readdir(entry).catch(() => [] as string[])) {
      const dir = join(entry, n);
      if (n.startsWith('.new-')) {
        // A scratch directory whose maker is gone (a live maker holds the store lock, as we do not).
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (!/^\d+$/.test(n)) continue;
      const lock = new LockProcess(join(entry, `${n}.lock`));
      try {
        if ((await lock.request('t')) === 'busy') continue;
        size += await treeSize(dir);
        await rm(dir, { recursive: true, force: true });
        count++;
      } finally {
        lock.close();
      }
    }
    if (count > 0) removed.push({ id, instances: count, size });
  }
  return removed;
}

/** Bytes of the regular files below `dir` (symlinks not followed). */
async function treeSize(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await treeSize(path);
    else if (e.isFile()) total += (await lstat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
