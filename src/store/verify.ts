// `tsbuild verify`: the store read back in full, as a user runs it after a crash or a disk
// error. Every layer is rebuilt from its tar-split and its files and hashed against its diffID
// (the same check save and push make as they read), its record against its chainID and parent,
// its snapshot against being there; every image's config against its ID and its layers against
// being stored; every tag against its image. With repair, what is broken goes: the images that
// are broken or stand on a broken layer (their tags first), then the broken layers and those
// above them — what is left is whole, and a build or pull makes the rest again.
import { access } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chainIdOf, chainIds, sha256, type Digest } from '../digest.js';
import { parseConfig } from '../image/config.js';
import { parseReference } from '../image/reference.js';
import { storedLayer } from './images.js';
import { parseIndexRecord } from './indexdb.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';

export interface Problem {
  readonly kind: 'image' | 'layer' | 'tag';
  /** The image ID, chainID or reference. */
  readonly id: string;
  readonly problem: string;
}

export interface VerifyReport {
  readonly images: number;
  readonly layers: number;
  readonly problems: readonly Problem[];
  /** Images broken, or standing on a broken layer. */
  readonly brokenImages: readonly Digest[];
  /** Multi-platform images (indexes) unreadable, or naming a broken or missing image. */
  readonly brokenIndexes: readonly Digest[];
  /** Broken layers and the layers above them, bottom first. */
  readonly brokenChains: readonly Digest[];
}

/** Checks the images given (by ID) and their layers, or everything. */
export async function verifyStore(parts: StoreParts, only?: readonly Digest[]): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const records = new Map((await parts.layers.list()).map((r) => [r.chainId, r]));
  const imageIds = only ?? (await parts.images.list());
  // Which layers to read: the given images' chains, or every layer.
  const wanted = new Set<Digest>();
  const configs = new Map<Digest, Digest[]>();
  const brokenImages = new Set<Digest>();
  for (const id of imageIds) {
    let bytes: Buffer;
    try {
      bytes = await parts.images.getBytes(id);
    } catch (err) {
      problems.push({ kind: 'image', id, problem: `its config cannot be read: ${(err as Error).message}` });
      brokenImages.add(id);
      continue;
    }
    if (sha256(bytes) !== id) {
      problems.push({ kind: 'image', id, problem: `its config's content hashes to ${sha256(bytes)}` });
      brokenImages.add(id);
      continue;
    }
    let chains: Digest[];
    try {
      chains = chainIds(parseConfig(bytes).rootfs.diff_ids);
    } catch (err) {
      problems.push({ kind: 'image', id, problem: `its config is not an image config: ${(err as Error).message}` });
      brokenImages.add(id);
      continue;
    }
    configs.set(id, chains);
    for (const c of chains) wanted.add(c);
  }
  if (!only) for (const c of records.keys()) wanted.add(c);

  const brokenLayers = new Set<Digest>();
  for (const chainId of wanted) {
    const rec = records.get(chainId);
    if (!rec) continue; // an image's missing layer is the image's problem, below
    const problem = await layerProblem(parts, rec, records);
    if (problem) {
      problems.push({ kind: 'layer', id: chainId, problem });
      brokenLayers.add(chainId);
    }
  }
  // A layer on a broken one is broken too: its files are the broken one's plus its own.
  const above = (c: Digest): boolean => {
    for (let id: Digest | undefined = c; id; id = records.get(id)?.parent) if (brokenLayers.has(id)) return true;
    return false;
  };
  const brokenChains = [...records.values()].filter((r) => above(r.chainId)).map((r) => r.chainId);
  const broken = new Set(brokenChains);
  for (const [id, chains] of configs) {
    const missing = chains.find((c) => !records.has(c));
    if (missing) {
      problems.push({ kind: 'image', id, problem: `its layer ${missing} is not in the store` });
      brokenImages.add(id);
    } else if (chains.some((c) => broken.has(c))) {
      problems.push({ kind: 'image', id, problem: 'it stands on a broken layer' });
      brokenImages.add(id);
    }
  }
  // A multi-platform image is whole when each of its platforms' images is.
  const brokenIndexes: Digest[] = [];
  for (const id of await parts.indexes.list()) {
    let problem: string | undefined;
    try {
      const bytes = await parts.indexes.getBytes(id);
      if (sha256(bytes) !== id) problem = `its record's content hashes to ${sha256(bytes)}`;
      else {
        const rec = parseIndexRecord(id, bytes);
        if (only && !rec.entries.some((e) => only.includes(e.imageId))) continue;
        const bad = [];
        for (const e of rec.entries) if (brokenImages.has(e.imageId) || !(await parts.images.has(e.imageId))) bad.push(e.imageId);
        if (bad.length > 0) problem = `its image ${bad[0]} is broken or not in the store`;
      }
    } catch (err) {
      problem = `its record cannot be read: ${(err as Error).message}`;
    }
    if (problem) {
      problems.push({ kind: 'image', id, problem: `multi-platform image: ${problem}` });
      brokenIndexes.push(id);
    }
  }
  for (const t of await parts.tags.all()) {
    if (!(await parts.images.has(t.imageId)) && !(await parts.indexes.has(t.imageId)))
      problems.push({ kind: 'tag', id: t.ref, problem: `it names ${t.imageId}, which is not in the store` });
  }
  const depth = (c: Digest): number => {
    let n = 0;
    for (let id: Digest | undefined = c; id; id = records.get(id)?.parent) n++;
    return n;
  };
  return {
    images: imageIds.length,
    layers: wanted.size,
    problems,
    brokenImages: [...brokenImages],
    brokenIndexes,
    brokenChains: brokenChains.sort((a, b) => depth(a) - depth(b)),
  };
}

/** What is wrong with one layer, or undefined. */
async function layerProblem(parts: StoreParts, rec: LayerRecord, records: ReadonlyMap<Digest, LayerRecord>): Promise<string | undefined> {
  if (chainIdOf(rec.parent, rec.diffId) !== rec.chainId)
    return `its record names diff ${rec.diffId} on ${rec.parent ?? 'nothing'}, which is another chain`;
  if (rec.parent !== undefined && !records.has(rec.parent)) return `the layer below it, ${rec.parent}, is not in the store`;
  try {
    await access(parts.snapshotter.fileRoot(rec.cacheId));
  } catch {
    return `its files (${rec.cacheId}) are missing`;
  }
  try {
    // Rebuilt from the tar-split and the files, and hashed against the diffID as it streams.
    await pipeline(await storedLayer(parts, rec).uncompressed(), new Writable({ write: (_c, _e, cb) => cb() }));
  } catch (err) {
    return `its content does not rebuild: ${(err as Error).message}`;
  }
  return undefined;
}

/** Removes what the report found broken: the indexes and images (and their tags), then the broken layers. */
export async function repairStore(parts: StoreParts, report: VerifyReport): Promise<void> {
  const { rollBack } = await import('./remove.js');
  const broken = new Set([...report.brokenImages, ...report.brokenIndexes]);
  for (const t of await parts.tags.all()) {
    const gone = !(await parts.images.has(t.imageId)) && !(await parts.indexes.has(t.imageId));
    if (broken.has(t.imageId) || gone) await parts.tags.delete(parseReference(t.ref));
  }
  await rollBack(parts, { indexes: report.brokenIndexes, images: report.brokenImages, chains: report.brokenChains });
}
