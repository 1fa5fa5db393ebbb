// Storing an image that arrives as config bytes plus layer tars (load, pull): each layer is
// unpacked on its parent unless the store already has that chain, and must hash to the diffID
// the config names; only then is the config stored and tagged. A failure leaves the layers
// stored so far (whole and valid, reusable) and no image.
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { parseConfig } from '../image/config.js';
import { chainIdOf, type LayerRecord } from './layerdb.js';
import type { Reference } from '../image/reference.js';
import type { Store } from './store.js';
import { explainNoSpace } from '../fs/nospace.js';
import { importLayer } from '../archive/rootfs.js';

export interface IncomingImage {
  readonly configBytes: Buffer;
  /** Opens layer `index` (bottom first) as a tar stream, compressed or not. Called only for layers the store lacks. */
  openLayer(index: number): Promise<NodeJS.ReadableStream>;
  readonly tags?: readonly Reference[];
}

export interface StoredImage {
  readonly id: Digest;
  /** Layers that were unpacked (the others were already in the store). */
  readonly added: number;
}

export async function storeImage(store: Store, image: IncomingImage, hooks: { layerDone?(index: number, existed: boolean): void } = {}): Promise<StoredImage> {
  const config = parseConfig(image.configBytes);
  let parent: LayerRecord | undefined;
  let added = 0;
  for (const [i, diffId] of config.rootfs.diff_ids.entries()) {
    const chainId = chainIdOf(parent?.chainId, diffId);
    const existing = await store.useLayer(chainId);
    if (existing) {
      parent = existing;
      hooks.layerDone?.(i, true);
      continue;
    }
    let layer: LayerRecord;
    try {
      layer = await importLayer(store, await image.openLayer(i), parent);
    } catch (err) {
      throw explainNoSpace(err, `unpacking layer ${i + 1} of ${config.rootfs.diff_ids.length} (${diffId})`, store.root);
    }
    if (layer.diffId !== diffId) {
      // The layer is whole and valid, just not the one the config names: drop it, unless an
      // image already stood on that very chain (then it was not ours to add).
      if (!(await store.layersInUse()).has(layer.chainId)) {
        await store.layers.remove(layer.chainId);
        await store.snapshotter.remove(layer.cacheId);
      }
      throw new InvalidInputError(`layer ${i + 1} does not match the image config: its diffID is ${layer.diffId}, the config says ${diffId}`);
    }
    parent = layer;
    added++;
    hooks.layerDone?.(i, false);
  }
  const id = await store.putImage(image.configBytes);
  for (const ref of image.tags ?? []) await store.tags.set(ref, id);
  return { id, added };
}
