// The local store, in Docker's layout under one root directory (parts.ts lists it), as one
// façade with verbs: images, tags, layers, snapshots, the build cache's records, the blobs known
// to registries, disk usage and pruning. Nothing outside src/store touches the databases or
// builds a path below the root; every verb that changes what other processes read or delete
// runs under the store lock (lock.ts) and leases what it uses (leases.ts).
import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Digest } from '../digest.js';
import type { Image } from '../image/image.js';
import type { Platform } from '../image/platform.js';
import type { Provenance } from '../image/provenance.js';
import type { Reference } from '../image/reference.js';
import type { Mount } from '../runtime/types.js';
import { isRootless, rootlessDataHome } from '../runtime/userns.js';
import { chooseDriver, type DriverRequest } from '../snapshot/choose.js';
import type { DriverName, PrepareOptions } from '../snapshot/snapshotter.js';
import { getCacheRecord, putCacheRecord, type CacheRecord } from './buildcache.js';
import type { CacheMountRequest, CacheMountUsage, HeldCacheMount } from './cachemounts.js';
import type { RemovedContextCaches } from './contextcaches.js';
import type { BlobRecord, DistributionMetadata } from './distribution.js';
import type { DiskUsage, PrunePlan, PruneReport } from './gc.js';
import {
  listImages,
  loadImage,
  provenanceOf,
  putImage,
  resolveImage,
  storedLayer,
  type PutImageOptions,
  type StoredImage,
  type StoredLayer,
} from './images.js';
import type { IndexEntry, StoredIndexRecord } from './indexdb.js';
import { indexMembership, putIndex, resolveTarget, type ResolvedTarget } from './indexes.js';
import type { LayerRecord } from './layerdb.js';
import { StoreParts } from './parts.js';
import type { RemovedImage } from './remove.js';
import { scanLeases } from './leases.js';
import type { TaggedRef } from './repositories.js';
import { applyLayer, commit, discard, prepare, useLayer, view, type ActiveSnapshot, type CommitOptions } from './snapshots.js';
import type { WriteImageOptions, WrittenImage } from './write-image.js';
import type { VerifyReport } from './verify.js';

export const DEFAULT_ROOT = '/var/lib/tsbuild';

export interface StoreOptions {
  /** Store root; default TSBUILD_ROOT or /var/lib/tsbuild. */
  readonly root?: string;
  /** A forced driver (--storage-driver); fuse-overlayfs is overlay2 mounted by fuse-overlayfs. */
  readonly driver?: DriverRequest;
}

async function reserveExists(root: string): Promise<boolean> {
  return access(join(root, 'reserve')).then(
    () => true,
    () => false,
  );
}

/**
 * $TSBUILD_ROOT, else /var/lib/tsbuild for root and `$XDG_DATA_HOME/tsbuild` for an ordinary
 * user (podman's rule), whose tsbuild runs as root of its own user namespace (runtime/userns.ts).
 */
export function defaultRoot(): string {
  return process.env.TSBUILD_ROOT || (isRootless() ? join(rootlessDataHome(), 'tsbuild') : DEFAULT_ROOT);
}

// Verbs a build never uses (pruning, removing, importing, the registries' blob records) load
// their modules on first use: every module is start-up time of every command.
export class Store {
  private distribution: Promise<DistributionMetadata> | undefined;

  private constructor(private readonly parts: StoreParts) {}

  /** Opens (creating if need be) the store at `opts.root`, repairing what a killed process left. */
  static async open(opts: StoreOptions = {}): Promise<Store> {
    // Absolute, as dockerd makes --data-root: the helper mounts and runs in other directories.
    const root = resolve(opts.root ?? defaultRoot());
    await mkdir(root, { recursive: true, mode: 0o711 });
    const { snapshotter, reason } = await chooseDriver(root, opts.driver);
    const parts = new StoreParts(root, snapshotter, reason);
    await mkdir(parts.layers.tmpDir, { recursive: true });
    // A dead process's lease is what says it left work behind (leases.ts); finding none costs
    // one readdir, and the repair's code loads only when there is something to repair.
    const { dead } = await scanLeases(parts.paths.leases, { contents: false });
    // The room rmi and prune need on a full disk (reserve.ts), made while there is room.
    if (!(await reserveExists(root))) await (await import('./reserve.js')).keepReserve(root);
    if (dead.length > 0) {
      const { repair } = await import('./repair.js');
      await parts.exclusive(() => repair(parts));
    }
    return new Store(parts);
  }

