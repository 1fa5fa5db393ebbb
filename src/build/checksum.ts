// What a COPY/ADD step's cache key sees of its sources: names, types, permission bits, sizes,
// link targets and content — not mtimes and not ownership (the context's owners are reset to
// 0 on copy). Two builds whose sources hash alike produce the same layer, so the second can
// reuse the first's (Docker's rule for COPY caching).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readlink } from 'node:fs/promises';
import type { BuildContext } from '../context/index.js';
import type { TreeEntry } from '../fs/copytree.js';
import { sha256, type Digest } from '../digest.js';

async function hashFile(path: string, into: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) into.update(chunk as Buffer);
}

async function hashEntry(context: BuildContext, entry: TreeEntry, name: string, into: Hash): Promise<void> {
  const st = entry.stats;
  const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
  into.update(`${kind}\0${name}\0${(st.mode & 0o7777).toString(8)}\0`);
  if (kind === 'f') {
    into.update(`${st.size}\0`);
    await hashFile(entry.hostPath, into);
  } else if (kind === 'l') {
    into.update(`${await readlink(entry.hostPath)}\0`);
  } else if (kind === 'o') {
    into.update(`${st.rdev}\0`);
  } else {
    for (const child of await context.readDir(entry)) {
      await hashEntry(context, child, `${name}/${child.name}`, into);
    }
  }
  into.update('\n');
}

/** One digest over every source of a COPY/ADD, in the order written. */
export async function sourcesChecksum(context: BuildContext, sources: readonly string[]): Promise<Digest> {
  const h = createHash('sha256');
  for (const source of sources) {
    h.update(`source\0${source}\0`);
    for (const match of await context.resolveSource(source)) {
      await hashEntry(context, match, match.name, h);
    }
  }
  return sha256(h.digest('hex'));
}
