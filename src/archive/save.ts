// `save` and `build --output`: images (the image model's views: the store's, in practice) → one
// image archive, streamed.
//
// Both formats share one body, an OCI image layout: `oci-layout`, `index.json` and
// `blobs/sha256/` holding for each image an OCI manifest, its config (the exact stored bytes, so
// the image ID survives) and its layers as uncompressed tars (media type
// application/vnd.oci.image.layer.v1.tar: their blob digest *is* the diffID). The Docker format
// adds Docker's index files, `manifest.json` and `repositories`, pointing into the same blobs:
// the layout Docker 25 and later write, which Docker 20.10's `docker load` and podman's
// docker-archive reader also accept (they only follow manifest.json's paths), and which skopeo
// and umoci can read as an OCI archive too.
//
// Entry order is chosen for readers that stream: the index files and every manifest and config
// come before the first layer, and layers follow bottom first, each blob once. `tsbuild load`
// can then unpack layers straight from the input without spooling them (see src/archive/load.ts).
//
// Nothing is held in memory but JSON: each layer tar is regenerated from its tar-split while it
// is written, and checked against its diffID on the way (a mismatch fails the save).
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeGivingBack } from '../chunks.js';
import { sha256, shortId, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { Image, Layer } from '../image/image.js';
import { AtomicFile } from '../fs/atomic.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import { familiarName, familiarString, type Reference } from '../image/reference.js';
import { Annotation, MediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../image/manifest.js';
import { hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import {
  blobPath,
  DOCKER_MANIFEST_FILE,
  DOCKER_REPOSITORIES_FILE,
  goJson,
  OCI_INDEX_FILE,
  OCI_LAYOUT_FILE,
  OCI_LAYOUT_VERSION,
  type DockerManifestItem,
} from './formats.js';
import { tarChunks, type ArchiveEntry } from './tar.js';

export type ArchiveFormat = 'docker' | 'oci';

export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['docker', 'oci'];

export interface SaveOptions {
  readonly format: ArchiveFormat;
  readonly progress?: TransferProgress;
}

interface SavedLayer {
  readonly layer: Layer;
  /** Bytes of the layer tar (not the unpacked size `du` and `history` show). */
  readonly tarSize: number;
}

interface SavedImage {
  readonly id: Digest;
  readonly refs: readonly Reference[];
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  readonly layers: readonly SavedLayer[];
  readonly manifestBytes: Buffer;
  readonly manifestDigest: Digest;
  /** Seconds since the epoch, for the mtime of this image's entries. */
  readonly mtime: number;
}

/** A multi-platform image: its OCI index (a blob the archive's index.json names) over its platforms' images. */
interface SavedIndex {
  readonly refs: readonly Reference[];
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly mtime: number;
  /** Its platforms' images (in `images` too), and the one Docker's manifest.json gives the names to. */
  readonly members: readonly SavedImage[];
  readonly named: SavedImage;
}

/** Everything about an archive but the layer bytes, worked out before the first byte is written. */
export interface SavePlan {
  readonly format: ArchiveFormat;
  /** Every image, a multi-platform image's platforms' included. */
  readonly images: readonly SavedImage[];
  readonly indexes: readonly SavedIndex[];
}

/**
 * A layer as the archive holds it: its uncompressed tar, whose digest is its diffID. The size
 * goes in the entry's header, before the content: a source that holds the layer uncompressed
 * knows it without writing the tar (the store: from its tar-split).
 */
async function savedLayer(layer: Layer): Promise<SavedLayer> {
  if ((await layer.digest()) !== layer.diffId) {
    throw new TsbuildError(`layer ${layer.diffId}: save writes layers uncompressed, and this source holds it compressed`);
  }
  return { layer, tarSize: await layer.size() };
}

function platformOf(c: ImageConfig): Platform {
  return { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
}

function createdSeconds(c: ImageConfig): number {
  const t = c.created === undefined ? NaN : Date.parse(c.created);
  return Number.isFinite(t) && t > 0 ? Math.floor(t / 1000) : 0;
}

/**
 * An image to save, or a multi-platform image's platforms' images, and the tagged references
 * the archive records for it.
 */
export type SaveTarget =
  | { readonly image: Image; readonly refs: readonly Reference[] }
  | { readonly platforms: readonly { readonly platform: Platform; readonly image: Image }[]; readonly refs: readonly Reference[] };

export async function planSave(targets: readonly SaveTarget[], format: ArchiveFormat): Promise<SavePlan> {
  const sizes = new Map<Digest, Promise<SavedLayer>>(); // by diffID: each layer's size found once
  const images: SavedImage[] = [];
  const indexes: SavedIndex[] = [];
  // Each image once, with the union of its names: a multi-platform image's images may be saved by name too.
  const plain = new Map<Digest, { image: Image; refs: Reference[] }>();
  for (const t of targets) {
    for (const { image, refs } of 'image' in t ? [t] : t.platforms.map((p) => ({ image: p.image, refs: [] }))) {
      const seen = plain.get(image.id) ?? { image, refs: [] };
      seen.refs.push(...refs.filter((r) => !seen.refs.some((q) => familiarString(q) === familiarString(r))));
      plain.set(image.id, seen);
    }
  }
  for (const { image, refs } of plain.values()) {
    const layers: SavedLayer[] = [];
    for (const layer of image.layers) {
      let saved = sizes.get(layer.diffId);
      if (saved === undefined) sizes.set(layer.diffId, (saved = savedLayer(layer)));
      layers.push(await saved);
    }
    const manifest: Omit<ImageManifest, 'kind'> = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: image.id, size: image.configBytes.length },
      layers: layers.map((l) => ({ mediaType: MediaType.ociLayer, digest: l.layer.diffId, size: l.tarSize })),
    };
    const manifestBytes = Buffer.from(goJson(manifest));
    images.push({
      id: image.id,
      refs,
      configBytes: image.configBytes,
      config: image.config,
      layers,
      manifestBytes,
      manifestDigest: sha256(manifestBytes),
      mtime: createdSeconds(image.config),
    });
  }
  for (const t of targets) {
    if ('image' in t) continue;
    const members = t.platforms.map((p) => images.find((i) => i.id === p.image.id)!);
    const manifests: Descriptor[] = members.map((m, k) => ({
      mediaType: MediaType.ociManifest,
      digest: m.manifestDigest,
      size: m.manifestBytes.length,
      platform: platformOf(t.platforms[k]!.image.config),
    }));
    const bytes = Buffer.from(goJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
    // Docker's manifest.json cannot give one name to several images: this machine's gets it, else the first.
    const host = members.find((m) => platformMatches(hostPlatform(), m.config)) ?? members[0]!;
    const mtime = Math.max(0, ...members.map((m) => m.mtime));
    indexes.push({ refs: t.refs, bytes, digest: sha256(bytes), mtime, members, named: host });
  }
  return { format, images, indexes };
}

/** The full name containerd and podman read, e.g. `docker.io/library/busybox:latest`. */
function fullName(r: Reference): string {
  return `${r.domain}/${r.path}:${r.tag}`;
}

function indexJson(images: readonly SavedImage[], indexes: readonly SavedIndex[]): Buffer {
  const manifests: Descriptor[] = [];
  const members = new Set(indexes.flatMap((ix) => ix.members));
  for (const img of images) {
    // A multi-platform image's image is named through its index, not on its own.
    if (members.has(img) && img.refs.length === 0) continue;
    const base = { mediaType: MediaType.ociManifest, digest: img.manifestDigest, size: img.manifestBytes.length };
    const platform = platformOf(img.config);
    if (img.refs.length === 0) manifests.push({ ...base, platform });
    for (const r of img.refs) {
      manifests.push({ ...base, annotations: { [Annotation.ImageName]: fullName(r), [Annotation.RefName]: r.tag! }, platform });
    }
  }
  for (const ix of indexes) {
    const base = { mediaType: MediaType.ociIndex, digest: ix.digest, size: ix.bytes.length };
    if (ix.refs.length === 0) manifests.push(base);
    for (const r of ix.refs)
      manifests.push({ ...base, annotations: { [Annotation.ImageName]: fullName(r), [Annotation.RefName]: r.tag! } });
  }
  const index: Omit<ImageIndex, 'kind'> = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  return Buffer.from(goJson(index));
}

/** The names manifest.json and `repositories` give each image: its own, and a multi-platform image's on the one it names. */
function dockerRefs(img: SavedImage, indexes: readonly SavedIndex[]): readonly Reference[] {
  return [...img.refs, ...indexes.filter((ix) => ix.named === img).flatMap((ix) => ix.refs)];
}

function dockerManifestJson(images: readonly SavedImage[], indexes: readonly SavedIndex[]): Buffer {
  const items: DockerManifestItem[] = images.map((img) => ({
    Config: blobPath(img.id),
    RepoTags: dockerRefs(img, indexes).length > 0 ? dockerRefs(img, indexes).map(familiarString) : null,
    Layers: img.layers.map((l) => blobPath(l.layer.diffId)),
  }));
  // json.Encoder, as Docker writes it: a newline after the document.
  return Buffer.from(`${goJson(items)}\n`);
}

/** Docker's legacy `repositories`: {"name": {"tag": "<hex of the top layer>"}}. No reader needs it; Docker writes it. */
function repositoriesJson(images: readonly SavedImage[], indexes: readonly SavedIndex[]): Buffer | undefined {
  const repos: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const top = img.layers.at(-1);
    if (!top) continue;
    for (const r of dockerRefs(img, indexes)) (repos[familiarName(r)] ??= {})[r.tag!] = top.layer.diffId.slice('sha256:'.length);
  }
  return Object.keys(repos).length > 0 ? Buffer.from(`${goJson(repos)}\n`) : undefined;
}

function* metadataEntries(plan: SavePlan): Generator<ArchiveEntry> {
  const mtime = Math.max(0, ...plan.images.map((i) => i.mtime));
  if (plan.format === 'docker') {
    yield { kind: 'file', name: DOCKER_MANIFEST_FILE, mtime, data: dockerManifestJson(plan.images, plan.indexes) };
    const repos = repositoriesJson(plan.images, plan.indexes);
    if (repos) yield { kind: 'file', name: DOCKER_REPOSITORIES_FILE, mtime, data: repos };
  }
  yield { kind: 'file', name: OCI_LAYOUT_FILE, mtime, data: Buffer.from(goJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })) };
  yield { kind: 'file', name: OCI_INDEX_FILE, mtime, data: indexJson(plan.images, plan.indexes) };
  yield { kind: 'dir', name: 'blobs', mtime };
  yield { kind: 'dir', name: 'blobs/sha256', mtime };
}

