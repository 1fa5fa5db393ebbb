// image/<driver>/imagedb: content/sha256/<imageID> holds an image's config bytes, and the
// image ID *is* their sha256, so the file name proves the content. metadata/sha256/<imageID>/
// holds what is not part of the image itself (parent image, lastUpdated).
import { readFile, readdir, rm, rename, mkdir } from 'node:fs/promises';
import { exists } from '../fs/exists.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hex, parseDigest, sha256, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { parseConfig, type ImageConfig } from '../image/config.js';
import { writeFileAtomic, writeFilesAtomic } from '../fs/atomic.js';

export class ImageDb {
  constructor(readonly dir: string) {}

  private contentPath(id: Digest): string {
    return join(this.dir, 'content', 'sha256', hex(id));
  }

  private metadataDir(id: Digest): string {
    return join(this.dir, 'metadata', 'sha256', hex(id));
  }

  /**
   * Stores config bytes and returns the image ID. Storing the same bytes twice is a no-op.
   * `metadata` adds notes of tsbuild's own (read back with getMetadata), written with Docker's.
   */
  async put(configBytes: Buffer, parent?: Digest, metadata: Record<string, string> = {}): Promise<Digest> {
    const id = sha256(configBytes);
    const notes: Record<string, string> = { ...metadata, ...(parent ? { parent } : {}) };
    const now = new Date().toISOString();
    if (await this.has(id)) {
      // The same bytes are stored already (the name is their digest): a cached rebuild. Only
      // notes that differ are written; lastUpdated stays when the image was stored.
      const changed = await this.changedNotes(id, notes);
      if ((await this.getMetadata(id, 'lastUpdated')) === undefined) changed['lastUpdated'] = now;
      if (Object.keys(changed).length > 0) await writeFilesAtomic(this.metadataDir(id), changed);
      return id;
    }
    // Metadata without its config is never read (list() goes by content/), so the two are
    // written side by side rather than one after the other.
    await Promise.all([
      writeFileAtomic(this.contentPath(id), configBytes),
      writeFilesAtomic(this.metadataDir(id), { ...notes, lastUpdated: now }),
    ]);
    return id;
  }

  /** Whether the config `id` is stored (without reading it). */
  async has(id: Digest): Promise<boolean> {
    return exists(this.contentPath(id));
  }

  /** The entries of `notes` whose stored value differs (or is missing). */
  private async changedNotes(id: Digest, notes: Record<string, string>): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(notes)) {
      if ((await this.getMetadata(id, name)) !== value) out[name] = value;
    }
    return out;
  }

  async getBytes(id: Digest): Promise<Buffer> {
    try {
      return await readFile(this.contentPath(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No such image: ${id}`);
      throw err;
    }
  }

  async get(id: Digest): Promise<ImageConfig> {
    return parseConfig(await this.getBytes(id));
  }

  async parent(id: Digest): Promise<Digest | undefined> {
    try {
      return parseDigest((await readFile(join(this.metadataDir(id), 'parent'), 'utf8')).trim());
    } catch {
      return undefined;
    }
  }

  async getMetadata(id: Digest, name: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.metadataDir(id), name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async list(): Promise<Digest[]> {
    try {
      const names = await readdir(join(this.dir, 'content', 'sha256'));
      return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => parseDigest(`sha256:${n}`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async remove(id: Digest): Promise<void> {
    await rm(this.contentPath(id), { force: true });
    const trash = join(this.dir, 'metadata', 'sha256', `.tmp-remove-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(this.dir, 'metadata', 'sha256'), { recursive: true });
    await rename(this.metadataDir(id), trash).catch(() => undefined);
    await rm(trash, { recursive: true, force: true });
  }
}
