// Taking images and layers out of the store: rmi's rules, and the one rollback every importer
// (load, pull, import) uses when it fails half way.
//
// A layer goes only when nothing needs it any more: no image stands on it, no live process
// leases it, and no other layer stands on it. The last rule matters for layers no image uses:
// an interrupted build leaves its published layers behind, and a later build may stack new
// ones on some of them; removing a layer below such a stack would leave its records naming a
// parent that is gone (Docker keeps a reference count per layer for the same reason).
//
// Records are unpublished under the store lock, in one section with the reads that decide it;
// the snapshot directories, which nothing names any more, are deleted after it (if this process
// dies in between, the next command's repair does it).
import { chainIds, hex, isDigest, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';
import { indexesNaming, resolveTarget } from './indexes.js';

export interface RemovedImage {
  /** The references taken off, e.g. `app:1`. */
  readonly untagged: readonly string[];
  /** The image (or a multi-platform image's index), when it went too (no tag was left). */
  readonly deleted?: Digest;
  /** A multi-platform image's images that went with its index (those no other index or tag names). */
  readonly deletedImages?: readonly Digest[];
}

/**
 * `rmi NAME`, as docker does it: removing by name drops that tag, and the image goes when no
 * tag is left; removing by ID drops every tag, which needs `force` when there are several.
 */
export async function removeImage(parts: StoreParts, name: string, opts: { force?: boolean } = {}): Promise<RemovedImage> {
  const target = await resolveTarget(parts, name);
  const id = target.kind === 'image' ? target.id : target.index.id;
  if (target.kind === 'image') {
    const holders = await indexesNaming(parts, id);
    if (holders.length > 0) {
      const names = (await parts.tags.all()).filter((t) => holders.includes(t.imageId)).map((t) => t.ref);
      throw new TsbuildError(
        `conflict: unable to delete ${hex(id).slice(0, 12)} - image is one platform of the multi-platform image ${
          names[0] ?? hex(holders[0]!).slice(0, 12)
        }: remove that instead`,
      );
    }
  }
  const refs = await parts.tags.refsOf(id);
  const byId = isDigest(name) || hex(id).startsWith(name);
  let untag = refs;
  if (!byId) {
    const ref = withDefaultTag(parseReference(name));
    untag = refs.filter((r) => r.ref === familiarString(ref));
  } else if (refs.length > 1 && !opts.force) {
    throw new TsbuildError(
      `conflict: unable to delete ${hex(id).slice(0, 12)} (must be forced) - image is referenced in multiple repositories`,
    );
  }
  const untagged: string[] = [];
  for (const r of untag) {
    await parts.tags.delete(parseReference(r.ref));
    untagged.push(r.ref);
  }
  if (target.kind === 'index') {
    if ((await parts.tags.refsOf(id)).length > 0) return { untagged };
    const deletedImages = await deleteIndex(parts, id);
    return { untagged, ...(deletedImages ? { deleted: id, deletedImages } : {}) };
  }
  // deleteImage checks again, under the store lock, that no tag came back meanwhile.
  const deleted = (await parts.tags.refsOf(id)).length === 0 && (await deleteImage(parts, id)) ? id : undefined;
  return { untagged, ...(deleted ? { deleted } : {}) };
}

/**
 * Deletes an untagged index that no live process leases, then each of its images that no tag
 * and no other index names. Undefined when the index was tagged again or is gone meanwhile;
 * else the images deleted.
 */
export async function deleteIndex(parts: StoreParts, id: Digest): Promise<Digest[] | undefined> {
  const members = await parts.exclusive(async () => {
    if ((await parts.tags.refsOf(id)).length > 0 || !(await parts.indexes.has(id))) return undefined;
    if ((await parts.leased()).images.has(id)) return undefined;
    const rec = await parts.indexes.get(id);
    await parts.indexes.remove(id);
    return rec.entries.map((e) => e.imageId);
  });
  if (!members) return undefined;
  const deleted: Digest[] = [];
  for (const image of members) if ((await deleteImage(parts, image)) !== undefined) deleted.push(image);
  return deleted;
}

/**
 * Deletes an untagged image's config, then each of its layers, top down, that nothing else
 * needs. If the image was tagged again meanwhile, or is gone already (another process), the
 * result is undefined; else the records of the layers removed.
 */
export async function deleteImage(parts: StoreParts, id: Digest): Promise<LayerRecord[] | undefined> {
  const released = await parts.exclusive(async () => {
    // Tagged again, or deleted already by another process (two prunes at once), or one platform
    // of a multi-platform image: not ours to delete.
    if ((await parts.tags.refsOf(id)).length > 0 || !(await parts.images.has(id))) return undefined;
    if ((await indexesNaming(parts, id)).length > 0) return undefined;
    const config = await parts.images.get(id);
    await parts.images.remove(id);
    return unpublishUnused(parts, chainIds(config.rootfs.diff_ids).reverse(), id);
  });
  if (!released) return undefined;
  await removeSnapshots(parts, released);
  return released;
}

/**
 * Undoes an import that failed half way: the indexes and images it stored (still untagged, since importers
 * tag last) and the layers it published that nothing else needs. What was there before stays.
 * `chains` in the order they were published.
 */
export async function rollBack(
  parts: StoreParts,
  added: { indexes?: readonly Digest[]; images?: readonly Digest[]; chains?: readonly Digest[] },
): Promise<void> {
  const released = await parts.exclusive(async () => {
    for (const id of [...(added.indexes ?? [])].reverse()) {
      if ((await parts.tags.refsOf(id)).length === 0) await parts.indexes.remove(id);
    }
    for (const id of [...(added.images ?? [])].reverse()) {
      if ((await parts.tags.refsOf(id)).length > 0 || !(await parts.images.has(id))) continue;
      if ((await indexesNaming(parts, id)).length === 0) await parts.images.remove(id);
    }
    return unpublishUnused(parts, [...(added.chains ?? [])].reverse());
  });
  await removeSnapshots(parts, released);
}

/**
 * Unpublishes those of `candidates` (top of each chain first) that no image (but `except`), no
 * live process and no remaining layer stands on. Call holding the store lock. The snapshots of
 * what it returns are leased to this process, so that another's repair leaves their deletion to us.
 */
async function unpublishUnused(parts: StoreParts, candidates: readonly Digest[], except?: Digest): Promise<LayerRecord[]> {
  if (candidates.length === 0) return [];
  const used = await parts.layersInUse(except);
  const children = new Map<Digest, number>();
  for (const l of await parts.layers.list()) {
    if (l.parent !== undefined) children.set(l.parent, (children.get(l.parent) ?? 0) + 1);
  }
  const released: LayerRecord[] = [];
  for (const chainId of candidates) {
    if (used.has(chainId) || (children.get(chainId) ?? 0) > 0) continue;
    const rec = await parts.layers.get(chainId);
    if (!rec) continue;
    await parts.layers.remove(chainId);
    if (rec.parent !== undefined) children.set(rec.parent, children.get(rec.parent)! - 1);
    released.push(rec);
  }
  await parts.lease.add({ snapshots: released.map((r) => r.cacheId) });
  return released;
}

async function removeSnapshots(parts: StoreParts, layers: readonly LayerRecord[]): Promise<void> {
  for (const rec of layers) await parts.snapshotter.remove(rec.cacheId);
}
