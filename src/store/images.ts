// Stored images as the image model's read-only views (src/image/image.ts): what save, push,
// build --output and the commands that show images (images, history, inspect, analyze) read.
// A stored layer is kept unpacked, so its blob is the uncompressed tar, rebuilt from its
// tar-split and its snapshot's files and checked against its diffID while it streams: a
// mismatch is an error at the end of the stream, never a silently different layer.
import type { Readable } from 'node:stream';
import { chainIds, isDigest, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { parseConfig } from '../image/config.js';
import type { Image, Layer } from '../image/image.js';
import { MediaType } from '../image/mediatypes.js';
import { parseProvenance, PROVENANCE_FILE, serializeProvenance, type Provenance } from '../image/provenance.js';
import type { Platform } from '../image/platform.js';
import { readTarSplit, type TarSplitEntry } from '../layer/tarsplit.js';
import { imageForPlatform, indexMembership, resolveTarget } from './indexes.js';
import type { LayerRecord } from './layerdb.js';
import type { StoreParts } from './parts.js';
import type { TaggedRef } from './repositories.js';

/** A stored image, with what the store knows beside the image itself. */
export interface StoredImage extends Image {
  readonly layers: readonly StoredLayer[];
  readonly tags: readonly TaggedRef[];
  /** Sum of the layers' unpacked sizes: what `docker images` shows. */
  readonly size: number;
}

export interface StoredLayer extends Layer {
  /** The store's record: chainID, parent, cache-id, and `size`, the unpacked bytes `docker history` shows. */
  readonly record: LayerRecord;
  /** The layer tar's entries as its tar-split records them (headers and file sizes, no content). */
  entries(): AsyncIterable<TarSplitEntry>;
}

/**
 * Resolves what a user typed to an image: a name[:tag] or name@digest, a full image ID
 * (`sha256:...`), or a unique prefix of an ID as `docker` accepts. A name (or ID) of a
 * multi-platform image gives its image for `platform`, this machine's by default.
 */
export async function resolveImage(parts: StoreParts, s: string, platform?: Platform): Promise<Digest> {
  if (isDigest(s) && (await parts.images.has(s))) return s;
  const target = await resolveTarget(parts, s);
  return target.kind === 'image' ? target.id : imageForPlatform(target.index, s, platform);
}

/**
 * A stored image as a view. Its tags are those naming it and those naming an index that holds
 * it (`indexes`: image ID → index IDs, read once by a caller that loads many images).
 */
export async function loadImage(
  parts: StoreParts,
  id: Digest,
  allTags?: readonly TaggedRef[],
  indexes?: ReadonlyMap<Digest, readonly Digest[]>,
): Promise<StoredImage> {
  const configBytes = await parts.images.getBytes(id);
  const config = parseConfig(configBytes);
  const records = await Promise.all(chainIds(config.rootfs.diff_ids).map((c) => parts.layers.mustGet(c)));
  const holders = new Set([id, ...((indexes ?? (await indexMembership(parts)).byImage).get(id) ?? [])]);
  const tags = (allTags ?? (await parts.tags.all())).filter((t) => holders.has(t.imageId));
  return {
    id,
    configBytes,
    config,
    layers: records.map((r) => storedLayer(parts, r)),
    tags,
    size: records.reduce((n, l) => n + l.size, 0),
  };
}

/**
 * Every stored image, newest first. Readers take no lock, so an image another process deletes
 * while this one reads (rmi, prune) is left out rather than reported as missing.
 */
export async function listImages(parts: StoreParts): Promise<StoredImage[]> {
  const tags = await parts.tags.all();
  const { byImage } = await indexMembership(parts);
  const ids = await parts.images.list();
  const views = await Promise.all(
    ids.map((id) =>
      loadImage(parts, id, tags, byImage).catch(async (err: unknown) => {
        if (err instanceof NotFoundError && !(await parts.images.has(id))) return undefined;
        throw err;
      }),
    ),
  );
  // RFC 3339 times in UTC compare as strings; localeCompare would load ICU's collator (~5 ms).
  const created = (v: StoredImage): string => v.config.created ?? '';
  return views.filter((v) => v !== undefined).sort((a, b) => (created(a) < created(b) ? 1 : created(a) > created(b) ? -1 : 0));
}

export function storedLayer(parts: StoreParts, record: LayerRecord): StoredLayer {
  const tarSplit = parts.layers.tarSplitPath(record.chainId);
  let tarSize: Promise<number> | undefined;
  const open = async (): Promise<Readable> => {
    // Loaded here: a build reads no layer tar back.
    const { regenerateVerified } = await import('../layer/regenerate.js');
    return regenerateVerified(tarSplit, parts.snapshotter.fileRoot(record.cacheId), record.diffId, `layer ${record.diffId}`);
  };
  return {
    record,
    diffId: record.diffId,
    mediaType: MediaType.ociLayer,
    digest: async () => record.diffId,
    // Every raw segment plus every file's content: an archive entry's size goes in its header,
    // before the content, so it is known without rebuilding the tar.
    size: () =>
      (tarSize ??= (async () => {
        let n = 0;
        for await (const e of readTarSplit(tarSplit)) n += e.type === 'segment' ? e.payload.length : e.size;
        return n;
      })()),
    compressed: open,
    uncompressed: open,
    tarPieces: async () => {
      const { regeneratePieces } = await import('../layer/regenerate.js');
      return regeneratePieces(tarSplit, parts.snapshotter.fileRoot(record.cacheId), record.diffId, `layer ${record.diffId}`);
    },
    entries: () => readTarSplit(tarSplit),
  };
}

export interface PutImageOptions {
  /** The image a build started from (Docker's metadata `parent`). */
  readonly parent?: Digest;
  /** Which Dockerfile line made each history entry, for analyze. */
  readonly provenance?: Provenance;
}

/**
 * Stores an image config (and leases it until this process exits, so that prune does not take
 * it for a dangling image before it is tagged). Every layer it names must still be there.
 */
export async function putImage(parts: StoreParts, configBytes: Buffer, opts: PutImageOptions = {}): Promise<Digest> {
  const config = parseConfig(configBytes);
  const notes = opts.provenance ? { [PROVENANCE_FILE]: serializeProvenance(opts.provenance) } : undefined;
  return parts.exclusive(async () => {
    for (const c of chainIds(config.rootfs.diff_ids)) await parts.mustStillHave(c);
    const id = await parts.images.put(configBytes, opts.parent, notes);
    await parts.lease.add({ images: [id] });
    return id;
  });
}

/** The provenance a build stored with the image, if any. */
export async function provenanceOf(parts: StoreParts, id: Digest): Promise<Provenance | undefined> {
  return parseProvenance(await parts.images.getMetadata(id, PROVENANCE_FILE));
}
