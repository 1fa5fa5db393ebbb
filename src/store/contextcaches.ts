// Removing the build contexts' checksum caches (contexthash/: one file per context root) and
// directory memos (contexthash/trees/: one per source directory and .dockerignore text). Both
// only save reads and are never pruned on their own, so a runner that builds many temporary
// checkouts gathers one of each per checkout; `prune --cache` clears them (BuildKit's `builder
// prune` drops its context transfer cache likewise).
//
// Files only, never the directories, and never a `.tmp-` name: a build running meanwhile finds
// a miss where a file was (a file it has open stays readable), and its own writes still land,
// since the directory they are renamed into is still there.
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_PREFIX } from '../fs/atomic.js';

export interface RemovedContextCaches {
  readonly files: number;
  readonly size: number;
}

export async function removeContextCaches(dirs: readonly string[]): Promise<RemovedContextCaches> {
  let files = 0;
  let size = 0;
  for (const dir of dirs) {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isFile() || entry.name.startsWith(TEMP_PREFIX)) continue;
      const path = join(dir, entry.name);
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined) continue;
      await rm(path, { force: true });
      files++;
      size += st.size;
    }
  }
  return { files, size };
}
