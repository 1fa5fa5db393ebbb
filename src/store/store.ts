// The local store, in Docker's layout under one root directory:
//   image/<driver>/repositories.json, image/<driver>/imagedb/, image/<driver>/layerdb/
//   <driver>/...  the snapshot directories (see src/snapshot)
// Store ties the metadata databases to the snapshotter that holds the files.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, isDigest, parseDigest, hex, type Digest } from '../digest.js';
import { NotFoundError, TsbuildError } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { LayerDescriptor } from '../layer/types.js';
import { chooseDriver } from '../snapshot/choose.js';
import type { DriverName, Snapshotter } from '../snapshot/snapshotter.js';
import { ImageDb } from './imagedb.js';
import { LayerDb, type LayerRecord } from './layerdb.js';
import { leaseFor, ownerPid, scanLeases, type Lease } from './leases.js';
import { StoreLock } from './lock.js';
import { repairIfNeeded } from './repair.js';
import { Repositories } from './repositories.js';
import { parseReference, familiarString, withDefaultTag, type Reference } from '../image/reference.js';

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
  readonly layers: LayerDb;
  readonly images: ImageDb;
  readonly tags: Repositories;
  /** The store lock (src/store/lock.ts), shared by every process using this root. */
  readonly lock: StoreLock;
  /** Where live processes record what they use (src/store/leases.ts). */
  readonly leasesDir: string;
  /** This process's lease. */
  readonly lease: Lease;
  /** Snapshots this process prepared and then published as a layer. */
  private readonly published = new Set<string>();

  private constructor(
    readonly root: string,
    readonly snapshotter: Snapshotter,
    /** Why this driver, for `tsbuild info`. */
    readonly driverReason: string,
  ) {
    const meta = join(root, 'image', snapshotter.name);
    this.layers = new LayerDb(join(meta, 'layerdb'));
    this.images = new ImageDb(join(meta, 'imagedb'));
    this.tags = new Repositories(join(meta, 'repositories.json'), (fn) => this.exclusive(fn));
    this.lock = new StoreLock(join(root, 'lock'));
    this.leasesDir = join(root, 'leases');
    this.lease = leaseFor(this.leasesDir);
    this.lease.leavesWork = () => this.leavesWorkSync();
  }

  /**
   * Whether this process is about to exit leaving a snapshot it prepared (and neither published
   * nor removed) or a temp dir of its own: an operation cut short, for the next command's repair.
   * Synchronous: it runs in the 'exit' handler.
   */
  private leavesWorkSync(): boolean {
    for (const id of this.lease.record().snapshots) {
      if (!this.published.has(id) && existsSync(this.snapshotter.fileRoot(id))) return true;
    }
    try {
      return readdirSync(join(this.root, 'tmp')).some((n) => ownerPid(n) === process.pid);
    } catch {
      return false;
    }
  }

  get driver(): DriverName {
    return this.snapshotter.name;
  }

  static async open(opts: StoreOptions = {}): Promise<Store> {
    const root = opts.root ?? defaultRoot();
    await mkdir(root, { recursive: true, mode: 0o711 });
    const { snapshotter, reason } = await chooseDriver(root, opts.driver);
    const store = new Store(root, snapshotter, reason);
    await mkdir(store.layers.tmpDir, { recursive: true });
    await repairIfNeeded(store);
    return store;
  }

  /**
   * Runs `fn` holding the store lock exclusively: for short sections that change what other
   * processes read or delete. Registers this process's lease first, so that if it dies inside,
   * the next command repairs.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lock.held) return fn();
    await this.lease.register();
    return this.lock.exclusive(fn);
  }

  /**
   * What other live processes are using: rmi and prune leave it alone. (This process's own
   * lease does not count: what it deletes itself, such as a failed load's layers, is its own.)
   */
  async leased(): Promise<{ chains: Set<Digest>; snapshots: Set<string>; images: Set<Digest> }> {
    const { live: all } = await scanLeases(this.leasesDir);
    return {
      chains: new Set(all.flatMap((l) => l.chains)),
      snapshots: new Set(all.flatMap((l) => l.snapshots)),
      images: new Set(all.flatMap((l) => l.images)),
    };
  }

  /**
   * A scratch directory inside the store root (same filesystem, so renames are atomic), named
   * `<prefix>-<pid>-<random>` so that repair can tell when its owner is gone.
   */
  async tempDir(prefix: string): Promise<string> {
    await this.lease.register();
    const dir = join(this.root, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return mkdtemp(join(dir, `${prefix}-${process.pid}-`));
  }

  /**
   * Creates the writable snapshot `id` on `parent`'s snapshot, leasing both first (under the
   * lock, after checking that `parent` still exists): from here until this process exits, rmi
   * and prune leave `parent`'s chain alone and repair leaves `id` alone.
   */
  async prepareSnapshot(id: string, parent: LayerRecord | undefined): Promise<void> {
    await this.exclusive(async () => {
      if (parent) await this.mustStillHave(parent.chainId);
      await this.lease.add({ snapshots: [id], ...(parent ? { chains: [parent.chainId] } : {}) });
    });
    await this.snapshotter.prepare(id, parent?.cacheId);
  }

  /**
   * The layer `chainId` leased for this process (so prune leaves it until the process ends), or
   * undefined if the store does not have it (any more): for a cache hit, a miss.
   */
  async useLayer(chainId: Digest): Promise<LayerRecord | undefined> {
    return this.exclusive(async () => {
      const rec = await this.layers.get(chainId);
      if (rec) await this.lease.add({ chains: [chainId] });
      return rec;
    });
  }

  private async mustStillHave(chainId: Digest): Promise<void> {
    if (!(await this.layers.exists(chainId))) {
      throw new TsbuildError(`layer ${chainId} was removed from the store (by rmi or prune in another process) while this command was using it; run it again`);
    }
  }

  /**
   * Stores an image config (and leases it until this process exits, so that prune does not take
   * it for a dangling image before it is tagged). Every layer it names must still be there.
   * `metadata`: notes of tsbuild's own stored beside the image (ImageDb.put).
   */
  async putImage(configBytes: Buffer, parent?: Digest, metadata?: Record<string, string>): Promise<Digest> {
    const { parseConfig } = await import('../image/config.js');
    const config = parseConfig(configBytes);
    return this.exclusive(async () => {
      for (const c of chainIds(config.rootfs.diff_ids)) await this.mustStillHave(c);
      const id = await this.images.put(configBytes, parent, metadata);
      await this.lease.add({ images: [id] });
      return id;
    });
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
    return this.images.has(id);
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
      // Publishing and leasing in one section: prune never sees the new layer unleased. Two
      // processes publishing the same chain queue here; the second finds the first's.
      const { record, created } = await this.exclusive(async () => {
        if (parent) await this.mustStillHave(parent.chainId);
        const made = await this.layers.create({
          ...(parent ? { parent: parent.chainId } : {}),
          diffId: desc.diffId,
          size: desc.size,
          cacheId: snapshotId,
          tarSplitFile: tarSplitPath,
        });
        await this.lease.add({ chains: [made.record.chainId] });
        return made;
      });
      if (created) this.published.add(snapshotId);
      else await this.snapshotter.remove(snapshotId);
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

  /** The chainIDs every stored image stands on, and those live processes lease. */
  async layersInUse(except?: Digest): Promise<Set<Digest>> {
    const used = new Set<Digest>((await this.leased()).chains);
    for (const id of await this.images.list()) {
      if (id === except) continue;
      const config = await this.images.get(id);
      for (const c of chainIds(config.rootfs.diff_ids)) used.add(c);
    }
    return used;
  }

  /**
   * Deletes an image's config, then each of its layers from the top down that no other image
   * stands on and no live process leases. Tags must already be gone: if the image was tagged
   * again meanwhile (another process), it stays and the result is undefined. The records are
   * unpublished under the store lock; the snapshot directories, which nothing names any more,
   * are deleted after it (if this process dies in between, the next command's repair does it).
   */
  async deleteImage(id: Digest): Promise<Digest[] | undefined> {
    const gone = await this.exclusive(async () => {
      if ((await this.tags.refsOf(id)).length > 0) return undefined;
      const config = await this.images.get(id);
      const used = await this.layersInUse(id);
      await this.images.remove(id);
      const released: LayerRecord[] = [];
      for (const chainId of chainIds(config.rootfs.diff_ids).reverse()) {
        if (used.has(chainId)) break;
        const rec = await this.layers.get(chainId);
        if (!rec) continue;
        await this.layers.remove(chainId);
        released.push(rec);
      }
      // Ours to delete now: another process's repair must not race us for them.
      await this.lease.add({ snapshots: released.map((r) => r.cacheId) });
      return released;
    });
    if (!gone) return undefined;
    for (const rec of gone) await this.snapshotter.remove(rec.cacheId);
    return gone.map((r) => r.chainId);
  }
}

export { parseDigest };
