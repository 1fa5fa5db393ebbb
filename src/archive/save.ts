// `save`: stored images → one image archive, streamed.
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
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256, shortId, type Digest } from '../digest.js';
import type { ImageConfig } from '../image/config.js';
import { loadImage } from '../image/image.js';
import { openLayerTar } from '../image/layers.js';
import { AtomicFile } from '../layer/atomicfile.js';
import { readTarSplit } from '../layer/index.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import { familiarName, familiarString, type Reference } from '../image/reference.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { Store } from '../store/store.js';
import {
  Annotation,
  blobPath,
  DOCKER_MANIFEST_FILE,
  DOCKER_REPOSITORIES_FILE,
  goJson,
  MediaType,
  OCI_INDEX_FILE,
  OCI_LAYOUT_FILE,
  OCI_LAYOUT_VERSION,
  type Descriptor,
  type DockerManifestItem,
  type OciIndex,
  type OciManifest,
  type Platform,
} from './formats.js';
import type { SaveTarget } from './select.js';
import { tarChunks, type ArchiveEntry } from './tar.js';

export type ArchiveFormat = 'docker' | 'oci';

export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['docker', 'oci'];

export interface SaveOptions {
  readonly format: ArchiveFormat;
  readonly progress?: TransferProgress;
}

interface SavedLayer {
  readonly record: LayerRecord;
  /** Bytes of the layer tar (not the unpacked size LayerRecord.size holds). */
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

/** Everything about an archive but the layer bytes, worked out before the first byte is written. */
export interface SavePlan {
  readonly format: ArchiveFormat;
  readonly images: readonly SavedImage[];
}

/**
 * The size of a stored layer's tar, from its tar-split: every raw segment plus every file's
 * content. An archive entry's size goes in its header, before the content.
 */
async function layerTarSize(store: Store, layer: LayerRecord): Promise<number> {
  let n = 0;
  for await (const e of readTarSplit(store.layers.tarSplitPath(layer.chainId))) {
    n += e.type === 'segment' ? e.payload.length : e.size;
  }
  return n;
}

function platformOf(c: ImageConfig): Platform {
  return { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
}

function createdSeconds(c: ImageConfig): number {
  const t = c.created === undefined ? NaN : Date.parse(c.created);
  return Number.isFinite(t) && t > 0 ? Math.floor(t / 1000) : 0;
}

export async function planSave(store: Store, targets: readonly SaveTarget[], format: ArchiveFormat): Promise<SavePlan> {
  const sizes = new Map<Digest, number>(); // chainID → tar size, each layer read once
  const images: SavedImage[] = [];
  for (const t of targets) {
    const view = await loadImage(store, t.id);
    const configBytes = await store.images.getBytes(t.id);
    const layers: SavedLayer[] = [];
    for (const record of view.layers) {
      let tarSize = sizes.get(record.chainId);
      if (tarSize === undefined) {
        tarSize = await layerTarSize(store, record);
        sizes.set(record.chainId, tarSize);
      }
      layers.push({ record, tarSize });
    }
    const manifest: OciManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: t.id, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: MediaType.OciLayer, digest: l.record.diffId, size: l.tarSize })),
    };
    const manifestBytes = Buffer.from(goJson(manifest));
    images.push({
      id: t.id,
      refs: t.refs,
      configBytes,
      config: view.config,
      layers,
      manifestBytes,
      manifestDigest: sha256(manifestBytes),
      mtime: createdSeconds(view.config),
    });
  }
  return { format, images };
}

/** The full name containerd and podman read, e.g. `docker.io/library/busybox:latest`. */
function fullName(r: Reference): string {
  return `${r.domain}/${r.path}:${r.tag}`;
}

function indexJson(images: readonly SavedImage[]): Buffer {
  const manifests: Descriptor[] = [];
  for (const img of images) {
    const base = { mediaType: MediaType.OciManifest, digest: img.manifestDigest, size: img.manifestBytes.length };
    const platform = platformOf(img.config);
    if (img.refs.length === 0) manifests.push({ ...base, platform });
    for (const r of img.refs) {
      manifests.push({ ...base, annotations: { [Annotation.ImageName]: fullName(r), [Annotation.RefName]: r.tag! }, platform });
    }
  }
  const index: OciIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  return Buffer.from(goJson(index));
}

