// A cache in a directory (`type=local`), in the OCI image layout BuildKit's local cache uses
// too: `oci-layout`, `index.json` naming the cache's manifest, `blobs/sha256/<hex>`. It is what a
// CI cache action saves and restores; a blob is written to a temp name and renamed once its
// digest is checked, and index.json last, so a directory saved mid-export holds the previous
// cache or the new one.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, hex, isDigest, sha256, verifyDigest, type Digest } from '../digest.js';
import { sweepTemps, tempNameBeside, writeFileAtomic } from '../fs/atomic.js';
import { MAX_MANIFEST_BYTES, MediaType, parseManifest } from '../image/manifest.js';
import type { FetchedManifest } from '../registry/client.js';
import type { CacheLocation } from './location.js';

export class LayoutLocation implements CacheLocation {
  readonly domain = undefined;

  constructor(readonly dir: string) {}

  get where(): string {
    return this.dir;
  }

  get name(): string {
    return `oci-layout://${this.dir}`;
  }

  private blob(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', hex(digest));
  }

  async manifest(digest?: Digest): Promise<FetchedManifest | undefined> {
    if (digest) return this.manifestBlob(digest, undefined);
    let index: { manifests?: { digest?: unknown; mediaType?: unknown }[] };
    try {
      index = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as typeof index;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`${this.dir}/index.json is not an OCI index: ${(err as Error).message}`, { cause: err });
    }
    const d = index.manifests?.[0];
    if (!d || typeof d.digest !== 'string' || !isDigest(d.digest)) throw new Error(`${this.dir}/index.json names no manifest`);
    return this.manifestBlob(d.digest, typeof d.mediaType === 'string' ? d.mediaType : undefined);
  }

  private async manifestBlob(digest: Digest, mediaType: string | undefined): Promise<FetchedManifest> {
    const bytes = await this.readBlob(digest, MAX_MANIFEST_BYTES);
    const manifest = parseManifest(bytes, mediaType);
    return { digest, mediaType: manifest.mediaType, bytes, manifest };
  }

  async putManifest(mediaType: string, bytes: Buffer): Promise<void> {
    const digest = sha256(bytes);
    await this.uploadBlob(digest, bytes.length, () => Readable.from([bytes]));
    await writeFileAtomic(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ mediaType, digest, size: bytes.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    };
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(index));
  }

  async statBlob(digest: Digest): Promise<{ size: number } | undefined> {
    try {
      return { size: (await stat(this.blob(digest))).size };
    } catch {
      return undefined;
    }
  }

  async mountBlob(): Promise<boolean> {
    return false;
  }

  addPullScope(): void {}

  async uploadBlob(digest: Digest, _size: number, open: () => Readable): Promise<void> {
    const final = this.blob(digest);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const tmp = tempNameBeside(final);
    try {
      await copyVerified(open(), tmp, digest, `blob ${digest} for ${this.dir}`);
      await rename(tmp, final);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async readBlob(digest: Digest, limit: number): Promise<Buffer> {
    const path = this.blob(digest);
    if ((await stat(path)).size > limit) throw new Error(`blob ${digest} in ${this.dir} is larger than ${limit} bytes`);
    const bytes = await readFile(path);
    if (sha256(bytes) !== digest) throw new DigestMismatchError(`blob ${digest} in ${this.dir}: its content has another digest`);
    return bytes;
  }

  async downloadBlob(digest: Digest, _size: number, file: string): Promise<void> {
    await copyVerified(createReadStream(this.blob(digest)), file, digest, `blob ${digest} in ${this.dir}`);
  }

  /**
   * Removes the blobs the cache's manifest no longer names, so that a directory a CI cache saves
   * and restores does not grow with every export (BuildKit's local cache does).
   */
  async removeUnreferenced(keep: ReadonlySet<Digest>): Promise<void> {
    const dir = join(this.dir, 'blobs', 'sha256');
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name) || keep.has(`sha256:${name}` as Digest)) continue;
      await rm(join(dir, name), { force: true });
    }
  }

  /**
   * Removes what exports killed midway left: `.tmp-` files of processes that are gone (a live
   * one's is about to be renamed into place). The directory is outside any store, so no store's
   * repair would.
   */
  async sweep(): Promise<void> {
    const dead = (name: string): boolean => {
      const pid = Number(/-(\d+)-[0-9a-f]{12}$/.exec(name)?.[1]);
      if (!Number.isSafeInteger(pid) || pid <= 0) return false;
      try {
        process.kill(pid, 0);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
    };
    await sweepTemps(this.dir, dead);
    await sweepTemps(join(this.dir, 'blobs', 'sha256'), dead);
  }

  close(): void {}
}

/** Copies `from` into `file`, failing (and leaving the file to the caller) unless it hashes to `digest`. */
async function copyVerified(from: Readable, file: string, digest: Digest, what: string): Promise<void> {
  await pipeline(from, verifyDigest(digest, what), createWriteStream(file, { mode: 0o644 }));
}