async function* archiveEntries(plan: SavePlan, progress: TransferProgress): AsyncGenerator<ArchiveEntry> {
  yield* metadataEntries(plan);
  const written = new Set<Digest>();
  /** True the first time a blob comes up: an archive holds each blob once, however many images share it. */
  const once = (d: Digest): boolean => {
    if (written.has(d)) return false;
    written.add(d);
    return true;
  };
  // Small blobs first, so that a streaming reader knows every image before the first layer.
  for (const img of plan.images) {
    if (once(img.manifestDigest)) yield { kind: 'file', name: blobPath(img.manifestDigest), mtime: img.mtime, data: img.manifestBytes };
    if (once(img.id)) yield { kind: 'file', name: blobPath(img.id), mtime: img.mtime, data: img.configBytes };
  }
  for (const ix of plan.indexes) if (once(ix.digest)) yield { kind: 'file', name: blobPath(ix.digest), mtime: ix.mtime, data: ix.bytes };
  for (const img of plan.images) {
    for (const { layer, tarSize } of img.layers) {
      if (!once(layer.diffId)) continue;
      const id = shortId(layer.diffId);
      yield {
        kind: 'stream',
        name: blobPath(layer.diffId),
        mtime: img.mtime,
        size: tarSize,
        async *open() {
          progress.start(id, 'Saving layer', tarSize);
          for await (const chunk of (await layer.uncompressed()) as AsyncIterable<Buffer>) {
            progress.advance(id, chunk.length);
            yield chunk;
          }
          progress.done(id, 'Saved');
        },
      };
    }
  }
}

