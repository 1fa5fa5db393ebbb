// `--cache-from`: the caches a build may take steps from, tried in the order given after the
// store's own build cache. Each is loaded once (its manifest and config: a few kilobytes), and
// a step's key is looked up in memory; a hit hands the builder the step's history entry and its
// layer chain, as layers the store has or as pending layers (pending.ts) whose blobs are read
// only if a later step needs their files. Nothing here can make a build fail: a cache that is
// missing, not ours, truncated or unreachable is a warning and a miss, and so is a hit whose
// blobs the location no longer has.
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { chainIdOf, type Digest } from '../digest.js';
import { parseConfig, type HistoryEntry } from '../image/config.js';
import { layerCompression, MAX_CONFIG_BYTES, selectPlatform, type Descriptor } from '../image/manifest.js';
import { hostPlatform } from '../image/platform.js';
import type { RegistryOptions } from '../registry/client.js';
import type { LayerRecord, Store } from '../store/store.js';
import { explainMiss } from './explain.js';
import {
  BY_CONTENT,
  CacheMediaType,
  INLINE_FIELD,
  parseCacheConfig,
  type CacheConfig,
  type CacheEntry,
  type StepInputs,
} from './format.js';
import type { CacheLocation } from './location.js';
import type { BlobFiles } from './blob-files.js';
import type { PendingLayer } from './pending.js';
import type { CacheFrom } from './spec.js';

/** A step found in a cache. */
export interface CacheHit {
  readonly history: HistoryEntry;
  readonly createdTimes?: readonly string[];
  /** The layers it left, bottom first: the store's where it has them, else pending. */
  readonly chain: readonly (LayerRecord | PendingLayer)[];
}

/** Off the event loop: a listing can be megabytes. */
const gunzipAsync = promisify(gunzip);

/** A listing of COPY sources is a few bytes per file; this bounds what a hostile cache can send. */
const MAX_FILES_BLOB = 256 << 20;

interface LoadedCache {
  readonly what: string;
  /** Where its blobs are; none for an inline cache in a stored image (its layers are the store's). */
  readonly location?: CacheLocation;
  readonly config: CacheConfig;
  /** The manifest's layers: the layer blobs, then the source listings. */
  readonly blobs: readonly Descriptor[];
  /** For an inline cache in a stored image: its layers. */
  readonly stored?: readonly LayerRecord[];
  readonly byKey: ReadonlyMap<Digest, CacheEntry>;
  readonly bySlot: ReadonlyMap<string, CacheEntry>;
}

export interface CacheSourcesOptions {
  readonly registry: RegistryOptions;
  readonly warn: (message: string) => void;
  /** Where downloaded blobs go (the build's scratch directory, removed with it). */
  readonly blobs: BlobFiles;
}

export class CacheSources {
  /** Blobs known present, by location and digest (one HEAD each). */
  private readonly present = new Map<string, Promise<boolean>>();

  private constructor(
    private readonly store: Store,
    private readonly loaded: LoadedCache[],
    private readonly opts: CacheSourcesOptions,
  ) {}

  /** Loads each source; one that cannot be read is reported and left out. */
  static async load(store: Store, specs: readonly CacheFrom[], opts: CacheSourcesOptions): Promise<CacheSources> {
    const loaded: LoadedCache[] = [];
    for (const spec of specs) {
      const what = spec.type === 'local' ? spec.dir : spec.ref;
      try {
        const cache = await loadOne(store, spec, opts);
        if (cache) loaded.push(cache);
      } catch (err) {
        opts.warn(`--cache-from ${what}: ${(err as Error).message}; building without it`);
      }
    }
    return new CacheSources(store, loaded, opts);
  }

  /** Whether any source has records. */
  get empty(): boolean {
    return this.loaded.every((c) => c.byKey.size === 0);
  }

  /** The first source's record for `key` whose blobs are all there. */
  async lookup(key: Digest): Promise<CacheHit | undefined> {
    for (const cache of this.loaded) {
      const entry = cache.byKey.get(key);
      if (!entry) continue;
      const chain = await this.chainOf(cache, entry);
      if (!chain) continue;
      return { history: entry.history, ...(entry.createdTimes ? { createdTimes: entry.createdTimes } : {}), chain };
    }
    return undefined;
  }

  /** Why a step at `slot` with these inputs found nothing: compared with what the caches have there. */
  async explain(slot: string, inputs: StepInputs, listing: string | undefined): Promise<string> {
    for (const cache of this.loaded) {
      const entry = cache.bySlot.get(slot);
      if (!entry?.inputs) continue;
      const cachedListing = async (): Promise<string | undefined> => {
        if (entry.files === undefined || !cache.location) return undefined;
        try {
          const d = cache.blobs[entry.files]!;
          return (await gunzipAsync(await cache.location.readBlob(d.digest, Math.min(d.size, MAX_FILES_BLOB)))).toString('utf8');
        } catch {
          return undefined;
        }
      };
      return explainMiss(entry.inputs, inputs, listing, cachedListing);
    }
    return 'no step at this place in the cache';
  }

  close(): void {
    for (const c of this.loaded) c.location?.close();
  }

