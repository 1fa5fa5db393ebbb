// The shape every layer-making step shares (RUN, COPY, ADD, WORKDIR): reuse the cached layer for
// the step's key if there is one; else work in a writable rootfs on the current top layer
// (src/container/runner.ts) and commit what changed as the step's layer, recording it in the
// build cache. COPY/ADD --link makes its layer apart from the stage's and then stacks it
// (linkedLayerStep).
import { DockerfileError } from '../errors.js';
import { chainIdOf, sha256, type Digest } from '../digest.js';
import { explainNoSpace } from '../fs/nospace.js';
import type { HistoryEntry } from '../image/config.js';
import { inNewLayer, type MountedRootfs } from '../container/runner.js';
import type { InitLayer } from '../snapshot/snapshotter.js';
import type { LayerRecord } from '../store/store.js';
import { BY_CONTENT } from '../cache/format.js';
import { isPending } from '../cache/pending.js';
import { addHistory, cacheFromKey, type BuildSession, type StageLayer, type StageState, type StepCacheInfo } from './session.js';

export interface LayerStepOptions extends StepCacheInfo {
  /** Docker's init layer, for a step that runs a process. */
  readonly init?: InitLayer;
  /** --cache-from images may supply the layer, matched by created_by (RUN, WORKDIR). */
  readonly cacheFromByCommand?: boolean;
  /**
   * A second key, tried when the first misses, and recorded with it: COPY --from by content
   * (cachekeys.ts copyFromContentKey). Undefined when not worth its cost.
   */
  readonly contentKey?: () => Promise<Digest>;
}

/**
 * `work` changes the mounted rootfs and returns false when it changed nothing and no layer
 * should be recorded (the history entry is then an empty layer's).
 */
export async function layerStep(
  session: BuildSession,
  state: StageState,
  stepKey: Digest,
  history: HistoryEntry,
  opts: LayerStepOptions,
  work: (rootfs: MountedRootfs) => Promise<boolean>,
): Promise<void> {
  const key = withEpoch(stepKey, session.req.sourceDateEpoch);
  const contentKey = async (): Promise<Digest | undefined> =>
    opts.contentKey ? withEpoch(await opts.contentKey(), session.req.sourceDateEpoch) : undefined;
  if (await reuseCached(session, state, key, info(opts), opts.cacheFromByCommand ? history.created_by : undefined)) {
    // An inline cache names this step by content, whichever key found it (see LoggedRecord.twin).
    const second = session.inlineExport ? await contentKey() : undefined;
    if (second) await recordBoth(session, state, key, second, opts);
    return;
  }
  const second = session.req.noCache ? undefined : await contentKey();
  if (second && (await reuseCached(session, state, second, info(opts)))) {
    // Found by content: the first key now names the same layer, for the next build.
    await recordBoth(session, state, key, second, opts);
    return;
  }
  await session.explainMiss(state, opts);
  // The step works on the stage's files: layers known from a cache are unpacked now.
  const parent = (await session.storedStack(state)).at(-1);
  const layer = await newLayer(session, parent, opts.init, work);
  // Stamped when the layer is made, as Docker stamps a committed step.
  const { empty_layer: _, ...entry } = { ...history, created: session.now() };
  if (!layer) {
    // Recorded too, naming the layer it stood on: a cached rebuild then reuses the entry (its
    // created time) rather than running the step again.
    const empty = { ...entry, empty_layer: true };
    addHistory(state, empty);
    for (const k of second ? [key, second] : [key]) {
      await session.putRecord(k, { ...(parent ? { chainId: parent.chainId } : {}), history: empty });
      session.logRecord(
        state,
        k,
        { history: empty, ...(k === second ? contentInfo(opts) : info(opts)), ...(k === key && second ? { twin: true } : {}) },
        state.layers,
      );
    }
    return;
  }
  pushLayer(state, layer, entry);
  for (const k of second ? [key, second] : [key]) {
    await session.putRecord(k, { chainId: layer.chainId, history: entry });
    session.logRecord(
      state,
      k,
      { history: entry, ...(k === second ? contentInfo(opts) : info(opts)), ...(k === key && second ? { twin: true } : {}) },
      state.layers,
    );
  }
  session.events.layer?.({ diffId: layer.diffId, size: layer.size });
}

/**
 * COPY/ADD --link, as BuildKit's MergeOp makes it: `work` runs in an empty rootfs (nothing of
 * the stage is read: no symlink of the base is followed, no directory of it merged into), what
 * it wrote is committed as a layer of its own, and that layer's tar is stacked on the stage's
 * top layer. Its diffID is therefore the same whatever the base, and so is its cache key
 * (`key` must not name the parent): a step whose base changed finds the standalone layer in the
 * cache and only stacks it again, which is what --link is for. Destination parents are
 * directories of the layer itself (0755, or --chown's owner), and replace whatever the base
 * had at those paths when the image is unpacked, as in BuildKit.
 */