function dockerManifestJson(images: readonly SavedImage[]): Buffer {
  const items: DockerManifestItem[] = images.map((img) => ({
    Config: blobPath(img.id),
    RepoTags: img.refs.length > 0 ? img.refs.map(familiarString) : null,
    Layers: img.layers.map((l) => blobPath(l.record.diffId)),
  }));
  // json.Encoder, as Docker writes it: a newline after the document.
  return Buffer.from(`${goJson(items)}\n`);
}

/** Docker's legacy `repositories`: {"name": {"tag": "<hex of the top layer>"}}. No reader needs it; Docker writes it. */
function repositoriesJson(images: readonly SavedImage[]): Buffer | undefined {
  const repos: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const top = img.layers.at(-1);
    if (!top) continue;
    for (const r of img.refs) (repos[familiarName(r)] ??= {})[r.tag!] = top.record.diffId.slice('sha256:'.length);
  }
  return Object.keys(repos).length > 0 ? Buffer.from(`${goJson(repos)}\n`) : undefined;
}

function* metadataEntries(plan: SavePlan): Generator<ArchiveEntry> {
  const mtime = Math.max(0, ...plan.images.map((i) => i.mtime));
  if (plan.format === 'docker') {
    yield { kind: 'file', name: DOCKER_MANIFEST_FILE, mtime, data: dockerManifestJson(plan.images) };
    const repos = repositoriesJson(plan.images);
    if (repos) yield { kind: 'file', name: DOCKER_REPOSITORIES_FILE, mtime, data: repos };
  }
  yield { kind: 'file', name: OCI_LAYOUT_FILE, mtime, data: Buffer.from(goJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })) };
  yield { kind: 'file', name: OCI_INDEX_FILE, mtime, data: indexJson(plan.images) };
  yield { kind: 'dir', name: 'blobs', mtime };
  yield { kind: 'dir', name: 'blobs/sha256', mtime };
}

async function* archiveEntries(store: Store, plan: SavePlan, progress: TransferProgress): AsyncGenerator<ArchiveEntry> {
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
  for (const img of plan.images) {
    for (const { record, tarSize } of img.layers) {
      if (!once(record.diffId)) continue;
      const id = shortId(record.diffId);
      yield {
        kind: 'stream',
        name: blobPath(record.diffId),
        mtime: img.mtime,
        size: tarSize,
        async *open() {
          progress.start(id, 'Saving layer', tarSize);
          for await (const chunk of openLayerTar(store, record) as AsyncIterable<Buffer>) {
            progress.advance(id, chunk.length);
            yield chunk;
          }
          progress.done(id, 'Saved');
        },
      };
    }
  }
}

/** The archive's bytes. Errors (a layer that no longer matches its diffID, a missing file) fail the stream. */
export function archiveStream(store: Store, plan: SavePlan, opts: { progress?: TransferProgress } = {}): Readable {
  return Readable.from(tarChunks(archiveEntries(store, plan, opts.progress ?? NO_PROGRESS)), { objectMode: false });
}

/**
 * Writes the archive to `path` under a temporary name in the same directory and renames it
 * into place when it is complete: a failed or interrupted save leaves no file, and an existing
 * file is replaced only by a whole archive.
 */
export async function saveToFile(store: Store, plan: SavePlan, path: string, opts: { progress?: TransferProgress; signal?: AbortSignal } = {}): Promise<void> {
  const file = AtomicFile.create(path);
  try {
    await pipeline(archiveStream(store, plan, opts), file.stream, opts.signal ? { signal: opts.signal } : {});
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** Writes the archive to a stream the caller owns (stdout): it is not ended. */
export async function saveToStream(store: Store, plan: SavePlan, out: NodeJS.WritableStream, opts: { progress?: TransferProgress; signal?: AbortSignal } = {}): Promise<void> {
  await pipeline(archiveStream(store, plan, opts), out, { end: false, ...(opts.signal ? { signal: opts.signal } : {}) });
}
