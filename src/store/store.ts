// The local store, in Docker's layout under one root directory:
//   image/<driver>/repositories.json, image/<driver>/imagedb/, image/<driver>/layerdb/
//   <driver>/...  the snapshot directories (see src/snapshot)
// Store ties the metadata databases to the snapshotter that holds the files.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, isDigest, parseDigest, hex, type Digest } from '../digest.js';
import { NotFoundError, TsbuildError } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { LayerDescriptor } from '../layer/types.js';
import { chooseDriver } from '../snapshot/choose.js';
import type { DriverName, Snapshotter } from '../snapshot/snapshotter.js';
import { sweepTemps } from './atomic.js';
import { ImageDb } from './imagedb.js';
import { LayerDb, type LayerRecord } from './layerdb.js';
import { Repositories } from './repositories.js';
import { parseReference, familiarString, withDefaultTag, type Reference } from './reference.js';

export const DEFAULT_ROOT = '/var/lib/tsbuild';

export interface StoreOptions {
  /** Store root; default TSBUILD_ROOT or /var/lib/tsbuild. */
  readonly root?: string;
  readonly driver?: DriverName;
}

export function defaultRoot(): string {
  return process.env.TSBUILD_ROOT || DEFAULT_ROOT;
}

export class Store {
  private constructor(
    readonly root: string,
    readonly snapshotter: Snapshotter,
    /** Why this driver, for `tsbuild info`. */
    readonly driverReason: string,
    readonly layers: LayerDb,
    readonly images: ImageDb,
    readonly tags: Repositories,
  ) {}

  get driver(): DriverName {
    return this.snapshotter.name;
  }

  static async open(opts: StoreOptions = {}): Promise<Store> {
    const root = opts.root ?? defaultRoot();
    await mkdir(root, { recursive: true, mode: 0o711 });
    const { snapshotter, reason } = await chooseDriver(root, opts.driver);
    const meta = join(root, 'image', snapshotter.name);
    const store = new Store(
      root,
      snapshotter,
      reason,
      new LayerDb(join(meta, 'layerdb')),
      new ImageDb(join(meta, 'imagedb')),
      new Repositories(join(meta, 'repositories.json')),
    );
    await mkdir(store.layers.tmpDir, { recursive: true });
    await sweepTemps(meta);
    return store;
  }

  /** A scratch directory inside the store root (same filesystem, so renames are atomic). */
  async tempDir(prefix: string): Promise<string> {
    const dir = join(this.root, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { mkdtemp } = await import('node:fs/promises');
    return mkdtemp(join(dir, `${prefix}-`));
  }

  /**
   * Resolves what a user typed: a name[:tag] or name@digest, a full image ID (`sha256:...`), or
   * a unique prefix of an ID as `docker` accepts.
   */
  async resolveImage(s: string): Promise<Digest> {
    if (isDigest(s) && (await this.hasImage(s))) return s;
    if (/^[0-9a-f]{4,64}$/.test(s)) {
      const matches = (await this.images.list()).filter((id) => hex(id).startsWith(s));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new TsbuildError(`ambiguous image ID prefix ${s}`);
    }
    let ref: Reference;
    try {
      ref = parseReference(s);
    } catch {
      throw new NotFoundError(`No such image: ${s}`);
    }
    const id = await this.tags.get(ref);
    if (!id) throw new NotFoundError(`No such image: ${familiarString(withDefaultTag(ref))}`);
    return id;
  }

  async hasImage(id: Digest): Promise<boolean> {
    try {
      await this.images.getBytes(id);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Turns a finished snapshot into a stored layer on top of `parent`. `describe` writes the
   * layer's tar-split to the path it is given and returns the layer's digest and size. If the
   * chain already exists, the snapshot is identical to a stored one and is dropped: this is how
   * layers are shared. The snapshot is the caller's to remove if this throws.
   */
  async publishSnapshot(
    snapshotId: string,
    parent: LayerRecord | undefined,
    describe: (tarSplitPath: string) => Promise<LayerDescriptor>,
  ): Promise<LayerRecord> {
    const tmp = await this.tempDir('publish');
    try {
      const tarSplitPath = join(tmp, 'tar-split.json.gz');
      const desc = await describe(tarSplitPath);
      const { record, created } = await this.layers.create({
        ...(parent ? { parent: parent.chainId } : {}),
        diffId: desc.diffId,
        size: desc.size,
        cacheId: snapshotId,
        tarSplitFile: tarSplitPath,
      });
      if (!created) await this.snapshotter.remove(snapshotId);
      return record;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** The layer records of an image, bottom first. */
  async imageLayers(config: ImageConfig): Promise<LayerRecord[]> {
    const ids = chainIds(config.rootfs.diff_ids);
    return Promise.all(ids.map((id) => this.layers.mustGet(id)));
  }

  /** The chainIDs every stored image stands on. */
  async layersInUse(except?: Digest): Promise<Set<Digest>> {
    const used = new Set<Digest>();
    for (const id of await this.images.list()) {
      if (id === except) continue;
      const config = await this.images.get(id);
      for (const c of chainIds(config.rootfs.diff_ids)) used.add(c);
    }
    return used;
  }

  /**
   * Deletes an image's config, then each of its layers from the top down that no other image
   * stands on. Tags must already be gone.
   */
  async deleteImage(id: Digest): Promise<Digest[]> {
    const config = await this.images.get(id);
    const used = await this.layersInUse(id);
    await this.images.remove(id);
    const released: Digest[] = [];
    for (const chainId of chainIds(config.rootfs.diff_ids).reverse()) {
      if (used.has(chainId)) break;
      const rec = await this.layers.get(chainId);
      if (!rec) continue;
      await this.layers.remove(chainId);
      await this.snapshotter.remove(rec.cacheId);
      released.push(chainId);
    }
    return released;
  }
}

export { parseDigest };
