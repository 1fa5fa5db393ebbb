// The store's disk usage (`tsbuild du`) and its garbage collection (`tsbuild prune`).
//
// Sizes are layer sizes (layerdb's `size`, what `docker history` and `docker system df` count),
// each layer once however many images share it. A layer is in use while some image's chain
// names it; layers no image uses are left by intermediate build stages (their RUN cache) and by
// interrupted work. Pruning never removes a layer an image uses: the set in use is read again
// after the images are gone and right before the layers go.
import type { Digest } from '../digest.js';
import { parseReference } from '../image/reference.js';
import { pruneCacheRecords } from './buildcache.js';
import { listImages } from './images.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';
import { deleteImage } from './remove.js';
import type { TaggedRef } from './repositories.js';

export interface ImageUsage {
  readonly id: Digest;
  readonly tags: readonly TaggedRef[];
  readonly created: string | undefined;
  /** Sum of the image's layer sizes: what `tsbuild images` shows. */
  readonly size: number;
  /** Bytes of its layers that another image uses too. */
  readonly sharedSize: number;
  /** Bytes of its layers no other image uses: what removing it alone frees. */
  readonly uniqueSize: number;
  /** No name:tag reference (a digest reference alone leaves an image untagged, as in Docker). */
  readonly untagged: boolean;
  /** Untagged, and no other image names it as its parent: what plain `prune` removes. */
  readonly dangling: boolean;
}

export interface DiskUsage {
  /** Newest first. */
  readonly images: readonly ImageUsage[];
  readonly layerCount: number;
  /** Bytes of every stored layer, each once. */
  readonly layerBytes: number;
  /** Layers no image uses, top of each chain first. */
  readonly unusedLayers: readonly LayerRecord[];
  /** What `prune` and `prune --all` would free. */
  readonly reclaimable: { readonly prune: number; readonly pruneAll: number };
}

export interface PrunePlan {
  readonly all: boolean;
  /** Multi-platform images (indexes) no tag names: their records go first, then their images as any untagged image. */
  readonly indexes: readonly Digest[];
  /** The images to remove: dangling ones, or with `all` every untagged one. */
  readonly images: readonly ImageUsage[];
  /** Every layer no remaining image would use, top of each chain first. */
  readonly layers: readonly LayerRecord[];
  /** Their bytes. */
  readonly bytes: number;
}

export type PruneEvent =
  | { readonly kind: 'untagged'; readonly ref: string }
  | { readonly kind: 'deleted-image'; readonly id: Digest }
  | { readonly kind: 'deleted-layer'; readonly chainId: Digest; readonly size: number }
  | { readonly kind: 'deleted-cache'; readonly key: string };

export interface PruneReport {
  readonly events: readonly PruneEvent[];
  /** Bytes of the layers removed. */
  readonly reclaimed: number;
}

/** What the store holds, read once. */
interface StoreState {
  readonly images: readonly ImageUsage[];
  /** Indexes no tag names. */
  readonly untaggedIndexes: readonly Digest[];
  /** Each image's chainIDs. */
  readonly chains: ReadonlyMap<Digest, readonly Digest[]>;
  readonly layers: readonly LayerRecord[];
}

async function readState(parts: StoreParts): Promise<StoreState> {
  const [views, layers, indexes, tags] = await Promise.all([
    listImages(parts),
    parts.layers.list(),
    parts.indexes.list(),
    parts.tags.all(),
  ]);
  const tagged = new Set(tags.map((t) => t.imageId));
  const untaggedIndexes = indexes.filter((id) => !tagged.has(id));
  const users = new Map<Digest, number>();
  for (const v of views) for (const { record: l } of v.layers) users.set(l.chainId, (users.get(l.chainId) ?? 0) + 1);
  const parents = new Set<Digest>();
  for (const v of views) {
    const parent = await parts.images.parent(v.id);
    if (parent !== undefined && parent !== v.id) parents.add(parent);
  }
  const images = views.map((v): ImageUsage => {
    const sharedSize = v.layers
      .map((l) => l.record)
      .filter((l) => users.get(l.chainId)! > 1)
      .reduce((n, l) => n + l.size, 0);
    const untagged = !v.tags.some((t) => t.tag !== '<none>');
    return {
      id: v.id,
      tags: v.tags,
      created: v.config.created,
      size: v.size,
      sharedSize,
      uniqueSize: v.size - sharedSize,
      untagged,
      dangling: untagged && !parents.has(v.id),
    };
  });
  return { images, untaggedIndexes, chains: new Map(views.map((v) => [v.id, v.layers.map((l) => l.record.chainId)])), layers };
}

function planFrom(state: StoreState, all: boolean): PrunePlan {
  const images = state.images.filter((i) => (all ? i.untagged : i.dangling));
  const removed = new Set(images.map((i) => i.id));
  const used = new Set<Digest>();
  for (const i of state.images) if (!removed.has(i.id)) for (const c of state.chains.get(i.id)!) used.add(c);
  const layers = topFirst(
    state.layers.filter((l) => !used.has(l.chainId)),
    state.layers,
  );
  return { all, indexes: state.untaggedIndexes, images, layers, bytes: layers.reduce((n, l) => n + l.size, 0) };
}