  private async chainOf(cache: LoadedCache, entry: CacheEntry): Promise<CacheHit['chain'] | undefined> {
    const out: (LayerRecord | PendingLayer)[] = [];
    let parent: Digest | undefined;
    for (const i of entry.chain ?? []) {
      const diffId = cache.config.layers[i]!;
      const chainId = chainIdOf(parent, diffId);
      const stored = cache.stored?.[i]?.chainId === chainId ? cache.stored[i] : await this.store.useLayer(chainId);
      if (stored) {
        out.push(stored);
      } else {
        const blob = cache.blobs[i]!;
        if (!cache.location || !(await this.has(cache, blob.digest))) return undefined;
        out.push(this.pending(cache.location, blob, diffId, chainId, parent));
      }
      parent = chainId;
    }
    return out;
  }

  private has(cache: LoadedCache, digest: Digest): Promise<boolean> {
    const key = `${cache.location!.name} ${digest}`;
    let p = this.present.get(key);
    if (!p) {
      p = cache.location!.statBlob(digest).then(
        (s) => s !== undefined,
        () => false,
      );
      this.present.set(key, p);
      void p.then((ok) => {
        if (!ok) this.opts.warn(`--cache-from ${cache.what}: blob ${digest} is missing; the steps that need it run again`);
      });
    }
    return p;
  }

  private pending(location: CacheLocation, d: Descriptor, diffId: Digest, chainId: Digest, parent: Digest | undefined): PendingLayer {
    const compression = layerCompression(d.mediaType);
    const known =
      location.domain !== undefined && compression !== undefined
        ? { digest: d.digest, sourceRepository: location.name, compression, size: d.size }
        : undefined;
    return this.opts.blobs.pending(d, { diffId, chainId, parent }, (file) => location.downloadBlob(d.digest, d.size, file), known);
  }
}

async function loadOne(store: Store, spec: CacheFrom, opts: CacheSourcesOptions): Promise<LoadedCache | undefined> {
  if (spec.type === 'image') {
    let id: Digest | undefined;
    try {
      id = await store.resolveImage(spec.ref);
    } catch {
      id = undefined;
    }
    if (id) {
      // A stored image: its inline cache, if it has one, names the store's layers (the classic
      // --cache-from of RUN and WORKDIR steps is the builder's, cache-from.ts).
      const image = await store.image(id);
      const inline = (JSON.parse(image.configBytes.toString('utf8')) as Record<string, unknown>)[INLINE_FIELD];
      if (inline === undefined) return undefined;
      const config = inlineConfig(inline, image.config.rootfs.diff_ids);
      return indexed({ what: spec.ref, config, blobs: [], stored: image.layers.map((l) => l.record) });
    }
  }
  const location =
    spec.type === 'local'
      ? new (await import('./layout.js')).LayoutLocation(spec.dir)
      : await (await import('./registry-location.js')).RegistryLocation.open(spec.ref, opts.registry);
  try {
    const fetched = await location.manifest();
    if (!fetched) {
      opts.warn(`--cache-from ${location.where}: no cache there yet; building without it`);
      location.close();
      return undefined;
    }
    let manifest = fetched.manifest;
    if (manifest.kind === 'index') {
      const child = selectPlatform(manifest, hostPlatform());
      const got = await location.manifest(child.digest);
      if (!got || got.manifest.kind !== 'image') throw new Error('an index, not a tsbuild cache or image');
      manifest = got.manifest;
    }
    if (manifest.kind !== 'image') throw new Error('not a tsbuild cache');
    const bytes = await location.readBlob(manifest.config.digest, MAX_CONFIG_BYTES);
    let config: CacheConfig;
    if (manifest.config.mediaType === CacheMediaType.config) {
      config = parseCacheConfig(JSON.parse(bytes.toString('utf8')), manifest.layers.length);
    } else {
      // An image: its inline cache.
      const inline = (JSON.parse(bytes.toString('utf8')) as Record<string, unknown>)[INLINE_FIELD];
      if (inline === undefined) throw new Error('an image without a tsbuild cache (build it with --cache-to type=inline)');
      config = inlineConfig(inline, parseConfig(bytes).rootfs.diff_ids);
    }
    return indexed({ what: location.where, location, config, blobs: manifest.layers });
  } catch (err) {
    location.close();
    throw err;
  }
}

/** An inline cache: its layers are the image's, so they must be the image's diffIDs. */
function inlineConfig(raw: unknown, diffIds: readonly Digest[]): CacheConfig {
  const config = parseCacheConfig(raw, diffIds.length);
  if (config.layers.length !== diffIds.length || config.layers.some((d, i) => d !== diffIds[i]))
    throw new Error("the image's inline cache names other layers than the image has");
  return config;
}

function indexed(c: Omit<LoadedCache, 'byKey' | 'bySlot'>): LoadedCache {
  const byKey = new Map<Digest, CacheEntry>();
  const bySlot = new Map<string, CacheEntry>();
  for (const r of c.config.records) {
    byKey.set(r.key, r);
    // A step recorded under both keys is explained by its own (which names the source stage).
    const other = r.slot === undefined ? undefined : bySlot.get(r.slot);
    if (r.slot !== undefined && r.inputs !== undefined && (!other || other.inputs?.source === BY_CONTENT)) bySlot.set(r.slot, r);
  }
  return { ...c, byKey, bySlot };
}
