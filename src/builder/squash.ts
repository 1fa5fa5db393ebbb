// `build --squash`: the layers the Dockerfile made, merged into one on top of the base image's,
// as Docker's classic builder squashes (moby's daemon/images/image_squash.go): the new layer is
// the difference between the base's filesystem and the final one, so files a later step deleted
// or replaced are simply not in it, and the squashed image wastes nothing of its own. Each
// history entry of the Dockerfile's steps stays, marked empty_layer, and one entry is added for
// the merged layer ("merge <unsquashed image ID> to <base>", Docker's comment).
//
// The base is what the build did not make: the layers below the first history entry a step of
// this build wrote (so a final stage FROM an earlier stage merges that stage's layers too, as
// analyze counts them as the Dockerfile's; docs/differences.md).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { sha256 } from '../digest.js';
import { serializeConfig, type HistoryEntry } from '../image/config.js';
import type { StepOrigin } from '../image/provenance.js';
import { inView } from '../container/runner.js';
import { treeChanges } from '../layer/changes.js';
import { writeLayer } from '../layer/write.js';
import type { LayerRecord } from '../store/store.js';
import type { BuildSession, StageResult } from './session.js';

/**
 * `final`, whose layers are stored as `layers`, with the layers its steps made merged into one.
 * Unchanged if they made none.
 */
export async function squashStage(session: BuildSession, final: StageResult, layers: readonly LayerRecord[]): Promise<StageResult> {
  const { config } = final;
  // A loop, not Math.min(...): a Dockerfile of 200,000 steps has as many origins.
  let firstOwn = Infinity;
  for (const o of final.origins) firstOwn = Math.min(firstOwn, o.history);
  if (!Number.isFinite(firstOwn)) return final;
  const baseLayers = config.history.slice(0, firstOwn).filter((h) => !h.empty_layer).length;
  if (layers.length <= baseLayers) return final; // the steps made no layer: nothing to merge
  const base = layers[baseLayers - 1];
  const merged = await mergedLayer(session, base, layers.at(-1)!);

  const unsquashedId = sha256(serializeConfig(config));
  const history: HistoryEntry[] = config.history.map((h, i) => (i >= firstOwn ? { ...h, empty_layer: true } : h));
  history.push({
    created: session.now(),
    comment: base ? `merge ${unsquashedId} to ${final.imageId ?? base.chainId}` : `create new from ${unsquashedId}`,
  });
  // The lines whose steps made the layers merged (a metadata step after the last made none).
  const own = final.origins.filter((o) => o.history >= firstOwn && !config.history[o.history]?.empty_layer);
  const first = own.reduce((a, b) => (b.line < a.line ? b : a));
  const last = own.reduce((a, b) => (b.line > a.line ? b : a));
  // The merged layer is the Dockerfile's: its history entry names the lines it merges.
  const origin: StepOrigin = {
    history: history.length - 1,
    file: first.file,
    line: first.line,
    text: `(--squash) the layers of lines ${first.line}-${last.line}, merged`,
  };
  return {
    ...final,
    config: {
      ...config,
      created: history.at(-1)!.created!,
      rootfs: { type: 'layers', diff_ids: [...layers.slice(0, baseLayers).map((l) => l.diffId), merged.diffId] },
      history,
    },
    layers: [...layers.slice(0, baseLayers), merged],
    origins: [...final.origins, origin],
  };
}

/**
 * The layer that turns `base`'s filesystem (none: empty) into `top`'s: both mounted read-only,
 * compared as trees, the tar streamed into a new layer on `base`.
 */
async function mergedLayer(session: BuildSession, base: LayerRecord | undefined, top: LayerRecord): Promise<LayerRecord> {
  const { store, req } = session;
  // writeLayer records a tar-split; the store's own unpacking records the one it keeps.
  const unused = join(await session.scratch(), 'squash.tar-split.json.gz');
  try {
    return await inView(store, base, (lower) =>
      inView(store, top, async (upper) => {
        const tar = new PassThrough();
        const stored = store.applyLayer(tar, base);
        try {
          await writeLayer(
            treeChanges(base ? lower : undefined, upper),
            { tarSplitPath: unused, tarSink: tar },
            // Whiteouts as Docker's squash writes them (its naive differ: mode 0).
            { whiteoutMode: 0, ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}) },
          );
          tar.end();
        } catch (err) {
          tar.destroy(err as Error);
          await stored.catch(() => undefined);
          throw err;
        }
        return stored;
      }),
    );
  } finally {
    await rm(unused, { force: true });
  }
}
