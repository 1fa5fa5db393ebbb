// `load`: an image archive (Docker's `docker save` layout, old or new, or an OCI image layout;
// plain or compressed) → images in the store.
//
// The input is read once, front to back: it may be a pipe. A tar may hold a layer before the
// index that says what the layer is (Docker writes manifest.json last), so until the index is
// known every entry is spooled to a temporary directory inside the store root. Once the index
// is known (an archive that puts it first, as `tsbuild save` does), the reader asks the store
// which layers it lacks and from then on keeps only those: a layer the store already has is
// skipped, and the layer the store asks for next is unpacked straight from the input (reader.ts).
//
// Each image goes to the store through Store.writeImage, as the image model's view of the
// archive's blobs: blobs named `blobs/sha256/<hex>` or described by an OCI descriptor are
// verified against their digest and size, and every layer against the diffID its config names. Tags
// are set only once the whole archive has been read and every image stored; a failed load takes
// out the images and layers it added, so the store is as it was, and the spool goes in every case.
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { chainIds, sha256, shortId, type Digest } from '../digest.js';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { parseConfig, type ImageConfig } from '../image/config.js';
import type { Image, Layer } from '../image/image.js';
import { INDEX_MEDIA_TYPES, MediaType } from '../image/manifest.js';
import type { Platform } from '../image/platform.js';
import type { Reference } from '../image/reference.js';
import { decompress } from '../layer/decompress.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import type { Store } from '../store/store.js';
import { planDockerArchive } from './docker-index.js';
import { DOCKER_MANIFEST_FILE, OCI_INDEX_FILE } from './formats.js';
import { planOciArchive } from './oci-index.js';
import { ArchiveReader, type ArchiveFiles, type BlobRef, type PlannedImage } from './reader.js';

export interface LoadedImage {
  readonly id: Digest;
  /** Each tag the archive gave the image, and the image it was taken from, if another. */
  readonly tags: readonly { readonly ref: Reference; readonly replaced?: Digest }[];
  /** Layers unpacked (the others were in the store already). */
  readonly addedLayers: number;
  /** A multi-platform image (`id` is its index's): its platforms' images. */
  readonly platforms?: readonly { readonly platform: Platform; readonly imageId: Digest }[];
}

export interface LoadOptions {
  readonly progress?: TransferProgress;
  /** Called for each image once the whole archive has been loaded, in archive order. */
  readonly loaded?: (image: LoadedImage) => void;
  /** Stops the load (which then undoes itself). The input should be ended too: a read may be waiting on it. */
  readonly signal?: AbortSignal;
  /**
   * false: store the images without the archive's tags (build --build-context oci-layout://
   * needs an image for one build, not a name in the store). Default true.
   */
  readonly tag?: boolean;
}

/**
 * Reads until the archive's index is known, and returns the images it describes. A docker
 * archive whose OCI index.json (tsbuild's and Docker 25's carry one) names a multi-platform
 * image is read by that index, which keeps the platforms together (manifest.json cannot).
 */
export async function plan(archive: ArchiveReader): Promise<PlannedImage[]> {
  // Docker writes manifest.json last; ours come first (save.ts), and a streaming reader can then
  // unpack layers without spooling them.
  while (!archive.has(DOCKER_MANIFEST_FILE) && !archive.ended) await archive.advance();
  if (archive.has(DOCKER_MANIFEST_FILE)) {
    while (!archive.has(OCI_INDEX_FILE) && !archive.ended) await archive.advance();
    if (archive.has(OCI_INDEX_FILE) && (await namesMultiPlatformImage(archive))) return planOciArchive(archive, { allPlatforms: true });
    return planDockerArchive(await archive.readDocument({ path: DOCKER_MANIFEST_FILE, what: 'image archive' }));
  }
  if (archive.has(OCI_INDEX_FILE)) return planOciArchive(archive, { allPlatforms: true });
  if (archive.has('repositories')) {
    throw new InvalidInputError('image archive has no manifest.json: archives from Docker before 1.10 are not supported');
  }
  throw new InvalidInputError('not an image archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)');
}

/** Whether index.json names an index (a multi-platform image) rather than only image manifests. */
async function namesMultiPlatformImage(archive: ArchiveReader): Promise<boolean> {
  try {
    const index = JSON.parse((await archive.readDocument({ path: OCI_INDEX_FILE, what: 'image archive' })).toString('utf8')) as {
      manifests?: { mediaType?: string }[];
    };
    return (index.manifests ?? []).some((m) => m.mediaType !== undefined && INDEX_MEDIA_TYPES.has(m.mediaType));
  } catch {
    return false; // manifest.json is the docker archive's own index: an unreadable index.json is not this load's concern
  }
}

export interface ReadyImage {
  readonly plan: PlannedImage;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  readonly id: Digest;
}

/** Each planned image's config, read and checked. */
export async function readConfigs(archive: ArchiveFiles, images: readonly PlannedImage[]): Promise<ReadyImage[]> {
  const out: ReadyImage[] = [];
  for (const p of images) {
    const configBytes = await archive.readDocument(p.config);
    let config: ImageConfig;
    try {
      config = parseConfig(configBytes);
    } catch (err) {
      throw new InvalidInputError(`${p.config.what}: not an image config: ${(err as Error).message}`);
    }
    if (config.os !== 'linux')
      throw new InvalidInputError(`${p.config.what}: the image is for ${config.os}; only linux images can be loaded`);
    if (config.rootfs.diff_ids.length !== p.layers.length) {
      throw new InvalidInputError(
        `${p.config.what}: the config names ${config.rootfs.diff_ids.length} layers, the archive's index ${p.layers.length}`,
      );
    }
    out.push({ plan: p, configBytes, config, id: sha256(configBytes) });
  }
  return out;
}

