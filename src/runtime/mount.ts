// mount(2) and umount2(2) through the helper: single mounts for the storage probe and repair, and
// a snapshot's Mount list (runtime/types.ts) turned into a root filesystem to work in.
import { mkdir } from 'node:fs/promises';
import { runHelper } from './binary.js';
import type { BindMount, Mount, OverlayMount } from './types.js';

export interface MountSpec {
  /** Filesystem type: overlay, tmpfs, ... (ignored by the kernel for bind mounts). */
  readonly type: string;
  readonly source: string;
  readonly target: string;
  /** Comma-separated, as for mount(8): generic words (ro, nosuid, bind...) become flags, the rest goes to the filesystem. */
  readonly options: string;
  /**
   * Working directory for the mount call. Relative paths in `options` (overlay's
   * `lowerdir=l/ABC:l/DEF`) resolve against it: that is how a long layer chain stays
   * within the kernel's one-page limit on mount options.
   */
  readonly cwd?: string;
  /**
   * Overlay only: the lower layers one by one, top first, instead of `lowerdir=` in
   * `options`. For chains too long for one page even with short links; each layer goes
   * through fsconfig(2) separately (Linux 6.8+). Relative paths resolve against `cwd`.
   */
  readonly lowerdirs?: readonly string[];
  /** With `lowerdirs`: the overlay's upper and work directories. */
  readonly upperdir?: string;
  readonly workdir?: string;
}

export async function mount(m: MountSpec): Promise<void> {
  const args = ['mount', '--type', m.type, '--source', m.source, '--options', m.options];
  if (m.cwd !== undefined) args.push('--cwd', m.cwd);
  for (const lower of m.lowerdirs ?? []) args.push('--lowerdir', lower);
  if (m.upperdir !== undefined) args.push('--upperdir', m.upperdir);
  if (m.workdir !== undefined) args.push('--workdir', m.workdir);
  args.push('--', m.target);
  await runHelper(args);
}

/** Unmount TARGET; `detach` (MNT_DETACH) detaches it now and frees it once it is no longer busy. */
export async function unmount(target: string, opts: { detach?: boolean } = {}): Promise<void> {
  await runHelper(['umount', ...(opts.detach ? ['--detach'] : []), '--', target]);
}

/** The kernel copies mount options into a single page. */
const PAGE_SIZE = 4096;

/** A snapshot presented as a root filesystem. */
export interface MountedRootfs {
  /** The directory holding the whole filesystem. */
  readonly rootfs: string;
  /** Files bound over paths inside it (the init layer's), for the helper to mount in its namespace. */
  readonly binds: readonly BindMount[];
  /** The mount point to unmount when done; undefined when the rootfs is a directory used in place. */
  readonly mountpoint: string | undefined;
}

/**
 * Presents `mounts` as one root filesystem. A bind of a whole directory is used in place (the
 * helper binds the rootfs onto itself before pivot_root anyway, so a mount here would only cost a
 * helper call); an overlay is mounted at the directory `target()` makes. No root mount at all
 * means an empty filesystem (a view of no layers): an empty directory from `target()`.
 */
export async function mountRootfs(mounts: readonly Mount[], target: () => Promise<string>): Promise<MountedRootfs> {
  const root = mounts.find((m) => m.target === undefined);
  const binds = mounts.filter((m): m is BindMount => m.type === 'bind' && m.target !== undefined);
  if (root === undefined) return { rootfs: await target(), binds, mountpoint: undefined };
  if (root.type === 'bind') return { rootfs: root.source, binds, mountpoint: undefined };
  const dir = await target();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mountOverlay(root, dir);
  return { rootfs: dir, binds, mountpoint: dir };
}

/** Undoes mountRootfs. */
export async function unmountRootfs(m: MountedRootfs): Promise<void> {
  if (m.mountpoint !== undefined) await unmount(m.mountpoint);
}

async function mountOverlay(m: OverlayMount, target: string): Promise<void> {
  const layers = [`lowerdir=${m.lowerdirs.join(':')}`];
  if (m.upper !== undefined) layers.push(`upperdir=${m.upper.dir}`, `workdir=${m.upper.work}`);
  const options = [...layers, ...m.options].join(',');
  if (Buffer.byteLength(options) < PAGE_SIZE) {
    await mount({ type: 'overlay', source: 'overlay', target, options, cwd: m.cwd });
    return;
  }
  // Too long for one page even with short links: each layer through fsconfig(2) (Linux 6.8+).
  await mount({
    type: 'overlay',
    source: 'overlay',
    target,
    options: m.options.join(','),
    cwd: m.cwd,
    lowerdirs: m.lowerdirs,
    ...(m.upper !== undefined ? { upperdir: m.upper.dir, workdir: m.upper.work } : {}),
  });
}
