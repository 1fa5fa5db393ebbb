// `push`: an image in the store becomes a manifest, a config and layer blobs in a registry, as
// `docker push` does it. Layers are stored uncompressed, so each is compressed on the way out;
// per layer, cheapest first:
//   1. a blob the distribution metadata says this layer compresses to (with this compression)
//      is already in the repository (HEAD): nothing to send ("Layer already exists");
//   2. the metadata names another repository on the same registry holding such a blob: ask the
//      registry to mount it (one POST, no bytes: "Mounted from ...");
//   3. compress the layer tar (rebuilt from the store and checked against its diffID as it
//      streams) and send it as it is compressed, hashing it on the way (as `docker push` does:
//      the upload overlaps the compression); where blobs cannot be streamed (a cache directory),
//      compress into a temp file while hashing, then HEAD that digest and copy it if absent.
// Layers go up a few at a time, then the config, then the manifest: Docker schema 2 for gzip,
// OCI for zstd (zstd layers have no Docker media type), as Docker and BuildKit choose.
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { addAbortSignal, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hex, sha256, shortId, type Digest } from '../digest.js';
import { InvalidInputError, NotFoundError, TsbuildError } from '../errors.js';
import type { Image, Layer } from '../image/image.js';
import { Limiter } from '../fs/limit.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import { familiarName, familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { DockerConfig } from './credentials.js';
import { Registry, type RegistryOptions } from './client.js';
import { UnauthorizedError } from './errors.js';
import { checkCompressor, compressLayer, type LayerCompression } from './compress.js';
import { MediaType, serializeImageManifest, type Descriptor } from '../image/manifest.js';
import type { BlobRecord } from '../store/distribution.js';

export interface PushOptions extends RegistryOptions {
  /** Layer compression: gzip (Docker schema 2 manifest, the default) or zstd (OCI manifest). */
  readonly compression?: LayerCompression;
  readonly progress?: TransferProgress;
  /** Layers uploaded at once (Docker's default is 5; 3 keeps memory and temp disk modest). */
  readonly concurrency?: number;
  /**
   * OCI media types for gzip layers too (BuildKit's oci-mediatypes): what a multi-platform
   * image's OCI index holds. zstd is always OCI.
   */
  readonly ociMediaTypes?: boolean;
  /** The manifest is put by its digest, not under the tag: one platform's manifest of an index (push-index.ts). */
  readonly untagged?: boolean;
}

export type LayerOutcome = 'exists' | 'mounted' | 'pushed';

export interface PushedLayer {
  readonly diffId: Digest;
  /** The compressed blob in the registry. */
  readonly digest: Digest;
  readonly size: number;
  readonly outcome: LayerOutcome;
  /** For `mounted`: the repository path it came from. */
  readonly mountedFrom?: string;
  /** Whether this push ran the compressor for the layer (false when a known blob was reused). */
  readonly compressed: boolean;
}

export interface PushResult {
  readonly reference: Reference;
  readonly imageId: Digest;
  readonly manifestDigest: Digest;
  readonly manifestMediaType: string;
  /** Bytes of the manifest, as `docker push` prints them. */
  readonly manifestSize: number;
  /** Bottom first, one per layer of the image (of every platform's, for an index). */
  readonly layers: readonly PushedLayer[];
  /** A multi-platform image's manifests, one per platform, as the index lists them. */
  readonly platforms?: readonly PushResult[];
}

export class PushError extends TsbuildError {}

const MEDIA_TYPES: Record<LayerCompression, { manifest: string; config: string; layer: string }> = {
  gzip: { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayerGzip },
  zstd: { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerZstd },
};

const OCI_GZIP = { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip };

/** Known blobs tried per layer before compressing: each costs one HEAD or POST. */
const MAX_CANDIDATES = 3;

