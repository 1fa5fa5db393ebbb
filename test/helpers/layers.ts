// Reading what a stored layer really holds: rebuild its tar from tar-split and list it with GNU
// tar, an independent reader.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { chainIds, hex, type Digest } from '../../src/digest.js';
import { regenerateLayer } from '../../src/layer/index.js';

export interface TarEntry {
  readonly type: string; // first char of tar -tv's mode column: - d l h c b p
  readonly mode: string;
  readonly owner: string;
  readonly size: number;
  readonly name: string;
  readonly link?: string;
}

async function layerDir(root: string, driver: string, chainId: Digest): Promise<{ dir: string; fileRoot: string }> {
  const dir = join(root, 'image', driver, 'layerdb/sha256', hex(chainId));
  const cacheId = (await readFile(join(dir, 'cache-id'), 'utf8')).trim();
  const fileRoot = driver === 'overlay2' ? join(root, 'overlay2', cacheId, 'diff') : join(root, 'vfs/dir', cacheId);
  return { dir, fileRoot };
}

/** The entries of layer `index` (0 = bottom) of an image with these diff_ids. */
export async function layerEntries(root: string, driver: string, diffIds: Digest[], index: number): Promise<TarEntry[]> {
  const chainId = chainIds(diffIds)[index]!;
  const { dir, fileRoot } = await layerDir(root, driver, chainId);
  const tar = execa('tar', ['--numeric-owner', '-tvf', '-'], { stdin: 'pipe' });
  regenerateLayer(join(dir, 'tar-split.json.gz'), fileRoot).pipe(tar.stdin!);
  const { stdout } = await tar;
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      // drwxr-xr-x 0/0               0 2024-01-01 00:00 etc/
      const m = /^(\S)(\S{9})\s+(\S+)\s+(\d+|\d+,\s*\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
      if (!m) throw new Error(`unexpected tar -tv line: ${line}`);
      let name = m[5]!;
      let link: string | undefined;
      const arrow = name.indexOf(' -> ');
      const hard = name.indexOf(' link to ');
      if (arrow >= 0) [name, link] = [name.slice(0, arrow), name.slice(arrow + 4)];
      else if (hard >= 0) [name, link] = [name.slice(0, hard), name.slice(hard + 9)];
      return { type: m[1]!, mode: m[2]!, owner: m[3]!, size: Number.parseInt(m[4]!, 10), name, ...(link !== undefined ? { link } : {}) };
    });
}
