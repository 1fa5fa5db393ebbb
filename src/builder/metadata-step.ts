// A step that makes no layer (ENV, LABEL, CMD, EXPOSE, USER, ...) takes part in the build cache
// too. Its history entry is all it adds to the image, and that entry's `created` is the one part
// that would differ on every rebuild: without a record, a fully cached build would get a new
// image ID each time, and an untagged copy of the old one would be left behind. Docker's classic
// builder caches every instruction as an image and BuildKit caches the whole build, so both give
// the same ID again; CI relies on it (an unchanged image ID means nothing to push).
//
// The key chains: it holds the stage's history so far, created times included, so a step hits
// only after the very entries its record was made after.
import type { HistoryEntry } from '../image/config.js';
import { metadataKey } from './cachekeys.js';
import { addHistory, type BuildSession, type StageState } from './session.js';

/** Adds the history entry of a step that made no layer, with the created time of a cached one. */
export async function metadataStep(session: BuildSession, state: StageState, history: HistoryEntry): Promise<void> {
  const { req, store } = session;
  // SOURCE_DATE_EPOCH gives every entry the same time on every build already.
  if (req.sourceDateEpoch !== undefined) return addHistory(state, history);
  const parent = state.layers.at(-1)?.chainId;
  const { history: _h, rootfs: _r, ...config } = state.vars.config;
  const key = metadataKey({ parent: parent ?? '', history: state.history, config, createdBy: history.created_by ?? '' });
  if (!req.noCache) {
    const hit = await store.cacheRecord(key);
    if (hit && hit.chainId === parent && hit.history.empty_layer && hit.history.created_by === history.created_by) {
      return addHistory(state, { ...history, ...(hit.history.created !== undefined ? { created: hit.history.created } : {}) });
    }
  }
  await store.putCacheRecord(key, { ...(parent ? { chainId: parent } : {}), history });
  addHistory(state, history);
}
