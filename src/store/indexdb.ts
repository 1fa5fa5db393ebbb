// image/<driver>/indexdb: the store's multi-platform images. content/sha256/<indexID> holds an
// index record, and the index ID *is* the sha256 of its bytes, as imagedb's image IDs are of
// their configs': the file name proves the content, and the same platforms' images give the same
// ID (a reproducible multi-platform build stores the same index twice as one).
//
// A record is canonical JSON, one entry per platform, sorted by platform:
//   {"schemaVersion":2,"mediaType":"application/vnd.tsbuild.image.index.v1+json",
//    "manifests":[{"image":"sha256:<imageID>","platform":{"architecture":"amd64","os":"linux"}}, ...]}
// It names image IDs (configs in imagedb), not registry manifests: like Docker's own image store,
// the store keeps no manifest, and save and push make the OCI index or manifest list from the
// images when they write one. A tag in repositories.json names either an image ID or an index
// ID; an ID is an index's when this database has it.
import { readFile, readdir, rm } from 'node:fs/promises';
import { exists } from '../fs/exists.js';
import { join } from 'node:path';
import { hex, isDigest, parseDigest, sha256, type Digest } from '../digest.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { formatPlatform, parsePlatform, type Platform } from '../image/platform.js';

export const INDEX_RECORD_MEDIA_TYPE = 'application/vnd.tsbuild.image.index.v1+json';

/** One platform's image in a stored index. */
export interface IndexEntry {
  readonly platform: Platform;
  readonly imageId: Digest;
}

export interface StoredIndexRecord {
  readonly id: Digest;
  /** Sorted by platform; no platform twice. */
  readonly entries: readonly IndexEntry[];
}

/** The canonical bytes of an index record: entries sorted by platform, keys in a fixed order. */
export function serializeIndexRecord(entries: readonly IndexEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compare(formatPlatform(a.platform), formatPlatform(b.platform)));
  for (let i = 1; i < sorted.length; i++) {
    if (formatPlatform(sorted[i]!.platform) === formatPlatform(sorted[i - 1]!.platform)) {
      throw new InvalidInputError(`an image index cannot hold two images for ${formatPlatform(sorted[i]!.platform)}`);
    }
  }
  const manifests = sorted.map((e) => ({
    image: e.imageId,
    platform: {
      architecture: e.platform.architecture,
      os: e.platform.os,
      ...(e.platform.variant ? { variant: e.platform.variant } : {}),
    },
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_RECORD_MEDIA_TYPE, manifests }));
}

export function parseIndexRecord(id: Digest, bytes: Buffer): StoredIndexRecord {
  const raw = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: { image?: string; platform?: Platform }[] };
  if (raw.mediaType !== INDEX_RECORD_MEDIA_TYPE || !Array.isArray(raw.manifests)) {
    throw new InvalidInputError(`index ${id}: not an index record`);
  }
  const entries = raw.manifests.map((m) => {
    if (typeof m.image !== 'string' || !isDigest(m.image) || !m.platform) throw new InvalidInputError(`index ${id}: a bad entry`);
    return { imageId: m.image, platform: parsePlatform(formatPlatform(m.platform)) };
  });
  return { id, entries };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class IndexDb {
  constructor(readonly dir: string) {}

  get contentDir(): string {
    return join(this.dir, 'content', 'sha256');
  }

  private contentPath(id: Digest): string {
    return join(this.contentDir, hex(id));
  }

  /** Stores a record (written whole, then renamed into place); the same entries twice are one record. */
  async put(entries: readonly IndexEntry[]): Promise<Digest> {
    const bytes = serializeIndexRecord(entries);
    const id = sha256(bytes);
    if (!(await this.has(id))) await writeFileAtomic(this.contentPath(id), bytes);
    return id;
  }

  async has(id: Digest): Promise<boolean> {
    return exists(this.contentPath(id));
  }

  async getBytes(id: Digest): Promise<Buffer> {
    try {
      return await readFile(this.contentPath(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No such image index: ${id}`);
      throw err;
    }
  }

  async get(id: Digest): Promise<StoredIndexRecord> {
    return parseIndexRecord(id, await this.getBytes(id));
  }

  async list(): Promise<Digest[]> {
    try {
      const names = await readdir(this.contentDir);
      return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => parseDigest(`sha256:${n}`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Every stored record; one another process removes meanwhile is left out. */
  async all(): Promise<StoredIndexRecord[]> {
    const out: StoredIndexRecord[] = [];
    for (const id of await this.list()) {
      const rec = await this.get(id).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (rec) out.push(rec);
    }
    return out;
  }

  async remove(id: Digest): Promise<void> {
    await rm(this.contentPath(id), { force: true });
  }
}
