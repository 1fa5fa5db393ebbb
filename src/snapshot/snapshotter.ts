// A snapshotter speaks in directories and mounts only (containerd's idea): it prepares a
// writable snapshot on top of a committed one, mounts it as a rootfs, reports what changed, and
// removes it. It knows nothing of tar, digests, images or Dockerfiles; the layer module turns
// its Change stream into a tar, and the builder connects the two.
import type { Change, LayerDescriptor } from '../layer/types.js';

export type DriverName = 'overlay2' | 'vfs';

/**
 * Docker's `<id>-init` layer: files every container needs that belong to no image. The driver
 * places them between the image's layers and the snapshot so they are never committed, and
 * returns them as bind mounts so a step writing /etc/hosts writes to the init file, not to the
 * snapshot (Docker bind-mounts them for the same reason).
 */
export interface InitLayer {
  /** Path inside the rootfs (e.g. `etc/hosts`) → content. */
  readonly files: Readonly<Record<string, string>>;
  /** Mount points the runtime needs (e.g. `proc`, `dev`, `sys`). */
  readonly dirs: readonly string[];
}

export interface Bind {
  readonly source: string;
  /** Absolute path inside the rootfs. */
  readonly target: string;
  readonly readonly?: boolean;
}

export interface MountedRootfs {
  /** The directory holding the snapshot's whole filesystem. */
  readonly rootfs: string;
  readonly binds: readonly Bind[];
}

export interface Snapshotter {
  readonly name: DriverName;
  /** `<root>/<driver>`: where the snapshot directories live. */
  readonly home: string;

  /** Creates the empty writable snapshot `id` on top of the committed snapshot `parent` (none: a bottom layer). */
  prepare(id: string, parent: string | undefined): Promise<void>;
  /** Presents `id` as a rootfs, with an init layer above its parents when given. */
  mount(id: string, init?: InitLayer): Promise<MountedRootfs>;
  /** Undoes `mount`, init layer included. Safe to call when not mounted. */
  unmount(id: string): Promise<void>;
  /** What `id` changed relative to its parent, in tar order. Call when unmounted. */
  changes(id: string): AsyncIterable<Change>;
  /** Unpacks a layer tar into the freshly prepared `id` (load, pull, import). */
  apply(id: string, tar: NodeJS.ReadableStream, tarSplitPath: string): Promise<LayerDescriptor>;
  /** Where a snapshot's files are read from to rebuild its layer tar. */
  fileRoot(id: string): string;
  /** Deletes `id` (unmounting it first if needed). Missing is fine. */
  remove(id: string): Promise<void>;
  /** The snapshot ids present on disk. */
  list(): Promise<string[]>;
  /** `docker image inspect`'s GraphDriver.Data for an image whose layers are these snapshots, bottom first. */
  describe(stack: readonly string[]): Record<string, string> | null;
}

/** A fresh snapshot id: 64 hex digits, like Docker's cache-ids. */
export function newSnapshotId(): string {
  return crypto.randomUUID().replace(/-/g, '') + crypto.randomUUID().replace(/-/g, '');
}
