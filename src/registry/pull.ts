// `pull`: a reference in a registry becomes an image in the store, as `docker pull` does it.
//   1. The tag (or digest) resolves to a manifest; an index resolves further to the manifest for
//      the platform asked for (this machine's by default).
//   2. The config comes next, because its diffIDs say which layers the store already has (by
//      chainID): those are not downloaded ("Already exists").
//   3. The other layers are downloaded in parallel into a temp dir in the store, each checked
//      against its digest and size as it streams. Nothing is stored until all are verified.
//   4. The store takes the image (Store.writeImage, from the image model's view of the
//      downloaded blobs): it unpacks the layers bottom up, checking each diffID, then stores the
//      config and tags (`name:tag` and `name@<manifest digest>`, as Docker records RepoDigests).
//      If that fails, the layers this pull added are removed again: a failed pull leaves the
//      store as it was.
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { explainNoSpace } from '../fs/nospace.js';
import { chainIds, hex, shortId, sha256, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import { parseConfig, type ImageConfig } from '../image/config.js';
import { Limiter } from '../fs/limit.js';
import type { Image, Layer } from '../image/image.js';
import { blobLayer } from '../layer/blob-layer.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import { familiarName, familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { DockerConfig } from './credentials.js';
import { Registry, type FetchedManifest, type Repository, type RegistryOptions } from './client.js';
import { RegistryError, UnauthorizedError } from './errors.js';
import { layerCompression, MAX_CONFIG_BYTES, selectPlatform, type Descriptor, type ImageManifest } from '../image/manifest.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../image/platform.js';

export interface PullOptions extends RegistryOptions {
  /**
   * The platform to pull from a multi-platform image; default this machine's. When given, a
   * single-platform image must match it too (Docker refuses the mismatch the same way).
   */
  readonly platform?: Platform;
  /** Store the image without tagging it (pull-index.ts tags the index it joins). */
  readonly untagged?: boolean;
  readonly progress?: TransferProgress;
  /** Layers downloaded at once (Docker's default is 3). */
  readonly concurrency?: number;
}

export interface PullResult {
  /** What was pulled, with `latest` filled in when neither tag nor digest was given. */
  readonly reference: Reference;
  readonly imageId: Digest;
  /** What the tag resolved to: an index's digest for a multi-platform image (Docker prints this one). */
  readonly manifestDigest: Digest;
  /** The platform-specific image manifest's digest (equal to manifestDigest for a single-platform image). */
  readonly imageManifestDigest: Digest;
  /** Layers downloaded; the others were in the store already. */
  readonly downloaded: number;
  /** Nothing changed: the image was complete in the store and the tag already named it. */
  readonly upToDate: boolean;
}

export class PullError extends TsbuildError {}

/**
 * Pulls `ref` into the store and tags it. The builder calls this for a FROM the store cannot
 * resolve.
 */
export async function pullImage(store: Store, ref: Reference | string, opts: PullOptions = {}): Promise<PullResult> {
  const reference = withDefaultTag(typeof ref === 'string' ? parseReference(ref) : ref);
  const progress = opts.progress ?? NO_PROGRESS;
  // One failed download stops the others: a controller of our own, joined to the caller's.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const credentials = opts.credentials ?? (await DockerConfig.load());
  const registry = await Registry.open(reference.domain, { ...opts, credentials, signal });
  try {
    const repo = registry.repository(reference.path, ['pull']);
    const { top, manifest, imageManifestDigest, configBytes, config } = await resolveImage(store, repo, reference, opts.platform);
    const diffIds = config.rootfs.diff_ids;

    const imageId = sha256(configBytes);
    const tagRef = reference.tag !== undefined ? { domain: reference.domain, path: reference.path, tag: reference.tag } : undefined;
    const digestRef: Reference = { domain: reference.domain, path: reference.path, digest: top.digest };
    const wasComplete = await store.hasImage(imageId);
    const tagBefore = tagRef ? await store.tagged(tagRef) : undefined;

    const chains = chainIds(diffIds);
    const present = await Promise.all(chains.map((c) => store.hasLayer(c)));
    manifest.layers.forEach((l, i) => {
      if (present[i]) progress.done(shortId(l.digest), 'Already exists');
    });

    const tmp = await store.tempDir('pull');
    let downloaded = 0;
    try {
      const files = await downloadLayers(repo, manifest.layers, present, tmp, progress, opts.concurrency ?? 3, stop);
      const fileOf = async (i: number): Promise<string> => {
        // A layer that was present when we looked may have been removed since: fetch it now.
        if (!files.has(i)) files.set(i, await downloadOne(repo, manifest.layers[i]!, tmp, progress));
        return files.get(i)!;
      };
      await store.writeImage(downloadedImage(configBytes, config, manifest, fileOf, signal), {
        signal,
        tags: opts.untagged ? [] : [...(tagRef ? [tagRef] : []), digestRef],
        layerDone: (i, existed) => {
          if (existed) return;
          downloaded++;
          progress.done(shortId(manifest.layers[i]!.digest), 'Pull complete');
        },
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }

    // Remember where each blob lives, for pushes that can mount instead of upload.
    for (const [i, l] of manifest.layers.entries()) {
      await store.rememberBlob(diffIds[i]!, {
        digest: l.digest,
        sourceRepository: repo.name,
        compression: layerCompression(l.mediaType)!,
        size: l.size,
      });
    }
    return {
      reference,
      imageId,
      manifestDigest: top.digest,
      imageManifestDigest,
      downloaded,
      upToDate: wasComplete && downloaded === 0 && (tagRef === undefined || tagBefore === imageId),
    };
  } finally {
    registry.close();
  }
}

/** A registry's image resolved (manifest and config) but none of its layers downloaded. */
export interface RemoteImage {
  readonly reference: Reference;
  /** Its repository, open until close(): layers are read from it when something needs them. */
  readonly repo: Repository;
  readonly manifest: ImageManifest;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  /** What the tag resolved to (an index's digest for a multi-platform image), as pull records it. */
  readonly manifestDigest: Digest;
  close(): void;
}

/**
 * Resolves `ref` as pull does, checks the result the same way, and stops before the layers: a
 * build whose steps all come from a cache needs a base's config, and its layers only if a step
 * reads its files. Without a store (analyze of a registry's image), nothing is read from or
 * written to one.
 */
export async function openRemoteImage(store: Store | undefined, ref: string, opts: PullOptions = {}): Promise<RemoteImage> {
  const reference = withDefaultTag(parseReference(ref));
  const credentials = opts.credentials ?? (await DockerConfig.load());
  const registry = await Registry.open(reference.domain, { ...opts, credentials });
  try {
    const repo = registry.repository(reference.path, ['pull']);
    const { top, manifest, configBytes, config } = await resolveImage(store, repo, reference, opts.platform);
    return { reference, repo, manifest, configBytes, config, manifestDigest: top.digest, close: () => registry.close() };
  } catch (err) {
    registry.close();
    throw err;
  }
}

/** What a reference resolves to in the registry, checked for consistency before anything is downloaded. */
interface ResolvedImage {
  /** What the tag or digest names: an index or an image manifest. */
  readonly top: FetchedManifest;
  /** The image manifest for the platform. */
  readonly manifest: ImageManifest;
  readonly imageManifestDigest: Digest;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
}

async function resolveImage(
  store: Store | undefined,
  repo: Repository,
  reference: Reference,
  platform: Platform | undefined,
): Promise<ResolvedImage> {
  const top = await getTopManifest(repo, reference);
  const { manifest, digest: imageManifestDigest } = await imageManifestFor(repo, top, platform);
  // The config's digest is the image ID: a store that has the image has its config too.
  const configBytes = (await store?.hasImage(manifest.config.digest))
    ? (await store!.image(manifest.config.digest)).configBytes
    : await repo.readBlob(manifest.config.digest, MAX_CONFIG_BYTES);
  const config = parseConfig(configBytes);
  const name = familiarString(reference);
  if (platform && !platformMatches(platform, config)) {
    throw new PullError(
      `image with reference ${name} was found but does not match the specified platform: wanted ${formatPlatform(platform)}, actual: ${formatPlatform(config)}`,
    );
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new PullError(`${name}: the manifest has ${manifest.layers.length} layers but the config names ${config.rootfs.diff_ids.length}`);
  }
  for (const l of manifest.layers) {
    if (layerCompression(l.mediaType) === undefined) throw new PullError(`${name}: unsupported layer media type ${l.mediaType}`);
    if (l.urls?.length) throw new PullError(`${name}: layer ${l.digest} is a foreign layer hosted at ${l.urls[0]}: not supported`);
  }
  return { top, manifest, imageManifestDigest, configBytes, config };
}

/** The manifest the reference names, with Docker's wording for the two common failures. */
export async function getTopManifest(repo: Repository, reference: Reference): Promise<FetchedManifest> {
  try {
    return await repo.getManifest(reference.digest ?? reference.tag!);
  } catch (err) {
    const name = familiarName(reference);
    if (err instanceof UnauthorizedError) {
      throw new PullError(`pull access denied for ${name}, repository does not exist or may require authorization: ${err.detail}`, {
        cause: err,
      });
    }
    if (err instanceof RegistryError && err.status === 404) {
      throw new PullError(`manifest for ${familiarString(reference)} not found: ${err.detail}`, { cause: err });
    }
    throw err;
  }
}

async function imageManifestFor(
  repo: Repository,
  top: FetchedManifest,
  platform: Platform | undefined,
): Promise<{ manifest: ImageManifest; digest: Digest }> {
  if (top.manifest.kind === 'image') return { manifest: top.manifest, digest: top.digest };
  const entry = selectPlatform(top.manifest, platform ?? hostPlatform());
  const child = await repo.getManifest(entry.digest);
  if (child.manifest.kind !== 'image')
    throw new PullError(`${repo.path}@${entry.digest}: an index entry for a platform is itself an index`);
  return { manifest: child.manifest, digest: child.digest };
}

/**
 * Downloads the layers not `present`, `concurrency` at a time. On the first failure the others
 * are stopped, and that failure (not the aborts it caused) is what the caller sees.
 */
async function downloadLayers(
  repo: Repository,
  layers: readonly Descriptor[],
  present: readonly boolean[],
  tmp: string,
  progress: TransferProgress,
  concurrency: number,
  stop: AbortController,
): Promise<Map<number, string>> {
  const files = new Map<number, string>();
  const limiter = new Limiter(concurrency);
  let first: { error: unknown } | undefined;
  const wanted = layers.map((l, i) => ({ l, i })).filter(({ i }) => !present[i]);
  // The same blob twice in one image (two identical layers) is fetched once.
  const byDigest = new Map<Digest, Promise<string>>();
  for (const { l } of wanted) progress.start(shortId(l.digest), 'Pulling fs layer', l.size);
  await Promise.allSettled(
    wanted.map(({ l, i }) => {
      let p = byDigest.get(l.digest);
      if (!p) {
        p = limiter.run(() => downloadOne(repo, l, tmp, progress));
        byDigest.set(l.digest, p);
      }
      return p.then(
        (file) => void files.set(i, file),
        (error: unknown) => {
          first ??= { error };
          stop.abort();
        },
      );
    }),
  );
  if (first) throw first.error;
  return files;
}

async function downloadOne(repo: Repository, layer: Descriptor, tmp: string, progress: TransferProgress): Promise<string> {
  const id = shortId(layer.digest);
  const file = join(tmp, hex(layer.digest));
  try {
    await repo.downloadBlob(layer.digest, layer.size, file, (n) => progress.advance(id, n));
  } catch (err) {
    // `tmp` is in the store: a full disk there is the store's.
    throw explainNoSpace(err, `downloading layer ${layer.digest} (${layer.size} bytes)`, dirname(dirname(tmp)));
  }
  progress.done(id, 'Download complete');
  return file;
}

/**
 * The pulled image as the image model's view: config and manifest from the registry, each
 * layer's blob from the file it was downloaded to (checked against its digest and size then).
 */
function downloadedImage(
  configBytes: Buffer,
  config: ImageConfig,
  manifest: ImageManifest,
  fileOf: (i: number) => Promise<string>,
  signal: AbortSignal,
): Image {
  // Ctrl-C ends a layer's read, and with it the unpacking.
  const layers = manifest.layers.map((d, i): Layer => blobLayer(d, config.rootfs.diff_ids[i]!, () => fileOf(i), signal));
  return { id: sha256(configBytes), configBytes, config, layers };
}