  get root(): string {
    return this.parts.root;
  }

  get driver(): DriverName {
    return this.parts.snapshotter.name;
  }

  /** An overlay over a directory outside the store, mounted as this store's snapshots are (Snapshotter.scratchOverlay). */
  scratchOverlay(cwd: string, lower: string, upper: { dir: string; work: string }): Mount | undefined {
    return this.parts.snapshotter.scratchOverlay?.(cwd, lower, upper);
  }

  /** Why this driver, in one sentence, for `tsbuild info`. */
  get driverReason(): string {
    return this.parts.driverReason;
  }

  // --- images ---

  /**
   * The ID of what a user typed: name[:tag], name@digest, an image ID or a unique prefix of one.
   * A multi-platform image gives its image for `platform` (default: this machine's).
   */
  resolveImage(name: string, platform?: Platform): Promise<Digest> {
    return resolveImage(this.parts, name, platform);
  }

  /** What a name means: one image, or a multi-platform image's index (indexes.ts). */
  resolveTarget(name: string): Promise<ResolvedTarget> {
    return resolveTarget(this.parts, name);
  }

  /** A stored index's record: its platforms and their image IDs. */
  index(id: Digest): Promise<StoredIndexRecord> {
    return this.parts.indexes.get(id);
  }

  /** Every stored index. */
  async indexes(): Promise<StoredIndexRecord[]> {
    return (await indexMembership(this.parts)).indexes;
  }

  /** Stores a multi-platform image over stored images; leased until this process exits or it is tagged. */
  putIndex(entries: readonly IndexEntry[]): Promise<Digest> {
    return putIndex(this.parts, entries);
  }

  hasImage(id: Digest): Promise<boolean> {
    return this.parts.images.has(id);
  }

  /** A stored image as a read-only view: config, layers (their tars on demand), tags, size. */
  image(id: Digest): Promise<StoredImage> {
    return loadImage(this.parts, id);
  }

  /** Every stored image, newest first. */
  images(): Promise<StoredImage[]> {
    return listImages(this.parts);
  }

  /** The image a build started from, as Docker records it. */
  parentOf(id: Digest): Promise<Digest | undefined> {
    return this.parts.images.parent(id);
  }

  /** Which Dockerfile line made each history entry, if tsbuild built the image. */
  provenance(id: Digest): Promise<Provenance | undefined> {
    return provenanceOf(this.parts, id);
  }

  /** Stores config bytes whose layers are all in the store; leased until this process exits or it is tagged. */
  putImage(configBytes: Buffer, opts: PutImageOptions = {}): Promise<Digest> {
    return putImage(this.parts, configBytes, opts);
  }

  /** Stores an image from anywhere (an archive, a registry): the layers the store lacks, then the config and tags. */
  async writeImage(image: Image, opts: WriteImageOptions = {}): Promise<WrittenImage> {
    return (await import('./write-image.js')).writeImage(this.parts, image, opts);
  }

  /** `rmi NAME`: drops the tag (or, by ID, every tag), and the image and its unused layers when no tag is left. */
  async removeImage(name: string, opts: { force?: boolean } = {}): Promise<RemovedImage> {
    return this.shrinking(async () => (await import('./remove.js')).removeImage(this.parts, name, opts));
  }

  /** Undoes what a failed import stored: its untagged images and the layers nothing else needs. */
  async rollBack(added: { indexes?: readonly Digest[]; images?: readonly Digest[]; chains?: readonly Digest[] }): Promise<void> {
    return (await import('./remove.js')).rollBack(this.parts, added);
  }

  // --- tags ---

  /** Points `ref` at `id` (an image's or an index's); returns what it pointed at before, if another. */
  tag(ref: Reference, id: Digest): Promise<Digest | undefined> {
    return this.parts.tags.set(ref, id);
  }

