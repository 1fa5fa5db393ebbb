// What a whole store looks like, checked from the outside (files on disk and the kernel's mount
// table), for the kill, concurrency and disk-full tests. Each check returns the problems found,
// so a failing test says all of them at once.
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { mountsBelow } from '../helpers/tsbuild.js';

const HEX64 = /^[0-9a-f]{64}$/;

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function chainIdOf(parent: string | undefined, diffId: string): string {
  return parent === undefined ? diffId : `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`;
}

/** Temporary files, directories and mounts: what no command should leave once it has ended. */
export async function leftovers(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const m of await mountsBelow(root)) if (m !== root) found.push(`mount ${m}`);
  for (const n of await names(join(root, 'tmp'))) found.push(`temp dir tmp/${n}`);
  for (const n of await names(join(root, 'leases'))) found.push(`lease leases/${n}`);
  for (const driver of await names(join(root, 'image'))) {
    const meta = join(root, 'image', driver);
    for (const n of await names(join(meta, 'layerdb', 'tmp'))) found.push(`layerdb temp ${driver}/layerdb/tmp/${n}`);
  }
  for (const p of await tempFiles(root)) found.push(`temp file ${p}`);
  for (const n of await names(join(root, 'overlay2'))) if (n.startsWith('.probe-')) found.push(`overlay probe overlay2/${n}`);
  found.push(...(await orphans(root)));
  return found;
}

/**
 * Every `.tmp-` name of an atomic write anywhere in the store, wherever it was written
 * (repositories.json, image configs and metadata, layer records, build cache records, context
 * checksums, blob records): not inside snapshots or cache mounts, whose names are an image's or
 * a build's, nor in tmp/ and leases/, reported above.
 */
async function tempFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const contents = new Set(['tmp', 'leases', 'cachemounts', 'overlay2', 'vfs'].map((d) => join(root, d)));
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.name.startsWith('.tmp-')) found.push(relative(root, p));
      else if (e.isDirectory() && !contents.has(p)) await walk(p);
    }
  };
  await walk(root);
  for (const d of ['overlay2', 'vfs', 'vfs/dir', 'cachemounts'])
    for (const n of await names(join(root, d))) if (n.startsWith('.tmp-')) found.push(`${d}/${n}`);
  return found;
}

/** Snapshots no layer record names (a layer in the making, or one a dead process left). */
async function orphans(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const driver of await names(join(root, 'image'))) {
    const meta = join(root, 'image', driver);
    const cacheIds = new Set<string>();
    for (const hex of await names(join(meta, 'layerdb', 'sha256'))) {
      const id = await readFile(join(meta, 'layerdb', 'sha256', hex, 'cache-id'), 'utf8').catch(() => undefined);
      if (id !== undefined) cacheIds.add(id.trim());
    }
    const snapshots =
      driver === 'overlay2'
        ? (await names(join(root, 'overlay2'))).filter((n) => n !== 'l' && !n.startsWith('.'))
        : await names(join(root, 'vfs', 'dir'));
    for (const s of snapshots) if (!cacheIds.has(s)) found.push(`snapshot ${driver}/${s} belongs to no layer`);
    if (driver === 'overlay2') {
      for (const l of await names(join(root, 'overlay2', 'l'))) {
        const target = await readlink(join(root, 'overlay2', 'l', l));
        if (!(await exists(join(root, 'overlay2', 'l', target)))) found.push(`overlay2 link l/${l} points at nothing`);
      }
    }
  }
  return found;
}

/**
 * Every layer record whole and backed by its snapshot, every image's config intact with all its
 * layers, every tag pointing at an image: what a reader may see at any moment.
 */
