// The store as a sink of images (load, pull, import all come through here): each layer is
// unpacked on its parent unless the store already has that chain, and must hash to the diffID
// the config names; only then is the config stored and tagged. All or nothing: a failure takes
// the layers this image added out again, and stores no image.
import { chainIdOf, type Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { explainNoSpace } from '../fs/nospace.js';
import type { Image } from '../image/image.js';
import type { Reference } from '../image/reference.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';
import { putImage } from './images.js';
import { rollBack } from './remove.js';
import { applyLayer, useLayer } from './snapshots.js';

export interface WriteImageOptions {
  /** Tags to set once the image is stored. */
  readonly tags?: readonly Reference[];
  /** Layer `index` (bottom first) is in the store now; `existed` when it was there before. */
  layerDone?(index: number, existed: boolean): void;
  /** Checked before each layer and before the image is stored: once aborted, what was added is rolled back. */
  readonly signal?: AbortSignal;
}

export interface WrittenImage {
  readonly id: Digest;
  /** Whether the store lacked the image (its config) before. */
  readonly created: boolean;
  /** The chains this image added, bottom first (the others were in the store already). */
  readonly addedChains: readonly Digest[];
}

export async function writeImage(parts: StoreParts, image: Image, opts: WriteImageOptions = {}): Promise<WrittenImage> {
  const diffIds = image.config.rootfs.diff_ids;
  if (image.layers.length !== diffIds.length) {
    throw new InvalidInputError(`image ${image.id}: ${image.layers.length} layers for the ${diffIds.length} its config names`);
  }
  const created = !(await parts.images.has(image.id));
  const added: Digest[] = [];
  try {
    let parent: LayerRecord | undefined;
    for (const [i, diffId] of diffIds.entries()) {
      opts.signal?.throwIfAborted();
      const existing = await useLayer(parts, chainIdOf(parent?.chainId, diffId));
      if (existing) {
        parent = existing;
        opts.layerDone?.(i, true);
        continue;
      }
      let layer: LayerRecord;
      try {
        const published = await applyLayer(parts, await image.layers[i]!.compressed(), parent, opts.signal);
        layer = published.record;
        if (published.created) added.push(layer.chainId);
      } catch (err) {
        throw explainNoSpace(err, `unpacking layer ${i + 1} of ${diffIds.length} (${diffId})`, parts.root);
      }
      if (layer.diffId !== diffId) {
        throw new InvalidInputError(
          `layer ${i + 1} does not match the image config: its diffID is ${layer.diffId}, the config says ${diffId}`,
        );
      }
      parent = layer;
      opts.layerDone?.(i, false);
    }
    opts.signal?.throwIfAborted();
    const id = await putImage(parts, image.configBytes);
    if (id !== image.id) throw new InvalidInputError(`image ${image.id}: its config hashes to ${id}`);
  } catch (err) {
    await rollBack(parts, { chains: added });
    throw err;
  }
  for (const ref of opts.tags ?? []) await parts.tags.set(ref, image.id);
  return { id: image.id, created, addedChains: added };
}