/** Which paths the load will open, and how often: each layer the store lacks, once per distinct chain. */
async function neededLayers(store: Store, images: readonly ReadyImage[]): Promise<Map<string, number>> {
  const chains = new Map<string, Set<Digest>>();
  for (const img of images) {
    const ids = chainIds(img.config.rootfs.diff_ids);
    for (const [i, chainId] of ids.entries()) {
      if (await store.hasLayer(chainId)) continue;
      const path = img.plan.layers[i]!.path;
      if (!chains.has(path)) chains.set(path, new Set());
      chains.get(path)!.add(chainId);
    }
  }
  return new Map([...chains].map(([p, s]) => [p, s.size]));
}

/**
 * An image of the archive in the image model's shape. Its layers are streamed: each blob is
 * opened once, in the order the store asks for them (bottom first), which is the order the
 * reader was told to expect. A blob whose digest the index does not give (Docker archives before
 * 25 name layers by path) is one of Docker's uncompressed layer tars, whose digest is its diffID.
 */
export function archiveImage(archive: ArchiveReader, img: ReadyImage, progress: TransferProgress): Image {
  const ids = img.config.rootfs.diff_ids.map(shortId);
  const layers = img.plan.layers.map((ref: BlobRef, i): Layer => {
    let opened: Promise<{ size: number; body: AsyncIterable<Buffer> }> | undefined;
    const open = () =>
      (opened ??= archive
        .open(ref, (n) => progress.advance(ids[i]!, n))
        .then((blob) => {
          progress.start(ids[i]!, 'Loading layer', blob.size);
          return blob;
        }));
    const diffId = img.config.rootfs.diff_ids[i]!;
    const compressed = async () => Readable.from((await open()).body);
    return {
      diffId,
      mediaType: ref.mediaType ?? MediaType.dockerLayer,
      digest: async () => ref.digest ?? diffId,
      size: async () => ref.size ?? (await open()).size,
      compressed,
      uncompressed: async () => Readable.from(decompress(await compressed())),
    };
  });
  return { id: img.id, configBytes: img.configBytes, config: img.config, layers };
}

export async function loadArchive(store: Store, input: AsyncIterable<Uint8Array>, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  const progress = opts.progress ?? NO_PROGRESS;
  const spool = await store.tempDir('load');
  const archive = new ArchiveReader(input, spool, opts.signal);
  const createdImages: Digest[] = [];
  const createdIndexes: Digest[] = [];
  const addedChains: Digest[] = [];
  try {
    const images = await readConfigs(archive, await plan(archive));
    archive.want(await neededLayers(store, images));
    const added: number[] = [];
    for (const img of images) {
      opts.signal?.throwIfAborted();
      const ids = img.config.rootfs.diff_ids.map(shortId);
      const written = await store.writeImage(archiveImage(archive, img, progress), {
        layerDone: (i, existed) => progress.done(ids[i]!, existed ? 'Already exists' : 'Loaded'),
      });
      if (written.created && !createdImages.includes(written.id)) createdImages.push(written.id);
      addedChains.push(...written.addedChains);
      added.push(written.addedChains.length);
    }
    await archive.drain();
    opts.signal?.throwIfAborted();

    const result: LoadedImage[] = [];
    // Each multi-platform image: an index over its platforms' images, which its names then name.
    const groups = new Map<Digest, { entries: { platform: Platform; imageId: Digest }[]; tags: readonly Reference[]; added: number }>();
    for (const [k, img] of images.entries()) {
      const m = img.plan.member;
      if (!m) continue;
      const g = groups.get(m.index) ?? { entries: [], tags: m.tags, added: 0 };
      g.entries.push({ platform: m.platform, imageId: img.id });
      g.added += added[k]!;
      groups.set(m.index, g);
    }
    for (const g of groups.values()) {
      const id = await store.putIndex(g.entries);
      createdIndexes.push(id);
      const tags: { ref: Reference; replaced?: Digest }[] = [];
      for (const ref of opts.tag === false ? [] : g.tags) {
        const replaced = await store.tag(ref, id);
        tags.push({ ref, ...(replaced ? { replaced } : {}) });
      }
      const loaded: LoadedImage = { id, tags, addedLayers: g.added, platforms: g.entries };
      result.push(loaded);
      opts.loaded?.(loaded);
    }
    for (const [k, img] of images.entries()) {
      if (img.plan.member) continue;
      const tags: { ref: Reference; replaced?: Digest }[] = [];
      for (const ref of opts.tag === false ? [] : img.plan.tags) {
        const replaced = await store.tag(ref, img.id);
        tags.push({ ref, ...(replaced ? { replaced } : {}) });
      }
      const loaded: LoadedImage = { id: img.id, tags, addedLayers: added[k]! };
      result.push(loaded);
      opts.loaded?.(loaded);
    }
    return result;
  } catch (err) {
    try {
      // The images it stored (untagged still, since tags come last) and the layers it unpacked
      // that no image stands on. What was there before stays.
      await store.rollBack({ indexes: createdIndexes, images: createdImages, chains: addedChains });
    } catch (cleanupErr) {
      throw new TsbuildError(`${(err as Error).message} (and undoing the partial load failed: ${(cleanupErr as Error).message})`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    await archive.close().catch(() => undefined); // the load's own outcome is what matters here
    await rm(spool, { recursive: true, force: true });
  }
}