export async function linkedLayerStep(
  session: BuildSession,
  state: StageState,
  stepKey: Digest,
  history: HistoryEntry,
  cacheInfo: StepCacheInfo,
  work: (rootfs: MountedRootfs) => Promise<boolean>,
): Promise<void> {
  const { store, req } = session;
  const key = withEpoch(stepKey, req.sourceDateEpoch);
  let alone: StageLayer | undefined;
  let entry: HistoryEntry | undefined;
  const hit = await session.usableRecord(key);
  // A record without a layer is a step that changed nothing (layerStep's): not a --link layer.
  if (hit?.top && !hit.history.empty_layer) {
    alone = hit.top;
    entry = hit.history;
  }
  const cached = alone !== undefined && alone.parent === undefined && entry !== undefined;
  if (!cached) {
    await session.explainMiss(state, cacheInfo);
    alone = await newLayer(session, undefined, undefined, work);
    const { empty_layer: _, ...stamped } = { ...history, created: session.now() };
    if (!alone) {
      addHistory(state, { ...stamped, empty_layer: true });
      return;
    }
    entry = stamped;
    await session.putRecord(key, { chainId: alone.chainId, history: entry });
  }
  session.logRecord(state, key, { history: entry!, ...info(cacheInfo) }, [alone!]);
  const parent = state.layers.at(-1);
  let layer: StageLayer = alone!;
  if (parent) {
    // The stacked chain may be stored already (the same base and files as a build before).
    const chainId = chainIdOf(parent.chainId, layer.diffId);
    const stacked = await store.useLayer(chainId);
    if (stacked) layer = stacked;
    else if (isPending(parent) || isPending(layer)) {
      // Stacked when the files are needed, like the layers it stands on.
      const own = layer;
      const source = isPending(own) ? own.layer : store.layer(own);
      const known = isPending(own) && own.known ? { known: own.known } : {};
      const prefetch = (): void => (isPending(own) ? own.prefetch() : undefined);
      layer = { pending: true, chainId, diffId: own.diffId, parent: parent.chainId, layer: source, ...known, prefetch };
    } else layer = await store.applyLayer(await store.layer(layer).uncompressed(), parent);
  }
  pushLayer(state, layer, entry!);
  if (cached) session.events.cached?.();
  // Not cached: the standalone layer was just made here, and is the stacked one's content.
  else if (!isPending(alone!)) session.events.layer?.({ diffId: layer.diffId, size: alone!.size });
}

/** Runs `work` in a new snapshot on `parent` and commits it (runner.ts); errors said at the step's line. */
async function newLayer(
  session: BuildSession,
  parent: LayerRecord | undefined,
  init: InitLayer | undefined,
  work: (rootfs: MountedRootfs) => Promise<boolean>,
): Promise<LayerRecord | undefined> {
  const { req } = session;
  try {
    return await inNewLayer(
      session.store,
      parent,
      {
        ...(init ? { init } : {}),
        ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      },
      work,
    );
  } catch (err) {
    throw explained(session, err);
  }
}

/** A failed step's error: the build's cancellation, or a full disk said in words, at the step's line. */
function explained(session: BuildSession, err: unknown): unknown {
  if (session.req.signal?.aborted) session.checkAborted();
  const said = explainNoSpace(err, "writing this step's files into its layer", session.store.root);
  if (said !== err && err instanceof DockerfileError) return new DockerfileError(err.location, (said as Error).message, { cause: err });
  return said;
}

/**
 * SOURCE_DATE_EPOCH is part of what a layer holds (its mtimes are clamped when it is written, and
 * its entry's created is the epoch): a layer made without it, or with another, is not reused.
 * Without it the key is the step's own, so the records of ordinary builds keep hitting.
 */
function withEpoch(key: Digest, epoch: number | undefined): Digest {
  return epoch === undefined ? key : sha256(`${key} SOURCE_DATE_EPOCH=${epoch}`);
}

/**
 * After a hit on one of a step's two keys (its own, and layerStep's content key), both name the
 * step's result: in the store's cache for the next build, and in the log for --cache-to.
 */
async function recordBoth(
  session: BuildSession,
  state: StageState,
  primary: Digest,
  byContent: Digest,
  opts: StepCacheInfo,
): Promise<void> {
  const top = state.layers.at(-1);
  const history = state.history.at(-1)!;
  // A record names a stored layer; a pending one is recorded by the cache it came from.
  if (!top || !isPending(top)) {
    const rec = { ...(top ? { chainId: top.chainId } : {}), history };
    for (const k of [primary, byContent]) await session.putRecord(k, rec);
  }
  session.logRecord(state, byContent, { history, ...contentInfo(opts) }, state.layers);
  session.logRecord(state, primary, { history, ...info(opts), twin: true }, state.layers);
}

/** The inputs of a record by content: the same whatever stage chain made the files (format.ts BY_CONTENT). */
function contentInfo(i: StepCacheInfo): StepCacheInfo {
  return i.inputs ? { inputs: { ...i.inputs, source: BY_CONTENT } } : {};
}

/** What the cache log keeps of a step's inputs. */
function info(i: StepCacheInfo): StepCacheInfo {
  return { ...(i.inputs ? { inputs: i.inputs } : {}), ...(i.listing !== undefined ? { listing: i.listing } : {}) };
}

function pushLayer(state: StageState, layer: StageLayer, h: HistoryEntry): void {
  state.layers.push(layer);
  addHistory(state, h);
}

/** Reuses a cached layer for this step if there is one on the same parent. */
async function reuseCached(
  session: BuildSession,
  state: StageState,
  key: Digest,
  cacheInfo: StepCacheInfo,
  createdBy?: string,
): Promise<boolean> {
  const parent = state.layers.at(-1);
  const hit = await session.usableRecord(key);
  if (hit?.history.empty_layer) {
    // The step ran before on this parent and changed nothing.
    if (hit.top?.chainId !== parent?.chainId) return false;
    addHistory(state, hit.history);
    session.logRecord(state, key, { history: hit.history, ...cacheInfo }, state.layers);
    session.events.cached?.();
    return true;
  }
  let layer: StageLayer | undefined = hit?.top;
  let history: HistoryEntry | undefined = hit?.history;
  if (!layer && createdBy !== undefined) {
    const from = session.cacheFrom.get(cacheFromKey(parent?.chainId, createdBy));
    if (from) ({ layer, history } = from);
  }
  if (!layer || !history || layer.parent !== parent?.chainId) return false;
  pushLayer(state, layer, history);
  session.logRecord(state, key, { history, ...cacheInfo }, state.layers);
  session.events.cached?.();
  return true;
}