export async function pushImage(store: Store, ref: Reference | string, opts: PushOptions = {}): Promise<PushResult> {
  const reference = withDefaultTag(typeof ref === 'string' ? parseReference(ref) : ref);
  if (reference.tag === undefined) throw new InvalidInputError(`cannot push a digest reference: ${familiarString(reference)}`);
  const imageId = await store.tagged(reference);
  if (!imageId) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarString(reference)}`);
  const target = await store.resolveTarget(imageId);
  if (target.kind === 'index') {
    // Loaded only for a multi-platform image.
    const { pushIndex } = await import('./push-index.js');
    return pushIndex(store, target.index, reference, opts);
  }
  const result = await pushImageView(store, await store.image(imageId), reference, store, opts);
  await store.tag({ domain: reference.domain, path: reference.path, digest: result.manifestDigest }, imageId);
  return result;
}

/**
 * Pushes any image view (image.ts) under `reference`: a stored image (pushImage), or one a build
 * has not stored (its layers partly known from a cache, `blobs` saying where their blobs are).
 * `store` gives the scratch space for compressing.
 */
export async function pushImageView(
  store: Store,
  image: Image,
  reference: Reference,
  blobs: BlobCache,
  opts: PushOptions = {},
): Promise<PushResult> {
  if (reference.tag === undefined) throw new InvalidInputError(`cannot push a digest reference: ${familiarString(reference)}`);
  const compression = opts.compression ?? 'gzip';
  const types = compression === 'gzip' && opts.ociMediaTypes ? OCI_GZIP : MEDIA_TYPES[compression];
  const progress = opts.progress ?? NO_PROGRESS;
  const imageId = image.id;
  await checkCompressor(compression);
  const configBytes = image.configBytes;

  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const credentials = opts.credentials ?? (await DockerConfig.load());
  const registry = await Registry.open(reference.domain, { ...opts, credentials, signal });
  const tmp = await store.tempDir('push');
  try {
    const repo = registry.repository(reference.path, ['pull', 'push']);
    const pusher = new LayerPusher(blobs, repo, compression, tmp, progress, signal);

    // One upload per distinct layer content; a layer repeated in the stack reuses the result.
    const byDiffId = new Map<Digest, Promise<PushedLayer>>();
    const limiter = new Limiter(opts.concurrency ?? 3, signal);
    for (const layer of image.layers) progress.start(shortId(layer.diffId), 'Preparing');
    let first: { error: unknown } | undefined;
    const jobs = image.layers.map((layer) => {
      let job = byDiffId.get(layer.diffId);
      if (!job) {
        job = limiter.run(() => pusher.push(layer));
        byDiffId.set(layer.diffId, job);
      }
      return job.catch((error: unknown) => {
        first ??= { error };
        stop.abort();
        throw error;
      });
    });
    const settled = await Promise.allSettled(jobs);
    if (first) throw first.error;
    const layers = settled.map((r) => (r as PromiseFulfilledResult<PushedLayer>).value);

    const config: Descriptor = { mediaType: types.config, digest: imageId, size: configBytes.length };
    if (!(await repo.statBlob(imageId))) await repo.uploadBlob(imageId, configBytes.length, () => Readable.from([configBytes]));

    const manifest = serializeImageManifest({
      schemaVersion: 2,
      mediaType: types.manifest,
      config,
      layers: layers.map((l) => ({ mediaType: types.layer, digest: l.digest, size: l.size })),
    });
    const manifestDigest = await repo.putManifest(opts.untagged ? sha256(manifest) : reference.tag, types.manifest, manifest);
    return { reference, imageId, manifestDigest, manifestMediaType: types.manifest, manifestSize: manifest.length, layers };
  } catch (err) {
    if (err instanceof UnauthorizedError) {
      const hint = registry.auth.hasCredentials ? '' : ` (no credentials for ${reference.domain}: tsbuild login ${reference.domain})`;
      throw new PushError(`push access denied for ${familiarName(reference)}${hint}: ${err.detail}`, { cause: err });
    }
    throw err;
  } finally {
    registry.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Where layers are known to compress to blobs in registries (the store's distribution
 * metadata): the compressed-blob cache of a push, and the repositories to mount blobs from.
 */
export interface BlobCache {
  blobsOf(diffId: Digest): Promise<BlobRecord[]>;
  rememberBlob(diffId: Digest, rec: BlobRecord): Promise<void>;
}

/**
 * Where layer blobs go: a registry repository (client.ts's Repository is one), or a directory
 * in an OCI layout (a build cache's, src/cache/layout.ts), which has no domain to mount from.
 */
export interface BlobTarget {
  /** `registry/path`, as the distribution metadata records where a blob is. */
  readonly name: string;
  /** The registry's domain; undefined where nothing can be mounted. */
  readonly domain: string | undefined;
  statBlob(digest: Digest): Promise<{ size: number } | undefined>;
  mountBlob(digest: Digest, from: string): Promise<boolean>;
  addPullScope(path: string): void;
  uploadBlob(digest: Digest, size: number, open: () => Readable, onBytes?: (n: number) => void): Promise<void>;
  /** A blob sent as it is made, its digest and size known at its end; absent where that cannot be done. */
  uploadStream?(source: string, open: () => Promise<Readable>, onBytes?: (n: number) => void): Promise<{ digest: Digest; size: number }>;
}

/** Sends layers to a BlobTarget, reusing what the target has or can mount (the steps above). */
export class LayerPusher {
  constructor(
    private readonly cache: BlobCache,
    private readonly repo: BlobTarget,
    private readonly compression: LayerCompression,
    private readonly tmp: string,
    private readonly progress: TransferProgress,
    /** Stops a compression in progress too, not only the transfers. */
    private readonly signal: AbortSignal,
  ) {}

  async push(layer: Layer): Promise<PushedLayer> {
    const id = shortId(layer.diffId);
    const result = (await this.reuse(layer)) ?? (await this.upload(layer));
    await this.remember(layer.diffId, result);
    const note =
      result.outcome === 'exists' ? 'Layer already exists' : result.outcome === 'mounted' ? `Mounted from ${result.mountedFrom}` : 'Pushed';
    this.progress.done(id, note);
    return result;
  }

  /** Steps 1 and 2: a blob this layer is known to compress to, already here or mountable. */
  private async reuse(layer: Layer): Promise<PushedLayer | undefined> {
    const domain = this.repo.domain;
    const known = (await this.cache.blobsOf(layer.diffId)).filter((r) => r.compression === this.compression);
    // Blobs recorded for this very repository first: the likeliest to be here.
    const here = known.filter((r) => r.sourceRepository === this.repo.name);
    const elsewhere = known.filter((r) => r.sourceRepository !== this.repo.name);
    const candidates = distinct([...here, ...elsewhere].map((r) => r.digest)).slice(0, MAX_CANDIDATES);
    for (const digest of candidates) {
      const stat = await this.repo.statBlob(digest);
      if (stat) return { diffId: layer.diffId, digest, size: stat.size, outcome: 'exists', compressed: false };
    }
    const mountable =
      domain === undefined ? [] : elsewhere.filter((r) => r.sourceRepository.startsWith(`${domain}/`)).slice(0, MAX_CANDIDATES);
    for (const rec of mountable) {
      const from = rec.sourceRepository.slice(domain!.length + 1);
      this.repo.addPullScope(from);
      if (await this.repo.mountBlob(rec.digest, from)) {
        const size = rec.size >= 0 ? rec.size : ((await this.repo.statBlob(rec.digest))?.size ?? -1);
        return { diffId: layer.diffId, digest: rec.digest, size, outcome: 'mounted', mountedFrom: from, compressed: false };
      }
    }
    return undefined;
  }

  /** Step 3: compress and send at once, hashing on the way. */
  private async upload(layer: Layer): Promise<PushedLayer> {
    if (!this.repo.uploadStream) return this.uploadFromFile(layer);
    const id = shortId(layer.diffId);
    const { digest, size } = await this.repo.uploadStream(
      `layer ${layer.diffId}`,
      async () => addAbortSignal(this.signal, await compressLayer(layer, this.compression)),
      (n) => this.progress.advance(id, n),
    );
    return { diffId: layer.diffId, digest, size, outcome: 'pushed', compressed: true };
  }

  /** Step 3 where nothing can be streamed: compress into a temp file while hashing; copy it unless the target has it. */
  private async uploadFromFile(layer: Layer): Promise<PushedLayer> {
    const id = shortId(layer.diffId);
    const file = join(this.tmp, hex(layer.diffId));
    try {
      const { digest, size } = await this.compressToFile(layer, file);
      if (!(await this.repo.statBlob(digest))) {
        await this.repo.uploadBlob(
          digest,
          size,
          () => createReadStream(file),
          (n) => this.progress.advance(id, n),
        );
        return { diffId: layer.diffId, digest, size, outcome: 'pushed', compressed: true };
      }
      return { diffId: layer.diffId, digest, size, outcome: 'exists', compressed: true };
    } finally {
      await rm(file, { force: true });
    }
  }

  private async compressToFile(layer: Layer, file: string): Promise<{ digest: Digest; size: number }> {
    const hash = createHash('sha256');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(await compressLayer(layer, this.compression), measure, createWriteStream(file, { mode: 0o600 }), {
      signal: this.signal,
    });
    return { digest: `sha256:${hash.digest('hex')}` as Digest, size };
  }

  /** Records where the blob now is: the cache for the next push, a mount source for other repositories. */
  private async remember(diffId: Digest, l: PushedLayer): Promise<void> {
    const rec: BlobRecord = { digest: l.digest, sourceRepository: this.repo.name, compression: this.compression, size: l.size };
    await this.cache.rememberBlob(diffId, rec);
  }
}

function distinct<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}
