// A snapshotter speaks in directories and mounts only, with containerd's verbs: it prepares a
// writable snapshot on a committed one, views a committed one read-only, says how to mount
// either (data, not a mount: runtime/types.ts's Mount), commits and removes. It knows nothing of
// tar, digests, images or Dockerfiles: the differ (src/layer/differ.ts) turns mounts into layer
// tars and back, and the store connects the two. Adding a driver is one new file.
//
// Keys are the store's cache-ids: a snapshot keeps its key when committed, so a layer record's
// cache-id names its directory, as in Docker's layout.
import { rm } from 'node:fs/promises';
import type { Mount } from '../runtime/types.js';

export type DriverName = 'overlay2' | 'vfs';

/**
 * Docker's `<id>-init` layer: files every container needs that belong to no image. The driver
 * places them between the parent and the snapshot so they are never part of its changes, and
 * returns them as bind mounts so a step writing /etc/hosts writes to the init file, not to the
 * snapshot (Docker bind-mounts them for the same reason).
 */
export interface InitLayer {
  /** Path inside the rootfs (e.g. `etc/hosts`) → content. */
  readonly files: Readonly<Record<string, string>>;
  /** Mount points the runtime needs (e.g. `proc`, `dev`, `sys`). */
  readonly dirs: readonly string[];
}

export interface PrepareOptions {
  readonly init?: InitLayer;
}

export interface Snapshotter {
  readonly name: DriverName;
  /** `<root>/<driver>`: where the snapshot directories live. */
  readonly home: string;

  /**
   * Creates the writable snapshot `key` on the committed snapshot `parent` (none: an empty
   * bottom) and returns its mounts: the root, and with `init` the init files to bind over it.
   */
  prepare(key: string, parent: string | undefined, opts?: PrepareOptions): Promise<Mount[]>;
  /** Read-only mounts of the committed snapshot `parent` (none: an empty list). Creates nothing. */
  view(parent: string | undefined): Promise<Mount[]>;
  /** The mounts of the active snapshot `key`, as prepare returned them. */
  mounts(key: string): Promise<Mount[]>;
  /** Freezes `key` (dropping its init layer): from now on it can be a parent and be viewed. */
  commit(key: string): Promise<void>;
  /**
   * Deletes `key`, active or committed. Missing is fine. Its big directory trees go through
   * `removeTrees` when given (the store hands them to a remover that outlives an interrupted
   * build); the snapshot is gone from the snapshotter's view when this returns either way.
   */
  remove(key: string, removeTrees?: RemoveTrees): Promise<void>;
  /** The keys present on disk (init layers included: `<key>-init`). */
  list(): Promise<string[]>;
  /**
   * A writable overlay of `lower` (a directory it does not manage) whose writes go to `upper`,
   * mounted the way this snapshotter mounts its own (kernel overlayfs with its options, or
   * fuse-overlayfs): RUN --mount=type=bind,rw. Undefined for a snapshotter that mounts no
   * overlay (vfs): the caller copies `lower` instead.
   */
  scratchOverlay?(cwd: string, lower: string, upper: { dir: string; work: string }): Mount;
  /** Where a committed snapshot's own files are read from to rebuild its layer tar. */
  fileRoot(key: string): string;
  /** `docker image inspect`'s GraphDriver.Data for an image whose layers are these snapshots, bottom first. */
  describe(stack: readonly string[]): Record<string, string> | null;
}

/** Removes whole directory trees that exist (a snapshot's files, its init layer). */
export type RemoveTrees = (dirs: readonly string[]) => Promise<void>;

/** RemoveTrees in this process: what every removal does unless told otherwise. */
export async function removeTreesNow(dirs: readonly string[]): Promise<void> {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

/** A fresh snapshot key: 64 hex digits, like Docker's cache-ids. */
export function newSnapshotKey(): string {
  return crypto.randomUUID().replace(/-/g, '') + crypto.randomUUID().replace(/-/g, '');
}
