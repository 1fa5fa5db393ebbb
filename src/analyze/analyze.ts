// analyzeImage: a stored image's layers, read from their tar-splits only, replayed bottom up;
// sizes per layer, wasted bytes and efficiency, inefficient paths, and hints naming the
// Dockerfile lines. The result is plain data (./types.ts); the CLI renders it. analyzeSource
// does the same for an image from any source (source.ts): archives and registries give their
// layers' entries from the tar streams, and have no build record.
import type { Digest } from '../digest.js';
import type { Store } from '../store/store.js';
import { cacheOf } from './caches.js';
import { unusedContextFiles } from './context.js';
import type { LayerEntry } from './entries.js';
import { layerHints } from './hints.js';
import { layerOrigins } from './origin.js';
import { Replay, type Copy } from './replay.js';
import { storeSource, type SourceImage } from './source.js';
import { fileTree, type TreeDir, type TreeOptions } from './tree.js';
import type { ImageAnalysis, InefficientPath, LayerAnalysis } from './types.js';

export interface AnalyzeOptions {
  /** Hints that would save fewer bytes are left out. */
  readonly minHintBytes?: number;
  /** Context files smaller than this are not reported as unused. */
  readonly minContextFileBytes?: number;
  /** Look in the build context for large files no COPY reads (needs the context on this host). */
  readonly checkContext?: boolean;
  /** How many of each layer's largest files to list. */
  readonly largestPerLayer?: number;
}

export const ANALYZE_DEFAULTS: Required<AnalyzeOptions> = {
  minHintBytes: 1_000_000,
  minContextFileBytes: 10_000_000,
  checkContext: true,
  largestPerLayer: 5,
};

export async function analyzeImage(store: Store, id: Digest, options: AnalyzeOptions = {}): Promise<ImageAnalysis> {
  return analyzeSource(await storeSource(store, id), options);
}

/** An image from any source (the caller closes it). */
export async function analyzeSource(img: SourceImage, options: AnalyzeOptions = {}): Promise<ImageAnalysis> {
  return (await replayAndAnalyze(img, options)).analysis;
}

/**
 * The analysis and the tree of every copy the layers store, by directory and capped to
 * `tree.maxNodes` (./tree.ts): what the HTML report draws as its treemap.
 */
export async function analyzeImageWithTree(
  store: Store,
  id: Digest,
  options: AnalyzeOptions & { readonly tree?: TreeOptions } = {},
): Promise<{ analysis: ImageAnalysis; tree: TreeDir }> {
  return analyzeSourceWithTree(await storeSource(store, id), options);
}

/** analyzeImageWithTree for an image from any source (the caller closes it). */
export async function analyzeSourceWithTree(
  img: SourceImage,
  options: AnalyzeOptions & { readonly tree?: TreeOptions } = {},
): Promise<{ analysis: ImageAnalysis; tree: TreeDir }> {
  const { analysis, replay } = await replayAndAnalyze(img, options);
  return { analysis, tree: fileTree(replay.layers, options.tree) };
}

async function replayAndAnalyze(img: SourceImage, options: AnalyzeOptions): Promise<{ analysis: ImageAnalysis; replay: Replay }> {
  const opts = { ...ANALYZE_DEFAULTS, ...options };
  const provenance = img.provenance;
  const origins = layerOrigins(img.config, img.layers.length, provenance);
  const notes: string[] = [];
  if (!provenance) {
    notes.push(
      'no build record for this image (not built by tsbuild here): instructions are from its history, and only its bottom layer counts as the base image',
    );
  }

  const replay = new Replay();
  for (const layer of img.layers) {
    // One layer's entries at a time: deletions in a layer must be applied before its additions.
    const entries: LayerEntry[] = [];
    for await (const e of layer.entries()) entries.push(e);
    replay.apply(entries);
  }
  const sizes: number[] = [];
  for (const layer of img.layers) sizes.push(await layer.size()); // counted while its entries were read

  const layers: LayerAnalysis[] = img.layers.map((layer, i) => {
    const { copies, files } = replay.layers[i]!;
    return {
      index: i,
      chainId: layer.chainId,
      diffId: layer.diffId,
      size: sizes[i]!,
      origin: origins[i]!,
      files: { ...files },
      storedBytes: sum(copies),
      wastedBytes: sum(copies.filter((c) => c.hiddenBy)),
      largest: [...copies]
        .sort((a, b) => b.bytes - a.bytes || a.path.localeCompare(b.path))
        .slice(0, opts.largestPerLayer)
        .map((c) => ({ path: `/${c.path}`, bytes: c.bytes })),
    };
  });

  const all = replay.layers.flatMap((l) => l.copies);
  const hidden = all.filter((c) => c.hiddenBy);
  const storedBytes = sum(all);
  const wastedBytes = sum(hidden);
  const userWastedBytes = sum(hidden.filter((c) => !origins[c.hiddenBy!.layer]!.base));
  const userSize = layers.filter((l) => !l.origin.base).reduce((n, l) => n + l.size, 0);
  const userCacheBytes = sum(all.filter((c) => !origins[c.layer]!.base && cacheOf(c.path) !== undefined));

  const hints = layerHints({ layers: replay.layers, origins, minBytes: opts.minHintBytes });
  if (provenance && opts.checkContext) {
    const ctx = await unusedContextFiles(provenance, opts.minContextFileBytes);
    hints.push(...ctx.hints);
    notes.push(...ctx.notes);
    hints.sort((a, b) => b.bytes - a.bytes);
  }

  const analysis: ImageAnalysis = {
    id: img.id,
    tags: [...img.tags, ...img.digests],
    size: sizes.reduce((n, s) => n + s, 0),
    userSize,
    storedBytes,
    wastedBytes,
    userWastedBytes,
    userWastedPercent: userSize > 0 ? userWastedBytes / userSize : 0,
    userCacheBytes,
    efficiency: storedBytes > 0 ? 1 - wastedBytes / storedBytes : 1,
    layers,
    inefficientPaths: inefficientPaths(all, hidden),
    hints,
    notes,
  };
  return { analysis, replay };
}

function sum(copies: readonly Copy[]): number {
  let n = 0;
  for (const c of copies) n += c.bytes;
  return n;
}

/** Every path with a hidden copy: how often it is stored, and what that wastes. */
function inefficientPaths(all: readonly Copy[], hidden: readonly Copy[]): InefficientPath[] {
  const wasteful = new Set(hidden.map((c) => c.path));
  const byPath = new Map<string, Copy[]>();
  for (const c of all) {
    if (!wasteful.has(c.path)) continue;
    const list = byPath.get(c.path);
    if (list) list.push(c);
    else byPath.set(c.path, [c]);
  }
  const out: InefficientPath[] = [];
  for (const [path, copies] of byPath) {
    const last = copies[copies.length - 1]!;
    const deleted = copies.every((c) => c.hiddenBy) && last.hiddenBy!.how === 'deleted';
    out.push({
      path: `/${path}`,
      count: copies.length,
      storedBytes: sum(copies),
      wastedBytes: sum(copies.filter((c) => c.hiddenBy)),
      layers: copies.map((c) => c.layer),
      ...(deleted ? { removedBy: last.hiddenBy!.layer } : {}),
    });
  }
  return out.sort((a, b) => b.wastedBytes - a.wastedBytes || a.path.localeCompare(b.path));
}
