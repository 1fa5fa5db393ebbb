// The build cache's records: image/<driver>/buildcache/<key hex>, one small JSON file per
// cached step, naming the layer the step produced and the history entry it wrote. A step that
// makes no layer (ENV, LABEL, a RUN that changed nothing) has a record too, naming the layer it
// stood on (none on scratch), so that its history entry, and with it the image ID, is the same
// on a cached rebuild. What goes into a key is the builder's business
// (src/builder/cachekeys.ts); the store keeps the records, and prune takes out those whose
// layer is gone, since they can never hit again.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hex, isDigest, parseDigest, type Digest } from '../digest.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { HistoryEntry } from '../image/config.js';
import type { StoreParts } from './parts.js';

export interface CacheRecord {
  /**
   * The layer the step produced; for a step that made none (its history entry has
   * `empty_layer`), the layer it stood on, or none on scratch.
   */
  readonly chainId?: Digest;
  readonly history: HistoryEntry;
  /** A run of steps that made no layer: the created times of its history entries, in order. */
  readonly createdTimes?: readonly string[];
}

/** The record for `key`, if there is one and its layer is still stored (else it is a miss). */
export async function getCacheRecord(parts: StoreParts, key: Digest): Promise<CacheRecord | undefined> {
  let raw: { chainId?: string; history: HistoryEntry; createdTimes?: unknown };
  try {
    raw = JSON.parse(await readFile(join(parts.paths.buildcache, hex(key)), 'utf8')) as typeof raw;
  } catch {
    return undefined; // missing, or not a record of ours: a miss
  }
  if (typeof raw.history !== 'object' || raw.history === null) return undefined;
  const times = Array.isArray(raw.createdTimes) && raw.createdTimes.every((t) => typeof t === 'string') ? raw.createdTimes : undefined;
  const extra = times ? { createdTimes: times as string[] } : {};
  // A step on scratch that made no layer stands on nothing: its record names no layer.
  if (raw.chainId === undefined) return raw.history.empty_layer ? { history: raw.history, ...extra } : undefined;
  if (!isDigest(raw.chainId)) return undefined;
  const chainId = parseDigest(raw.chainId);
  // A record whose layer has since been removed is a miss, not an error.
  if (!(await parts.layers.exists(chainId))) return undefined;
  return { chainId, history: raw.history, ...extra };
}

/**
 * Not fsynced: a record only saves work. A kill leaves it whole or absent (the rename); a power
 * cut may lose or cut short the last ones written, and getCacheRecord reads those as misses.
 */
export async function putCacheRecord(parts: StoreParts, key: Digest, rec: CacheRecord): Promise<void> {
  await writeFileAtomic(join(parts.paths.buildcache, hex(key)), JSON.stringify(rec), { durable: false });
}

/** Removes the records whose layer no longer exists; returns their names. */
export async function pruneCacheRecords(parts: StoreParts): Promise<string[]> {
  const stale = await staleCacheRecords(parts);
  for (const name of stale) await rm(join(parts.paths.buildcache, name), { force: true });
  return stale;
}

/** Records whose layer no longer exists. A record that is not `{"chainId": ...}` is not ours to judge and stays. */
async function staleCacheRecords(parts: StoreParts): Promise<string[]> {
  const dir = parts.paths.buildcache;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale: string[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue; // temporary files of an atomic write in progress
    let chainId: unknown;
    try {
      const rec = JSON.parse(await readFile(join(dir, name), 'utf8')) as unknown;
      chainId = typeof rec === 'object' && rec !== null ? (rec as { chainId?: unknown }).chainId : undefined;
    } catch (err) {
      // Removed meanwhile by another prune, or not JSON: either way nothing to do here.
      if (err instanceof SyntaxError || (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (typeof chainId === 'string' && isDigest(chainId) && !(await parts.layers.exists(chainId))) stale.push(name);
  }
  return stale;
}
