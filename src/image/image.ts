// An immutable view of a stored image: its ID, config, tags and layers, read once. Commands that
// show images (images, history, inspect) speak this, not the store's files.
import { chainIds, type Digest } from '../digest.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { TaggedRef } from '../store/repositories.js';
import type { Store } from '../store/store.js';
import type { ImageConfig } from './config.js';

export interface ImageView {
  readonly id: Digest;
  readonly config: ImageConfig;
  readonly tags: readonly TaggedRef[];
  /** Bottom first. */
  readonly layers: readonly LayerRecord[];
  /** Sum of the layers' sizes: what `docker images` shows. */
  readonly size: number;
}

export async function loadImage(store: Store, id: Digest, allTags?: readonly TaggedRef[]): Promise<ImageView> {
  const config = await store.images.get(id);
  const layers = await Promise.all(chainIds(config.rootfs.diff_ids).map((c) => store.layers.mustGet(c)));
  const tags = (allTags ?? (await store.tags.all())).filter((t) => t.imageId === id);
  return { id, config, tags, layers, size: layers.reduce((n, l) => n + l.size, 0) };
}

export async function listImages(store: Store): Promise<ImageView[]> {
  const tags = await store.tags.all();
  const ids = await store.images.list();
  const views = await Promise.all(ids.map((id) => loadImage(store, id, tags)));
  return views.sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''));
}
