// `--cache-from IMAGE`: layers of stored images reused for RUN and WORKDIR steps, found by what
// made them. Like Docker's classic builder, this trusts the command text: a step on the same
// layer with the same created_by is taken to make the same layer. COPY and ADD need the content
// checksum, which only the local build cache has.
import type { HistoryEntry } from '../image/config.js';
import type { LayerRecord, Store } from '../store/store.js';
import { cacheFromKey, type CacheFromIndex } from './session.js';

/**
 * Indexes the layers of each image named. A name the store lacks is skipped here: the caches
 * (src/cache/sources.ts) look for it in its registry, and say so if it is not there either.
 */
export async function indexCacheFrom(store: Store, refs: readonly string[]): Promise<CacheFromIndex> {
  const index = new Map<string, { layer: LayerRecord; history: HistoryEntry }>();
  for (const ref of refs) {
    let image;
    try {
      image = await store.image(await store.resolveImage(ref));
    } catch {
      continue;
    }
    let i = 0;
    for (const h of image.config.history) {
      if (h.empty_layer) continue;
      const layer = image.layers[i++]?.record;
      if (!layer) break;
      if (h.created_by) index.set(cacheFromKey(layer.parent, h.created_by), { layer, history: h });
    }
  }
  return index;
}
