// The build cache for RUN steps: a step whose parent layer, command, and environment match an
// earlier build's reuses that build's layer instead of running again (Docker's cache rule).
// Records live in image/<driver>/buildcache/<key>, one small JSON file each.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hex, parseDigest, sha256, type Digest } from '../digest.js';
import type { HistoryEntry } from '../image/config.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Store } from '../store/store.js';

export interface CacheRecord {
  readonly chainId: Digest;
  readonly history: HistoryEntry;
}

export class BuildCache {
  private readonly dir: string;
  constructor(private readonly store: Store) {
    this.dir = join(store.root, 'image', store.driver, 'buildcache');
  }

  /** A key over everything that determines a step's result. */
  static key(parts: Record<string, unknown>): Digest {
    return sha256(JSON.stringify(parts));
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    let raw: { chainId: string; history: HistoryEntry };
    try {
      raw = JSON.parse(await readFile(join(this.dir, hex(key)), 'utf8')) as typeof raw;
    } catch {
      return undefined;
    }
    const chainId = parseDigest(raw.chainId);
    // A record whose layer has since been removed is a miss, not an error.
    if (!(await this.store.layers.exists(chainId))) return undefined;
    return { chainId, history: raw.history };
  }

  async put(key: Digest, rec: CacheRecord): Promise<void> {
    await writeFileAtomic(join(this.dir, hex(key)), JSON.stringify(rec));
  }
}