/** `layers` ordered so that a layer comes before its parent (deepest chains first). */
function topFirst(layers: readonly LayerRecord[], every: readonly LayerRecord[]): LayerRecord[] {
  const byId = new Map(every.map((l) => [l.chainId, l]));
  const depths = new Map<Digest, number>();
  const depth = (l: LayerRecord): number => {
    let d = depths.get(l.chainId);
    if (d === undefined) {
      const parent = l.parent !== undefined ? byId.get(l.parent) : undefined;
      d = parent ? depth(parent) + 1 : 0;
      depths.set(l.chainId, d);
    }
    return d;
  };
  return [...layers].sort((a, b) => depth(b) - depth(a) || (a.chainId < b.chainId ? -1 : a.chainId > b.chainId ? 1 : 0));
}

export async function diskUsage(parts: StoreParts): Promise<DiskUsage> {
  const state = await readState(parts);
  const used = new Set([...state.chains.values()].flat());
  return {
    images: state.images,
    layerCount: state.layers.length,
    layerBytes: state.layers.reduce((n, l) => n + l.size, 0),
    unusedLayers: topFirst(
      state.layers.filter((l) => !used.has(l.chainId)),
      state.layers,
    ),
    reclaimable: { prune: planFrom(state, false).bytes, pruneAll: planFrom(state, true).bytes },
  };
}

export async function planPrune(parts: StoreParts, opts: { all?: boolean } = {}): Promise<PrunePlan> {
  return planFrom(await readState(parts), opts.all === true);
}

/**
 * Carries out a plan. The store may have changed since it was made (a build finished while the
 * user read the prompt), so each step checks again: an image that gained a tag is kept, and a
 * layer is removed only if the plan named it, no image uses it now, and no kept layer stands on it.
 */
export async function prune(parts: StoreParts, plan: PrunePlan): Promise<PruneReport> {
  const events: PruneEvent[] = [];
  let reclaimed = 0;
  const sizes = new Map(plan.layers.map((l) => [l.chainId, l.size]));

  // Untagged indexes first (their images are untagged then, and go as any other below), checked
  // again under the lock: one a live build has just stored and is about to tag stays.
  for (const id of plan.indexes) {
    const gone = await parts.exclusive(async () => {
      if (!(await parts.indexes.has(id)) || (await parts.leased()).images.has(id)) return false;
      if ((await parts.tags.refsOf(id)).length > 0) return false;
      await parts.indexes.remove(id);
      return true;
    });
    if (gone) events.push({ kind: 'deleted-image', id });
  }

  for (const img of plan.images) {
    // Checked again under the lock: the image may have been tagged, or be one a live build or
    // load has just stored and is about to tag.
    const untagged = await parts.exclusive(async () => {
      if (!(await parts.images.has(img.id)) || (await parts.leased()).images.has(img.id)) return undefined;
      const refs = await parts.tags.refsOf(img.id);
      if (refs.some((r) => r.tag !== '<none>')) return undefined;
      for (const r of refs) await parts.tags.delete(parseReference(r.ref));
      return refs;
    });
    if (!untagged) continue;
    for (const r of untagged) events.push({ kind: 'untagged', ref: r.ref });
    const released = await deleteImage(parts, img.id);
    if (!released) continue;
    events.push({ kind: 'deleted-image', id: img.id });
    for (const { chainId, size } of released) {
      events.push({ kind: 'deleted-layer', chainId, size });
      reclaimed += size;
    }
  }

  // Unpublished under the lock, in one section (what images and live processes use is read in
  // it); their snapshot directories are deleted after it.
  const unpublished = await parts.exclusive(async () => {
    const used = await parts.layersInUse();
    const present = await parts.layers.list();
    const children = new Map<Digest, number>();
    for (const l of present) if (l.parent !== undefined) children.set(l.parent, (children.get(l.parent) ?? 0) + 1);
    const out: LayerRecord[] = [];
    for (const layer of topFirst(present, present)) {
      if (!sizes.has(layer.chainId) || used.has(layer.chainId) || (children.get(layer.chainId) ?? 0) > 0) continue;
      await parts.layers.remove(layer.chainId);
      if (layer.parent !== undefined) children.set(layer.parent, children.get(layer.parent)! - 1);
      out.push(layer);
    }
    // Ours to delete now: another process's repair must not race us for them.
    await parts.lease.add({ snapshots: out.map((l) => l.cacheId) });
    return out;
  });
  for (const layer of unpublished) {
    await parts.snapshotter.remove(layer.cacheId);
    events.push({ kind: 'deleted-layer', chainId: layer.chainId, size: layer.size });
    reclaimed += layer.size;
  }

  for (const key of await pruneCacheRecords(parts)) events.push({ kind: 'deleted-cache', key });
  return { events, reclaimed };
}