export async function inconsistencies(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const driver of await names(join(root, 'image'))) {
    const meta = join(root, 'image', driver);
    const snapshotDir = (id: string) => (driver === 'overlay2' ? join(root, 'overlay2', id, 'diff') : join(root, 'vfs', 'dir', id));
    const chains = new Map<string, { parent?: string; cacheId: string }>();
    for (const hex of await names(join(meta, 'layerdb', 'sha256'))) {
      const dir = join(meta, 'layerdb', 'sha256', hex);
      const read = (f: string) =>
        readFile(join(dir, f), 'utf8').then(
          (s) => s.trim(),
          () => undefined,
        );
      const [diff, size, cacheId, parent] = await Promise.all([read('diff'), read('size'), read('cache-id'), read('parent')]);
      if (diff === undefined || size === undefined || cacheId === undefined || !(await exists(join(dir, 'tar-split.json.gz')))) {
        found.push(`layer ${hex} is incomplete (${(await names(dir)).join(', ')})`);
        continue;
      }
      if (!/^\d+$/.test(size)) found.push(`layer ${hex} has size ${JSON.stringify(size)}`);
      if (chainIdOf(parent, diff) !== `sha256:${hex}`) found.push(`layer ${hex}: its diff and parent do not give its chainID`);
      if (!(await exists(snapshotDir(cacheId)))) found.push(`layer ${hex}: its snapshot ${cacheId} is missing`);
      chains.set(`sha256:${hex}`, { ...(parent !== undefined ? { parent } : {}), cacheId });
    }
    for (const [id, rec] of chains)
      if (rec.parent !== undefined && !chains.has(rec.parent)) found.push(`layer ${id}: its parent ${rec.parent} is missing`);
    const images = new Set<string>();
    for (const hex of await names(join(meta, 'imagedb', 'content', 'sha256'))) {
      if (!HEX64.test(hex)) continue;
      const bytes = await readFile(join(meta, 'imagedb', 'content', 'sha256', hex));
      if (createHash('sha256').update(bytes).digest('hex') !== hex) {
        found.push(`image ${hex}: its config does not hash to its ID`);
        continue;
      }
      images.add(`sha256:${hex}`);
      let config: { rootfs?: { diff_ids?: string[] } };
      try {
        config = JSON.parse(bytes.toString('utf8')) as typeof config;
      } catch {
        found.push(`image ${hex}: its config is not JSON`);
        continue;
      }
      let chain: string | undefined;
      for (const diffId of config.rootfs?.diff_ids ?? []) {
        chain = chainIdOf(chain, diffId);
        if (!chains.has(chain)) found.push(`image ${hex}: layer ${chain} is missing`);
      }
    }
    // Multi-platform images: index records naming stored images; a tag may name one.
    for (const hex of await names(join(meta, 'indexdb', 'content', 'sha256'))) {
      if (!HEX64.test(hex)) continue;
      const bytes = await readFile(join(meta, 'indexdb', 'content', 'sha256', hex));
      if (createHash('sha256').update(bytes).digest('hex') !== hex) {
        found.push(`index ${hex}: its record does not hash to its ID`);
        continue;
      }
      images.add(`sha256:${hex}`);
      try {
        const rec = JSON.parse(bytes.toString('utf8')) as { manifests?: { image?: string }[] };
        for (const m of rec.manifests ?? []) if (!images.has(m.image ?? '')) found.push(`index ${hex}: its image ${m.image} is missing`);
      } catch {
        found.push(`index ${hex}: its record is not JSON`);
      }
    }
    const repos = await readFile(join(meta, 'repositories.json'), 'utf8').catch(() => undefined);
    if (repos !== undefined) {
      let parsed: { Repositories?: Record<string, Record<string, string>> };
      try {
        parsed = JSON.parse(repos) as typeof parsed;
        for (const refs of Object.values(parsed.Repositories ?? {})) {
          for (const [ref, id] of Object.entries(refs)) if (!images.has(id)) found.push(`tag ${ref} points at missing image ${id}`);
        }
      } catch {
        found.push('repositories.json is not JSON');
      }
    }
  }
  return found;
}

/** repositories.json as a flat map ref -> image ID. */
export async function tags(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const driver of await names(join(root, 'image'))) {
    const text = await readFile(join(root, 'image', driver, 'repositories.json'), 'utf8').catch(() => '{}');
    const parsed = JSON.parse(text) as { Repositories?: Record<string, Record<string, string>> };
    for (const refs of Object.values(parsed.Repositories ?? {})) Object.assign(out, refs);
  }
  return out;
}

/** What a command may add to the store: images, layers, tags. */
export async function contents(root: string): Promise<{ images: string[]; layers: string[]; tags: Record<string, string> }> {
  const list = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [])).sort();
  const meta = join(root, 'image', 'overlay2');
  return {
    images: await list(join(meta, 'imagedb', 'content', 'sha256')),
    layers: await list(join(meta, 'layerdb', 'sha256')),
    tags: await tags(root),
  };
}