  /** The image `ref` points at. */
  tagged(ref: Reference): Promise<Digest | undefined> {
    return this.parts.tags.get(ref);
  }

  /** Every tag and digest reference. */
  allTags(): Promise<TaggedRef[]> {
    return this.parts.tags.all();
  }

  // --- layers ---

  /** Whether the store has the layer chain `chainId`. */
  hasLayer(chainId: Digest): Promise<boolean> {
    return this.parts.layers.exists(chainId);
  }

  /** The layer `chainId`, leased for the rest of this process (prune leaves it), or undefined if it is gone. */
  useLayer(chainId: Digest): Promise<LayerRecord | undefined> {
    return useLayer(this.parts, chainId);
  }

  /** A read-only view of one stored layer (its tar is rebuilt from the tar-split and the files, and checked). */
  layer(record: LayerRecord): StoredLayer {
    return storedLayer(this.parts, record);
  }

  /** Unpacks a layer tar (compressed or not) on `parent` and publishes it. */
  async applyLayer(tar: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, parent?: LayerRecord): Promise<LayerRecord> {
    return (await applyLayer(this.parts, tar, parent)).record;
  }

  // --- snapshots ---

  /** A writable snapshot on `parent` (none: empty), leased, with its mounts. Commit or discard it. */
  prepare(parent: LayerRecord | undefined, opts: PrepareOptions = {}): Promise<ActiveSnapshot> {
    return prepare(this.parts, parent, opts);
  }

  /** Read-only mounts of `layer`'s whole filesystem (none: empty); its chain stays leased. */
  view(layer: LayerRecord | undefined): Promise<Mount[]> {
    return view(this.parts, layer);
  }

  /** What the snapshot changed, published as a layer on its parent. The snapshot is the caller's to discard if this throws. */
  commit(snap: ActiveSnapshot, opts: CommitOptions = {}): Promise<LayerRecord> {
    return commit(this.parts, snap, opts);
  }

  /**
   * Deletes a snapshot that will not be committed; `afterExit` (an interrupted build) lets a
   * remover that outlives this process delete its files, so that the signal takes effect at once.
   */
  discard(snap: ActiveSnapshot, opts: { afterExit?: boolean } = {}): Promise<void> {
    return discard(this.parts, snap.key, opts);
  }

  /** `docker image inspect`'s GraphDriver for an image whose layers are these. */
  graphDriver(layers: readonly LayerRecord[]): { Data: Record<string, string> | null; Name: DriverName } {
    return { Data: this.parts.snapshotter.describe(layers.map((l) => l.cacheId)), Name: this.driver };
  }

  // --- scratch space and caches ---

  /**
   * A scratch directory inside the store root (same filesystem, so renames into the store are
   * atomic), which the next command's repair removes if this process dies. The caller removes it.
   */
  tempDir(prefix: string): Promise<string> {
    return this.parts.tempDir(prefix);
  }

  /**
   * Where a build keeps the file checksums of its contexts between builds. Its files are written
   * atomically, beside a `.tmp-` name: the lease is registered first, so that a kill mid-write
   * leaves a dead lease, and the next command's repair removes the temp file.
   */
  get contextHashDir(): string {
    this.parts.lease.registerSync();
    return this.parts.paths.contexthash;
  }

  /** Where a build remembers the checksum text of whole context directories (treememo.ts); written as above. */
  get treeMemoDir(): string {
    this.parts.lease.registerSync();
    return this.parts.paths.treememo;
  }

  /** The build cache's record for a step key, if its layer is still stored. */
  cacheRecord(key: Digest): Promise<CacheRecord | undefined> {
    return getCacheRecord(this.parts, key);
  }

  /** Leased first, like every write of the store's: a kill mid-write is then repaired. */
  async putCacheRecord(key: Digest, rec: CacheRecord): Promise<void> {
    await this.parts.lease.register();
    return putCacheRecord(this.parts, key, rec);
  }

  /**
   * An instance of the RUN --mount=type=cache directory `req.id`, held (and kept from prune)
   * until released; see cachemounts.ts for the sharing rules.
   */
  async cacheMount(req: CacheMountRequest): Promise<HeldCacheMount> {
    return (await import('./cachemounts.js')).acquireCacheMount(this.root, req, (fn) => this.parts.exclusive(fn));
  }

