// The differ: layer tars to and from snapshots, given as Mount lists (containerd's diff.Comparer
// and diff.Applier). The snapshotters speak only in directories and mounts; this is the one place
// that knows how a snapshot's directories turn into a layer tar and back:
//  - an overlay's upper dir is its layer, in overlay's whiteout conventions (whiteout.ts), which
//    is also where an applied layer goes, so nothing is ever mounted to diff or to apply;
//  - a plain directory (vfs, or a bottom layer) is compared with its parent's directory, and a
//    layer applied to it deletes what the layer's whiteouts name.
// Neither function mounts anything: a mount would only cost helper calls to reach the same
// directories.
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TsbuildError } from '../errors.js';
import type { Mount } from '../runtime/types.js';
import { overlayChanges, treeChanges } from './changes.js';
import type { Change, LayerDescriptor } from './types.js';
import { writeLayer } from './write.js';

export interface DiffOptions {
  /** Where the new layer's tar-split goes (written atomically; its directory must exist). */
  readonly tarSplitPath: string;
  /** Compare only: clamp every mtime to this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  readonly sourceDateEpoch?: number;
}

/** Snapshots the differ cannot read as a change set: a bug in a caller, not a user error. */
export class DifferError extends TsbuildError {}

/**
 * The layer that turns `lower` into `upper` (both read-only views, or `upper` the mounts of an
 * active snapshot on `lower`): its tar streamed through sha256 for the diffID, its tar-split
 * recorded. An empty list is an empty filesystem.
 */
export async function compare(lower: readonly Mount[], upper: readonly Mount[], opts: DiffOptions): Promise<LayerDescriptor> {
  const changes = await changesBetween(rootOf(lower), rootOf(upper));
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
    return applyLayer(tar, resolve(root.cwd, root.upper.dir), { whiteouts: 'overlay', tarSplitPath: opts.tarSplitPath });
  }
  if (root?.type === 'bind' && !root.readonly) {
    return applyLayer(tar, root.source, { whiteouts: 'delete', tarSplitPath: opts.tarSplitPath });
  }
  throw new DifferError('apply: a layer can only be applied to a writable snapshot');
}

function rootOf(mounts: readonly Mount[]): Mount | undefined {
  return mounts.find((m) => m.target === undefined);
}

async function changesBetween(lower: Mount | undefined, upper: Mount | undefined): Promise<AsyncIterable<Change>> {
  if (upper === undefined) {
    if (lower === undefined) return (async function* () {})();
    throw new DifferError('compare: an empty filesystem on top of layers');
  }
  if (upper.type === 'overlay') {
    if (upper.upper !== undefined) return overlayChanges(resolve(upper.cwd, upper.upper.dir));
    // A read-only view: its top lowerdir is its own layer when the rest is exactly `lower`.
    const [top, ...rest] = upper.lowerdirs.map((d) => resolve(upper.cwd, d));
    if (top !== undefined && (await sameLayers(rest, lower))) return overlayChanges(top);
    throw new DifferError('compare: the upper view is not one layer on top of the lower one');
  }
  if (lower === undefined) return treeChanges(undefined, upper.source);
  if (lower.type === 'bind') return treeChanges(lower.source, upper.source);
  throw new DifferError('compare: a directory cannot be compared with an overlay stack');
}

/** Whether `dirs` (resolved lowerdirs, top first) are the layers `lower` presents. */
async function sameLayers(dirs: readonly string[], lower: Mount | undefined): Promise<boolean> {
  if (lower === undefined) return dirs.length === 0;
  if (lower.type === 'overlay') {
    const theirs = lower.lowerdirs.map((d) => resolve(lower.cwd, d));
    return lower.upper === undefined && theirs.length === dirs.length && theirs.every((d, i) => d === dirs[i]);
  }
  // A view of one layer is a bind of its directory; a lowerdir may name it through a short link.
  return dirs.length === 1 && (await realpath(dirs[0]!)) === (await realpath(lower.source));
}
