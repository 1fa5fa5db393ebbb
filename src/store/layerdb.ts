// image/<driver>/layerdb: one directory per layer *chain*, named by its chainID, holding
//   diff              the layer's diffID
//   parent            the chainID below it (absent for a bottom layer)
//   size              bytes of the layer's content
//   cache-id          the snapshot directory holding the unpacked files (<driver>/<cache-id>)
//   tar-split.json.gz what rebuilds the exact layer tar from those files
// A layer is published by renaming a complete `tmp/write-set-*` directory into place, so a
// reader never sees a half-written one (Docker does the same).
import { readFile, readdir, rename, rm, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chainIdOf, hex, parseDigest, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { fsyncAll, fsyncDir, linkOrCopy } from '../fs/atomic.js';

export interface LayerRecord {
  readonly chainId: Digest;
  readonly diffId: Digest;
  readonly parent?: Digest;
  readonly size: number;
  readonly cacheId: string;
}

export interface NewLayer {
  readonly parent?: Digest;
  readonly diffId: Digest;
  readonly size: number;
  readonly cacheId: string;
  /** A tar-split.json.gz written and fsynced by the layer writer; linked (or copied) into the layer's directory. */
  readonly tarSplitFile: string;
}

export class LayerDb {
  constructor(readonly dir: string) {}

  private layerDir(chainId: Digest): string {
    return join(this.dir, 'sha256', hex(chainId));
  }

  get tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  tarSplitPath(chainId: Digest): string {
    return join(this.layerDir(chainId), 'tar-split.json.gz');
  }

  /**
   * The record, or undefined if the store has no such layer. Readers take no lock: a record
   * removed while it is read (remove() renames the whole directory away) is one the store does
   * not have, not an error.
   */
  async get(chainId: Digest): Promise<LayerRecord | undefined> {
    const dir = this.layerDir(chainId);
    const read = (name: string): Promise<string | undefined> =>
      readFile(join(dir, name), 'utf8').then(
        (text) => text.trim(),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        },
      );
    const diff = await read('diff');
    if (diff === undefined) return undefined;
    const [size, cacheId, parent] = await Promise.all([read('size'), read('cache-id'), read('parent')]);
    // A missing file: the record went meanwhile, or (for `parent` alone) it is a bottom layer.
    if ((size === undefined || cacheId === undefined || parent === undefined) && !(await this.exists(chainId))) return undefined;
    if (size === undefined || cacheId === undefined) throw new Error(`layer record ${chainId} is incomplete: ${dir}`);
    return {
      chainId,
      diffId: parseDigest(diff),
      size: Number(size),
      cacheId,
      ...(parent !== undefined ? { parent: parseDigest(parent) } : {}),
    };
  }

  async mustGet(chainId: Digest): Promise<LayerRecord> {
    const rec = await this.get(chainId);
    if (!rec) throw new NotFoundError(`layer ${chainId} not found in the store`);
    return rec;
  }

  /** The chain from the bottom layer up to `chainId`. */
  async chain(chainId: Digest | undefined): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (let id = chainId; id !== undefined;) {
      const rec = await this.mustGet(id);
      out.push(rec);
      id = rec.parent;
    }
    return out.reverse();
  }

  /**
   * Publishes a layer. If the chain already exists (same content on the same parent), nothing
   * changes and `created` is false: the caller then drops its now-redundant snapshot, which is
   * how two images that share a stack share its directories.
   */
  async create(layer: NewLayer): Promise<{ record: LayerRecord; created: boolean }> {
    const chainId = chainIdOf(layer.parent, layer.diffId);
    const existing = await this.get(chainId);
    if (existing) return { record: existing, created: false };
    const ws = join(this.tmpDir, `write-set-${process.pid}-${randomBytes(8).toString('hex')}`);
    await mkdir(ws, { recursive: true });
    try {
      // The write set is private until renamed: its files need no temp names of their own, only
      // to be durable before the rename publishes them. Every file is made first, then the files
      // and the directory are fsynced at once (one journal commit; the tar-split's writer left
      // it to this fsync).
      const files: Record<string, string> = { diff: layer.diffId, size: String(layer.size), 'cache-id': layer.cacheId };
      if (layer.parent !== undefined) files.parent = layer.parent;
      await Promise.all([
        ...Object.entries(files).map(([name, data]) => writeFile(join(ws, name), data, { flag: 'wx' })),
        linkOrCopy(layer.tarSplitFile, join(ws, 'tar-split.json.gz')),
      ]);
      await fsyncAll([...Object.keys(files), 'tar-split.json.gz'].map((name) => join(ws, name)).concat(ws));
      await mkdir(join(this.dir, 'sha256'), { recursive: true });
      try {
        await rename(ws, this.layerDir(chainId));
      } catch (err) {
        // Another build published the same chain first: theirs wins, ours is redundant.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') {
          const winner = await this.get(chainId);
          if (winner) return { record: winner, created: false };
        }
        throw err;
      }
      await fsyncDir(join(this.dir, 'sha256'));
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
    return { record: { chainId, ...pick(layer) }, created: true };
  }

  /** Unpublishes a layer's metadata (the snapshot is the caller's to remove). */
  async remove(chainId: Digest): Promise<void> {
    const dir = this.layerDir(chainId);
    const trash = join(this.tmpDir, `remove-${hex(chainId)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(this.tmpDir, { recursive: true });
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
  }

  async list(): Promise<LayerRecord[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'sha256'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const recs = await Promise.all(names.map((n) => this.get(parseDigest(`sha256:${n}`))));
    return recs.filter((r): r is LayerRecord => r !== undefined);
  }

  async exists(chainId: Digest): Promise<boolean> {
    try {
      await stat(join(this.layerDir(chainId), 'diff'));
      return true;
    } catch {
      return false;
    }
  }
}

function pick(l: NewLayer): Omit<LayerRecord, 'chainId'> {
  return { diffId: l.diffId, size: l.size, cacheId: l.cacheId, ...(l.parent !== undefined ? { parent: l.parent } : {}) };
}
