// The store's databases, paths and bookkeeping, for the modules of src/store only: the Store
// class (store.ts) is the façade the rest of tsbuild speaks to, and delegates its verbs to
// functions in this folder that take these parts. Nothing outside src/store builds a store path.
//
// The layout under one root directory, Docker's with tsbuild's additions marked (+):
//   image/<driver>/repositories.json       tags
//   image/<driver>/imagedb/                 image configs and their metadata
//   image/<driver>/indexdb/              (+) multi-platform images: {platform, image ID} lists (indexdb.ts)
//   image/<driver>/layerdb/                 layer records by chainID
//   image/<driver>/distribution/v2metadata-by-diffid/sha256/  where layers' blobs are known to be
//   image/<driver>/buildcache/           (+) build cache records
//   image/<driver>/contexthash/          (+) file checksums of build contexts
//   image/<driver>/contexthash/trees/    (+) what a COPY's checksum saw of a directory, and its stamp
//   <driver>/                               the snapshot directories (src/snapshot)
//   lock, leases/, tmp/                  (+) the store lock, live processes' leases, scratch dirs
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { ImageDb } from './imagedb.js';
import { IndexDb } from './indexdb.js';
import { LayerDb, type LayerRecord } from './layerdb.js';
import { leaseFor, ownerPid, scanLeases, type Lease } from './leases.js';
import { StoreLock } from './lock.js';
import { Repositories } from './repositories.js';

export interface StorePaths {
  /** image/<driver>: the metadata databases. */
  readonly meta: string;
  readonly buildcache: string;
  readonly contexthash: string;
  readonly treememo: string;
  /** distribution/v2metadata-by-diffid/sha256: the blobs known for each layer, one file per diffID. */
  readonly distribution: string;
  readonly leases: string;
  readonly tmp: string;
}

export class StoreParts {
  readonly paths: StorePaths;
  readonly layers: LayerDb;
  readonly images: ImageDb;
  readonly indexes: IndexDb;
  readonly tags: Repositories;
  /** The store lock (lock.ts), shared by every process using this root. */
  readonly lock: StoreLock;
  /** This process's lease (leases.ts). */
  readonly lease: Lease;
  /** Snapshots this process prepared and then published as a layer. */
  readonly published = new Set<string>();

  constructor(
    readonly root: string,
    readonly snapshotter: Snapshotter,
    /** Why this driver, for `tsbuild info`. */
    readonly driverReason: string,
  ) {
    const meta = join(root, 'image', snapshotter.name);
    this.paths = {
      meta,
      buildcache: join(meta, 'buildcache'),
      contexthash: join(meta, 'contexthash'),
      treememo: join(meta, 'contexthash', 'trees'),
      distribution: join(meta, 'distribution', 'v2metadata-by-diffid', 'sha256'),
      leases: join(root, 'leases'),
      tmp: join(root, 'tmp'),
    };
    this.layers = new LayerDb(join(meta, 'layerdb'));
    this.images = new ImageDb(join(meta, 'imagedb'));
    this.indexes = new IndexDb(join(meta, 'indexdb'));
    this.tags = new Repositories(join(meta, 'repositories.json'), (fn) => this.exclusive(fn));
    this.lock = new StoreLock(join(root, 'lock'));
    this.lease = leaseFor(this.paths.leases);
    this.lease.leavesWork = () => this.leavesWorkSync();
  }

  /**
   * Whether this process is about to exit leaving a snapshot it prepared (and neither published
   * nor removed) or a temp dir of its own: an operation cut short, for the next command's repair.
   * Synchronous: it runs in the 'exit' handler.
   */
  private leavesWorkSync(): boolean {
    for (const key of this.lease.record().snapshots) {
      if (!this.published.has(key) && existsSync(this.snapshotter.fileRoot(key))) return true;
    }
    try {
      return readdirSync(this.paths.tmp).some((n) => ownerPid(n) === process.pid);
    } catch {
      return false;
    }
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
    const { live: all } = await scanLeases(this.paths.leases);
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
    await mkdir(this.paths.tmp, { recursive: true, mode: 0o700 });
    return mkdtemp(join(this.paths.tmp, `${prefix}-${process.pid}-`));
  }

  async mustStillHave(chainId: Digest): Promise<void> {
    if (!(await this.layers.exists(chainId))) {
      throw new TsbuildError(
        `layer ${chainId} was removed from the store (by rmi or prune in another process) while this command was using it; run it again`,
      );
    }
  }

  /** The layer records of an image, bottom first. */
  async imageLayers(config: ImageConfig): Promise<LayerRecord[]> {
    return Promise.all(chainIds(config.rootfs.diff_ids).map((id) => this.layers.mustGet(id)));
  }

  /** The chainIDs every stored image stands on (but `except`), and those live processes lease. */
  async layersInUse(except?: Digest): Promise<Set<Digest>> {
    const used = new Set<Digest>((await this.leased()).chains);
    for (const id of await this.images.list()) {
      if (id === except) continue;
      const config = await this.images.get(id);
      for (const c of chainIds(config.rootfs.diff_ids)) used.add(c);
    }
    return used;
  }
}
