// `tsbuild import`: a root filesystem tarball becomes a one-layer image, as `docker import`
// makes it. The tar's exact bytes define the layer (its tar-split is kept), so the diffID is the
// sha256 of what the user gave us, decompressed.
import type { Digest } from '../digest.js';
import { hostArchitecture, rfc3339, serializeConfig, type ImageConfig, type RuntimeConfig } from '../image/config.js';
import { newSnapshotId } from '../snapshot/snapshotter.js';
import { parseReference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import type { LayerRecord } from '../store/layerdb.js';

export interface ImportOptions {
  /** Tag for the new image. */
  readonly ref?: string;
  /** What the history comment names as the source (`-` for stdin, or the file name). */
  readonly source: string;
  /** Runtime config to start from (e.g. Cmd for a base image). */
  readonly config?: RuntimeConfig;
  readonly created?: Date;
}

/** Unpacks a layer tar into a new snapshot and publishes it on top of `parent`. */
export async function importLayer(store: Store, tar: NodeJS.ReadableStream, parent?: LayerRecord): Promise<LayerRecord> {
  const snap = newSnapshotId();
  await store.prepareSnapshot(snap, parent);
  try {
    return await store.publishSnapshot(snap, parent, (tarSplitPath) => store.snapshotter.apply(snap, tar, tarSplitPath));
  } catch (err) {
    await store.snapshotter.remove(snap);
    throw err;
  }
}

export async function importRootfs(store: Store, tar: NodeJS.ReadableStream, opts: ImportOptions): Promise<Digest> {
  const ref = opts.ref !== undefined ? parseReference(opts.ref) : undefined; // validate before work
  const layer = await importLayer(store, tar);
  const created = rfc3339(opts.created ?? new Date());
  const config: ImageConfig = {
    architecture: hostArchitecture(),
    os: 'linux',
    created,
    config: opts.config ?? {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, comment: `Imported from ${opts.source}` }],
  };
  const id = await store.putImage(serializeConfig(config));
  if (ref) await store.tags.set(ref, id);
  return id;
}
