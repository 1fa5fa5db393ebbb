// `--cache-to`: the records a build used and made, with the layers they name, written as a
// cache (format.ts) to a registry or a directory; or, for `type=inline`, as the config field
// the built image carries. Layer blobs go through the push's LayerPusher, so a blob the target
// has is not sent again, one another repository of the same registry has is mounted, and a
// layer known from a cache is neither downloaded nor compressed again when it can be mounted.
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { sha256, type Digest } from '../digest.js';
import type { HistoryEntry } from '../image/config.js';
import type { Layer } from '../image/image.js';
import { MediaType, type Descriptor } from '../image/manifest.js';
import { NO_PROGRESS } from '../progress.js';
import type { RegistryOptions } from '../registry/client.js';
import { checkCompressor } from '../registry/compress.js';
import { LayerPusher, type BlobCache } from '../registry/push.js';
import type { BlobRecord } from '../store/distribution.js';
import type { Store } from '../store/store.js';
import { CacheMediaType, serializeCacheConfig, type CacheConfig, type CacheEntry, type StepInputs } from './format.js';
import type { CacheLocation } from './location.js';
import type { CacheTo, ExportOptions } from './spec.js';

/** Off the event loop: a listing can be megabytes. */
const gzipAsync = promisify(gzip);

/** One layer of a record's chain, as the build holds it. */
export interface ExportLayer {
  readonly diffId: Digest;
  /** Its bytes: the store's layer, or a cache's blob. */
  readonly layer: Layer;
  /** A registry blob it is known to be, for mounting. */
  readonly known?: BlobRecord;
}

export interface ExportRecord {
  readonly key: Digest;
  readonly history: HistoryEntry;
  readonly createdTimes?: readonly string[];
  readonly chain: readonly ExportLayer[];
  readonly slot?: string;
  readonly inputs?: StepInputs;
  readonly listing?: string;
}

export interface ExportResult {
  readonly where: string;
  /** Layer blobs the cache names. */
  readonly layers: number;
  readonly records: number;
}

export async function exportCache(
  store: Store,
  to: Exclude<CacheTo, { type: 'inline' }>,
  records: readonly ExportRecord[],
  opts: { readonly registry: RegistryOptions; readonly signal?: AbortSignal },
): Promise<ExportResult> {
  await checkCompressor(to.options.compression);
  const location: CacheLocation =
    to.type === 'local'
      ? new (await import('./layout.js')).LayoutLocation(to.dir)
      : await (await import('./registry-location.js')).RegistryLocation.open(to.ref, { ...opts.registry, push: true });
  await location.sweep?.();
  const tmp = await store.tempDir('cache-export');
  try {
    return await write(store, location, to.options, records, tmp, opts.signal ?? new AbortController().signal);
  } finally {
    location.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function write(
  store: Store,
  location: CacheLocation,
  options: ExportOptions,
  records: readonly ExportRecord[],
  tmp: string,
  signal: AbortSignal,
): Promise<ExportResult> {
  const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : 1));
  // The layers, once each, in the order the records first name them.
  const layers = new Map<Digest, ExportLayer>();
  for (const r of sorted) for (const l of r.chain) if (!layers.has(l.diffId)) layers.set(l.diffId, l);
  const known = new Map<Digest, BlobRecord>();
  for (const l of layers.values()) if (l.known) known.set(l.diffId, l.known);
  const registry = location.domain !== undefined;
  const cache: BlobCache = {
    blobsOf: async (diffId) => [...(known.has(diffId) ? [known.get(diffId)!] : []), ...(await store.blobsOf(diffId))],
    // A directory is no registry: the store's records of where blobs are stay registries'.
    rememberBlob: (diffId, rec) => (registry ? store.rememberBlob(diffId, rec) : Promise.resolve()),
  };
  const compression = options.compression;
  const oci = options.ociMediaTypes || compression === 'zstd';
  const layerType = compression === 'zstd' ? MediaType.ociLayerZstd : oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip;
  const pusher = new LayerPusher(cache, location, compression, tmp, NO_PROGRESS, signal);
  const descriptors: Descriptor[] = [];
  for (const l of layers.values()) {
    const pushed = await pusher.push(l.layer);
    descriptors.push({ mediaType: layerType, digest: pushed.digest, size: pushed.size });
  }
  const index = new Map([...layers.keys()].map((d, i) => [d, i]));
  const entries: CacheEntry[] = [];
  for (const r of sorted) {
    let files: number | undefined;
    if (r.listing !== undefined) {
      files = descriptors.length;
      descriptors.push(await putBytes(location, CacheMediaType.files, await gzipAsync(r.listing)));
    }
    entries.push({ ...entryOf(r, (l) => index.get(l.diffId)!), ...(files !== undefined ? { files } : {}) });
  }
  const config: CacheConfig = { version: 1, layers: [...layers.keys()], records: entries };
  const configDesc = await putBytes(location, CacheMediaType.config, serializeCacheConfig(config));
  const manifestType = oci ? MediaType.ociManifest : MediaType.dockerManifest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      ...(oci ? { artifactType: CacheMediaType.artifact } : {}),
      config: configDesc,
      layers: descriptors,
    }),
  );
  await location.putManifest(manifestType, manifest);
  await location.removeUnreferenced?.(new Set<Digest>([sha256(manifest), configDesc.digest, ...descriptors.map((d) => d.digest)]));
  return { where: location.where, layers: layers.size, records: entries.length };
}

/** A small blob (config, listing), uploaded unless the location has it. */
async function putBytes(location: CacheLocation, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = sha256(bytes);
  if (!(await location.statBlob(digest))) await location.uploadBlob(digest, bytes.length, () => Readable.from([bytes]));
  return { mediaType, digest, size: bytes.length };
}

/**
 * The inline cache of an image whose layers are `diffIds`: the records whose layers are all the
 * image's, their chains naming the image's layers by position (any position with the same
 * diffID names the same tar). Without source listings: an image config should stay small.
 */
export function inlineCache(records: readonly ExportRecord[], diffIds: readonly Digest[]): CacheConfig {
  const position = new Map<Digest, number>();
  diffIds.forEach((d, i) => position.has(d) || position.set(d, i));
  const entries: CacheEntry[] = [];
  for (const r of [...records].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    if (r.chain.every((l) => position.has(l.diffId))) entries.push(entryOf(r, (l) => position.get(l.diffId)!));
  }
  return { version: 1, layers: [...diffIds], records: entries };
}

/** A record as the format has it, its chain's layers by `indexOf`. */
function entryOf(r: ExportRecord, indexOf: (l: ExportLayer) => number): CacheEntry {
  return {
    key: r.key,
    ...(r.chain.length ? { chain: r.chain.map(indexOf) } : {}),
    history: r.history,
    ...(r.createdTimes ? { createdTimes: r.createdTimes } : {}),
    ...(r.slot !== undefined ? { slot: r.slot } : {}),
    ...(r.inputs ? { inputs: r.inputs } : {}),
  };
}