/** The archive's bytes, chunk by chunk; layer chunks are lent ones (chunks.ts). */
function archiveChunks(plan: SavePlan, progress: TransferProgress | undefined): AsyncGenerator<Buffer, void, undefined> {
  return tarChunks(archiveEntries(plan, progress ?? NO_PROGRESS));
}

/** The archive's bytes. Errors (a layer that no longer matches its diffID, a missing file) fail the stream. */
export function archiveStream(plan: SavePlan, opts: { progress?: TransferProgress } = {}): Readable {
  return Readable.from(archiveChunks(plan, opts.progress), { objectMode: false });
}

/**
 * Writes the archive to `path` under a temporary name in the same directory and renames it
 * into place when it is complete: a failed or interrupted save leaves no file, and an existing
 * file is replaced only by a whole archive.
 */
export async function saveToFile(
  plan: SavePlan,
  path: string,
  opts: { progress?: TransferProgress; signal?: AbortSignal } = {},
): Promise<void> {
  const file = AtomicFile.create(path, { durable: false });
  try {
    if (opts.signal) addAbortSignal(opts.signal, file.stream);
    // The file is the last holder of each chunk: lent ones go back once written (chunks.ts).
    await writeGivingBack(archiveChunks(plan, opts.progress), file.stream);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** Writes the archive to a stream the caller owns (stdout): it is not ended. */
export async function saveToStream(
  plan: SavePlan,
  out: NodeJS.WritableStream,
  opts: { progress?: TransferProgress; signal?: AbortSignal } = {},
): Promise<void> {
  await pipeline(archiveStream(plan, opts), out, { end: false, ...(opts.signal ? { signal: opts.signal } : {}) });
}
