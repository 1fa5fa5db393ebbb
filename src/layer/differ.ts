// The differ: layer tars to and from snapshots, given as Mount lists (containerd's diff.Comparer
// and diff.Applier). The snapshotters speak only in directories and mounts; this is the one place
// that knows how a snapshot's directories turn into a layer tar and back:
//  - an overlay's upper dir is its layer, in overlay's whiteout conventions (whiteout.ts), which
//    is also where an applied layer goes, so nothing is ever mounted to diff or to apply;
//  - a plain directory (vfs, or a bottom layer) is compared with its parent's directory, and a
//    layer applied to it deletes what the layer's whiteouts name.
// Neither function mounts anything: a mount would only cost helper calls to reach the same
// directories.
import { resolve } from 'node:path';
import { checkpoint } from '../abort.js';
import { TsbuildError } from '../errors.js';
import type { Mount } from '../runtime/types.js';
import { overlayChanges, treeChanges } from './changes.js';
import type { Change, LayerDescriptor } from './types.js';
import { overlayXattrPrefix } from './whiteout.js';
import { writeLayer } from './write.js';

export interface DiffOptions {
  /** Where the new layer's tar-split goes (written atomically; its directory must exist). */
  readonly tarSplitPath: string;
  /** Compare only: clamp every mtime to this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  readonly sourceDateEpoch?: number;
  /** Compare only: once aborted, no further change is written (a tree of 200,000 files takes a while). */
  readonly signal?: AbortSignal;
}

/** Snapshots the differ cannot read as a change set: a bug in a caller, not a user error. */
export class DifferError extends TsbuildError {}

/**
 * The layer that turns `lower` (a read-only view) into `upper` (the mounts of a snapshot prepared
 * on it): its tar streamed through sha256 for the diffID, its tar-split recorded. An overlay's
 * upper dir is read as it is; a plain directory is walked beside `lower`'s. An empty list is an
 * empty filesystem.
 */
export async function compare(lower: readonly Mount[], upper: readonly Mount[], opts: DiffOptions): Promise<LayerDescriptor> {
  const all = changesBetween(rootOf(lower), rootOf(upper));
  const changes = opts.signal ? untilAborted(all, opts.signal) : all;
  return writeLayer(
    changes,
    { tarSplitPath: opts.tarSplitPath },
    opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {},
  );
}

/**
 * Unpacks a layer tar (compressed or not) into the active snapshot whose mounts are given, on
 * top of its parent, and returns the layer's diffID and sizes. The tar is untrusted (apply.ts).
 */
export async function apply(
  mounts: readonly Mount[],
  tar: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  opts: DiffOptions,
): Promise<LayerDescriptor> {
  // Loaded here: only pull, load and import unpack layers; a build never does.
  const { applyLayer } = await import('./apply.js');
  const root = rootOf(mounts);
  if (root?.type === 'overlay' && root.upper !== undefined) {
    return applyLayer(tar, resolve(root.cwd, root.upper.dir), {
      whiteouts: 'overlay',
      // fuse-overlayfs reads user.overlay.opaque as root and rootless alike (whiteout.ts).
      overlayXattrPrefix: root.program === 'fuse-overlayfs' ? 'user.overlay.' : overlayXattrPrefix(root.options),
      tarSplitPath: opts.tarSplitPath,
    });
  }
  if (root?.type === 'bind' && !root.readonly) {
    return applyLayer(tar, root.source, { whiteouts: 'delete', tarSplitPath: opts.tarSplitPath });
  }
  throw new DifferError('apply: a layer can only be applied to a writable snapshot');
}

function rootOf(mounts: readonly Mount[]): Mount | undefined {
  return mounts.find((m) => m.target === undefined);
}

/** The directories of a read-only view, top first. */
function lowerDirs(view: Mount | undefined): string[] {
  if (view === undefined) return [];
  if (view.type === 'bind') return [view.source];
  return view.lowerdirs.map((d) => resolve(view.cwd, d));
}

function changesBetween(lower: Mount | undefined, upper: Mount | undefined): AsyncIterable<Change> {
  if (upper === undefined) {
    if (lower === undefined) return (async function* () {})();
    throw new DifferError('compare: an empty filesystem on top of layers');
  }
  if (upper.type === 'overlay') {
    if (upper.upper !== undefined) {
      return overlayChanges(resolve(upper.cwd, upper.upper.dir), lowerDirs(lower), overlayXattrPrefix(upper.options), upper.program);
    }
    throw new DifferError('compare: an overlay without its upper dir is not a layer on top of another');
  }
  if (lower === undefined) return treeChanges(undefined, upper.source);
  if (lower.type === 'bind') return treeChanges(lower.source, upper.source);
  throw new DifferError('compare: a directory cannot be compared with an overlay stack');
}

/** The changes, each after a cancellation point (src/abort.ts). */
async function* untilAborted(changes: AsyncIterable<Change>, signal: AbortSignal): AsyncIterable<Change> {
  for await (const change of changes) {
    const turn = checkpoint(signal);
    if (turn) await turn;
    yield change;
  }
}
