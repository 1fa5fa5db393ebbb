// What the store remembers about a layer's compressed blobs, in Docker's place and format:
//   image/<driver>/distribution/v2metadata-by-diffid/sha256/<diffID hex>
//     [{"Digest": "sha256:<blob>", "SourceRepository": "127.0.0.1:5000/app", "HMAC": "",
//       "Compression": "gzip", "Size": 1234}, ...]
// Docker writes Digest, SourceRepository and HMAC; Compression and Size are tsbuild's additions
// (Docker's reader ignores unknown fields). One entry per (blob, repository) a layer was pulled
// from or pushed to. Push uses it twice: as the compressed-blob cache (the digest a diffID
// compresses to, so a layer the registry has is found by HEAD without compressing it again), and
// as the list of repositories on the same registry to mount the blob from.
// Concurrent writers may drop each other's entry (last rename wins); that only costs a cache
// miss, so no lock is taken.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hex, isDigest, type Digest } from '../digest.js';
import { writeFileAtomic } from '../fs/atomic.js';

export type BlobCompression = 'gzip' | 'zstd' | 'none';

export interface BlobRecord {
  /** sha256 of the compressed bytes: the blob's name in a registry. */
  readonly digest: Digest;
  /** `registry/path` the blob is known to be in. */
  readonly sourceRepository: string;
  readonly compression: BlobCompression;
  readonly size: number;
}

type Entry = { Digest: string; SourceRepository: string; HMAC: string; Compression?: string; Size?: number };

/** Entries kept per layer: the most recent ones; older sources are the least likely to be useful. */
const MAX_ENTRIES = 50;

export class DistributionMetadata {
  /** `dir`: image/<driver>/distribution/v2metadata-by-diffid/sha256, one file per diffID. */
  constructor(readonly dir: string) {}

  private file(diffId: Digest): string {
    return join(this.dir, hex(diffId));
  }

  private async read(diffId: Digest): Promise<Entry[]> {
    let text: string;
    try {
      text = await readFile(this.file(diffId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const j = JSON.parse(text) as unknown;
      return Array.isArray(j) ? (j as Entry[]) : [];
    } catch {
      return []; // a torn cache file is a cache miss; the next write replaces it
    }
  }

  /** The blobs known for a layer, newest first. Entries from Docker without a compression are skipped. */
  async blobsOf(diffId: Digest): Promise<BlobRecord[]> {
    const out: BlobRecord[] = [];
    for (const e of await this.read(diffId)) {
      if (!isDigest(e.Digest) || typeof e.SourceRepository !== 'string') continue;
      if (e.Compression !== 'gzip' && e.Compression !== 'zstd' && e.Compression !== 'none') continue;
      out.push({ digest: e.Digest, sourceRepository: e.SourceRepository, compression: e.Compression, size: Number(e.Size ?? -1) });
    }
    return out;
  }

  async add(diffId: Digest, rec: BlobRecord): Promise<void> {
    const entries = (await this.read(diffId)).filter((e) => !(e.Digest === rec.digest && e.SourceRepository === rec.sourceRepository));
    entries.unshift({ Digest: rec.digest, SourceRepository: rec.sourceRepository, HMAC: '', Compression: rec.compression, Size: rec.size });
    // Not fsynced: where a blob is known to be only saves an upload or a download, and a record
    // a power cut cut short reads as none (read above).
    await writeFileAtomic(this.file(diffId), JSON.stringify(entries.slice(0, MAX_ENTRIES)), { durable: false });
  }
}
