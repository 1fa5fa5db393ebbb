// Snapshots as the store hands them out: leased while in use, and turned into published layers.
// The snapshotter knows directories and mounts, the differ (src/layer/differ.ts) tars; this is
// where a snapshot becomes a layer record under its chainID, and where leases make sure that
// rmi and prune in another process never take a layer a snapshot stands on.
import { mkdir, rm } from 'node:fs/promises';
import type { Digest } from '../digest.js';
import { join } from 'node:path';
import { compare, apply, type DiffOptions } from '../layer/differ.js';
import type { LayerDescriptor } from '../layer/types.js';
import type { Mount } from '../runtime/types.js';
import { reapLater } from '../runtime/helper.js';
import { newSnapshotKey, removeTreesNow, type PrepareOptions } from '../snapshot/snapshotter.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';

/** A writable snapshot on a layer, before it is committed or discarded. */
export interface ActiveSnapshot {
  readonly key: string;
  /** The layer it stands on (none: an empty bottom). */
  readonly parent: LayerRecord | undefined;
  readonly mounts: readonly Mount[];
}

/**
 * Creates a writable snapshot on `parent`, leasing both first (under the lock, after checking
 * that `parent` still exists): from here until this process exits, rmi and prune leave
 * `parent`'s chain alone and repair leaves the snapshot alone.
 */
export async function prepare(parts: StoreParts, parent: LayerRecord | undefined, opts: PrepareOptions = {}): Promise<ActiveSnapshot> {
  const key = newSnapshotKey();
  await parts.exclusive(async () => {
    if (parent) await parts.mustStillHave(parent.chainId);
    await parts.lease.add({ snapshots: [key], ...(parent ? { chains: [parent.chainId] } : {}) });
  });
  try {
    return { key, parent, mounts: await parts.snapshotter.prepare(key, parent?.cacheId, opts) };
  } catch (err) {
    await parts.snapshotter.remove(key);
    throw err;
  }
}

/** Read-only mounts of `layer`'s whole filesystem, its chain leased for the life of this process. */
export async function view(parts: StoreParts, layer: LayerRecord | undefined): Promise<Mount[]> {
  if (layer) {
    await parts.exclusive(async () => {
      await parts.mustStillHave(layer.chainId);
      await parts.lease.add({ chains: [layer.chainId] });
    });
  }
  return parts.snapshotter.view(layer?.cacheId);
}

export interface CommitOptions extends Omit<DiffOptions, 'tarSplitPath'> {
  /**
   * The snapshot's mount, still being taken down: its layer is written meanwhile from the upper
   * dir, and published once this has settled (and only if it succeeded).
   */
  readonly unmounted?: Promise<void>;
}

/**
 * Commits a snapshot as a layer on its parent: the differ writes its tar-split and says its
 * diffID, and the layer is published under its chainID. If that chain exists already, the
 * snapshot was identical to a stored one and is dropped: this is how layers are shared. The
 * snapshot is the caller's to discard if this throws.
 */
export async function commit(parts: StoreParts, snap: ActiveSnapshot, opts: CommitOptions = {}): Promise<LayerRecord> {
  const { unmounted, ...diff } = opts;
  const describe = async (tarSplitPath: string): Promise<LayerDescriptor> =>
    compare(await parts.snapshotter.view(snap.parent?.cacheId), snap.mounts, { ...diff, tarSplitPath });
  if (unmounted === undefined) {
    await parts.snapshotter.commit(snap.key);
    // The snapshot's own mounts as the upper side: the differ reads an overlay's upper dir
    // directly, and a plain directory beside its parent's (the init layer is gone by now).
    return (await publish(parts, snap, describe)).record;
  }
  // Still being unmounted: the upper dir is read meanwhile (an overlay's layer does not depend
  // on its init layer, a lower dir of the mount, which goes once the mount has).
  const { record } = await publish(parts, snap, async (tarSplitPath) => {
    // Both settle before anything fails: no removal starts while the init layer is being removed.
    const [desc, committed] = await Promise.allSettled([describe(tarSplitPath), unmounted.then(() => parts.snapshotter.commit(snap.key))]);
    if (desc.status === 'rejected') throw desc.reason;
    if (committed.status === 'rejected') throw committed.reason;
    return desc.value;
  });
  return record;
}

/**
 * Unpacks a layer tar on `parent` and publishes it; on failure nothing of it stays. `created` is
 * false when the store had that chain already (the tar was unpacked for nothing, and dropped).
 * Once `signal` is aborted (Ctrl-C), what was unpacked is removed after this process exits.
 */
export async function applyLayer(
  parts: StoreParts,
  tar: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  parent: LayerRecord | undefined,
  signal?: AbortSignal,
): Promise<Published> {
  const snap = await prepare(parts, parent);
  try {
    return await publish(parts, snap, (tarSplitPath) => apply(snap.mounts, tar, { tarSplitPath }));
  } catch (err) {
    await discard(parts, snap.key, { afterExit: signal?.aborted === true });
    throw err;
  }
}

/**
 * Deletes a snapshot. `afterExit`: the build was interrupted and should give the terminal back
 * now, so the snapshot's files go to a remover that outlives this process (runtime/reap.ts),
 * leased in its own name; if that cannot be started they are removed here as usual.
 */
export async function discard(parts: StoreParts, key: string, opts: { afterExit?: boolean } = {}): Promise<void> {
  if (!opts.afterExit) return parts.snapshotter.remove(key);
  const places = { into: parts.paths.tmp, leases: parts.paths.leases };
  await mkdir(places.into, { recursive: true, mode: 0o700 });
  await mkdir(places.leases, { recursive: true });
  await parts.snapshotter.remove(key, (dirs) => reapLater(dirs, places).catch(() => removeTreesNow(dirs)));
}

export interface Published {
  readonly record: LayerRecord;
  /** False when the chain was in the store already, and the snapshot was dropped for it. */
  readonly created: boolean;
}

async function publish(
  parts: StoreParts,
  snap: ActiveSnapshot,
  describe: (tarSplitPath: string) => Promise<LayerDescriptor>,
): Promise<Published> {
  const tmp = await parts.tempDir('publish');
  try {
    const tarSplitPath = join(tmp, 'tar-split.json.gz');
    const desc = await describe(tarSplitPath);
    // Publishing and leasing in one section: prune never sees the new layer unleased. Two
    // processes publishing the same chain queue here; the second finds the first's.
    const { record, created } = await parts.exclusive(async () => {
      if (snap.parent) await parts.mustStillHave(snap.parent.chainId);
      const made = await parts.layers.create({
        ...(snap.parent ? { parent: snap.parent.chainId } : {}),
        diffId: desc.diffId,
        size: desc.size,
        cacheId: snap.key,
        tarSplitFile: tarSplitPath,
      });
      await parts.lease.add({ chains: [made.record.chainId] });
      return made;
    });
    if (created) parts.published.add(snap.key);
    else await parts.snapshotter.remove(snap.key);
    return { record, created };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The layer `chainId` leased for this process (so prune leaves it until the process ends), or
 * undefined if the store does not have it (any more): for a cache hit, a miss.
 */
export async function useLayer(parts: StoreParts, chainId: Digest): Promise<LayerRecord | undefined> {
  return parts.exclusive(async () => {
    const rec = await parts.layers.get(chainId);
    if (rec) await parts.lease.add({ chains: [chainId] });
    return rec;
  });
}
