// Steps that make no layer (ENV, LABEL, CMD, EXPOSE, USER, ...) take part in the build cache
// too. Their history entries are all they add to the image, and each entry's `created` is the one
// part that would differ on every rebuild: without a record, a fully cached build would get a new
// image ID each time, and an untagged copy of the old one would be left behind. Docker's classic
// builder caches every instruction as an image and BuildKit caches the whole build, so both give
// the same ID again; CI relies on it (an unchanged image ID means nothing to push).
//
// One record serves a whole run of such steps (everything between two layer steps, or up to the
// stage's end): the entries are added as the steps come, and `settleMetadata` then looks the run
// up once and puts back the created times of the build that first made it. Per step, a record
// would cost a file write and a key over the whole history and config each time: a Dockerfile of
// 10,000 LABELs would take minutes. The key holds the history before the run (created times
// included), the run's instructions and the config the run leaves, so a run hits only after the
// very entries its record was made after, and only when it leaves the same config.
import type { HistoryEntry } from '../image/config.js';
import { metadataRunKey } from './cachekeys.js';
import { addHistory, type BuildSession, type StageState } from './session.js';

/** Adds the history entry of a step that made no layer; its created time is settled with its run. */
export function metadataStep(state: StageState, history: HistoryEntry): void {
  state.pendingMetadata ??= state.history.length;
  addHistory(state, history);
}

/**
 * Settles the created times of the run of metadata steps since the last layer step: those of
 * the cached run when there is one, else the run is recorded as it is. Called before each layer
 * step and at the stage's end.
 */
export async function settleMetadata(session: BuildSession, state: StageState): Promise<void> {
  const start = state.pendingMetadata;
  if (start === undefined) return;
  state.pendingMetadata = undefined;
  const { req } = session;
  // SOURCE_DATE_EPOCH gives every entry the same time on every build already.
  if (req.sourceDateEpoch !== undefined) return;
  const parent = state.layers.at(-1)?.chainId;
  const { history: _h, rootfs: _r, ...config } = state.draft.vars().config;
  const run = state.history.slice(start);
  const key = metadataRunKey({
    parent: parent ?? '',
    before: state.history.slice(0, start),
    createdBy: run.map((h) => h.created_by ?? ''),
    config,
  });
  const history = { empty_layer: true };
  const hit = await session.usableRecord(key);
  const times = hit?.createdTimes;
  if (hit && hit.top?.chainId === parent && times !== undefined && times.length === run.length) {
    run.forEach((h, i) => (state.history[start + i] = { ...h, created: times[i]! }));
    session.logRecord(state, key, { history, createdTimes: times }, state.layers);
    return;
  }
  const created = run.map((h) => h.created ?? '');
  await session.putRecord(key, { ...(parent ? { chainId: parent } : {}), history, createdTimes: created });
  session.logRecord(state, key, { history, createdTimes: created }, state.layers);
}