  /** The cache mounts' directories, with their sizes. */
  async cacheMounts(): Promise<CacheMountUsage[]> {
    return (await import('./cachemounts.js')).listCacheMounts(this.root);
  }

  /** Removes the cache mounts no running build holds. */
  async pruneCacheMounts(): Promise<CacheMountUsage[]> {
    const { removeCacheMounts } = await import('./cachemounts.js');
    return this.parts.exclusive(() => removeCacheMounts(this.root));
  }

  /** Removes the build contexts' checksum caches and directory memos (contextcaches.ts). */
  async pruneContextCaches(): Promise<RemovedContextCaches> {
    const { removeContextCaches } = await import('./contextcaches.js');
    return removeContextCaches([this.parts.paths.contexthash, this.parts.paths.treememo]);
  }

  /** The compressed blobs a layer is known to have in registries, newest first. */
  async blobsOf(diffId: Digest): Promise<BlobRecord[]> {
    return (await this.blobRecords()).blobsOf(diffId);
  }

  /** Remembers that a layer compresses to a blob found in a registry repository. */
  async rememberBlob(diffId: Digest, rec: BlobRecord): Promise<void> {
    // Taken without the lock (distribution.ts), but leased: a kill mid-write is then repaired.
    await this.parts.lease.register();
    return (await this.blobRecords()).add(diffId, rec);
  }

  private blobRecords(): Promise<DistributionMetadata> {
    this.distribution ??= import('./distribution.js').then((m) => new m.DistributionMetadata(this.parts.paths.distribution));
    return this.distribution;
  }

  // --- disk usage ---

  /** Store usage: per image, shared and unique bytes; the layers no image uses. */
  async diskUsage(): Promise<DiskUsage> {
    return (await import('./gc.js')).diskUsage(this.parts);
  }

  /** What `prune` (dangling images) or `prune --all` (every untagged image) would remove. */
  async planPrune(opts: { all?: boolean } = {}): Promise<PrunePlan> {
    return (await import('./gc.js')).planPrune(this.parts, opts);
  }

  /** Carries out a plan, checking each step again (the store may have changed since it was made). */
  async prune(plan: PrunePlan): Promise<PruneReport> {
    return this.shrinking(() => this.pruneNow(plan));
  }

  /**
   * Runs a verb that frees space, on a disk that may be full: the store's reserve (reserve.ts)
   * is given back first if it must be, and made again after.
   */
  private async shrinking<T>(f: () => Promise<T>): Promise<T> {
    const { keepReserve, releaseReserveIfFull } = await import('./reserve.js');
    await releaseReserveIfFull(this.root);
    try {
      return await f();
    } finally {
      await keepReserve(this.root);
    }
  }

  private async pruneNow(plan: PrunePlan): Promise<PruneReport> {
    return (await import('./gc.js')).prune(this.parts, plan);
  }

  /** Reads the store back (the images given, or all) and reports what is broken (verify.ts). */
  async verify(only?: readonly Digest[]): Promise<VerifyReport> {
    return (await import('./verify.js')).verifyStore(this.parts, only);
  }

  /** Removes what `verify` found broken. */
  async repair(report: VerifyReport): Promise<void> {
    return (await import('./verify.js')).repairStore(this.parts, report);
  }

  /** How many images and layers the store holds. */
  async counts(): Promise<{ images: number; layers: number }> {
    return { images: (await this.parts.images.list()).length, layers: (await this.parts.layers.list()).length };
  }

  /** How many multi-platform images (indexes) the store holds. */
  async indexCount(): Promise<number> {
    return (await this.parts.indexes.list()).length;
  }

  /** Ends the lock helper (tests that open many stores in one process). */
  close(): void {
    this.parts.lock.close();
  }
}

export type {
  ActiveSnapshot,
  BlobRecord,
  CacheRecord,
  DiskUsage,
  IndexEntry,
  LayerRecord,
  ResolvedTarget,
  StoredIndexRecord,
  PrunePlan,
  PruneReport,
  RemovedImage,
  StoredImage,
  StoredLayer,
  TaggedRef,
  VerifyReport,
  WrittenImage,
};
