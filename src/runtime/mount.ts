// mount(2) and umount2(2) through the helper (its one long-lived `serve` process: served.ts): single mounts for the storage probe and repair, and
// a snapshot's Mount list (runtime/types.ts) turned into a root filesystem to work in.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TsbuildError } from '../errors.js';
import { helperPath } from './binary.js';
import { mountsUnder } from './mountinfo.js';
import { runServed } from './served.js';
import { exited } from './spawn.js';
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
  await runServed(args);
}

/** Unmount TARGET; `detach` (MNT_DETACH) detaches it now and frees it once it is no longer busy. */
export async function unmount(target: string, opts: { detach?: boolean } = {}): Promise<void> {
  await runServed(['umount', ...(opts.detach ? ['--detach'] : []), '--', target]);
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
  /**
   * The upper directory, when the rootfs is the kernel's overlayfs over one. A directory made
   * through the mount where nothing was before has no lower directory merged into it: it is
   * the same directory here, with the same path, and may be filled here directly
   * (builder/copy.ts). Not for fuse-overlayfs, whose upper dir conventions are its own.
   */
  readonly upperDir?: string;
  /** The marker a `volatile` overlay leaves in its work dir (volatileMarker), removed after the unmount. */
  readonly volatileMarker?: string;
}

/**
 * Where a `volatile` overlay marks its work dir (`<workdir>/work/incompat/volatile`): the kernel
 * refuses to mount that upper and work dir again while the marker is there, since what an
 * unsynced mount wrote may be lost in a crash. The marker is ours to remove: after the unmount
 * (so a layer's directory holds what Docker's would), and before a mount, where a killed
 * process left one.
 */
function volatileMarker(m: OverlayMount): string | undefined {
  if (m.upper === undefined || m.program !== undefined || !m.options.includes('volatile')) return undefined;
  return resolve(m.cwd, m.upper.work, 'work', 'incompat');
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
  const marker = volatileMarker(root);
  await Promise.all([
    mkdir(dir, { recursive: true, mode: 0o700 }),
    marker !== undefined ? rm(marker, { recursive: true, force: true }) : undefined,
  ]);
  await mountOverlay(root, dir);
  const upperDir = root.upper !== undefined && root.program === undefined ? resolve(root.cwd, root.upper.dir) : undefined;
  return {
    rootfs: dir,
    binds,
    mountpoint: dir,
    ...(upperDir !== undefined ? { upperDir } : {}),
    ...(marker !== undefined ? { volatileMarker: marker } : {}),
  };
}

/** Undoes mountRootfs. */
export async function unmountRootfs(m: MountedRootfs): Promise<void> {
  if (m.mountpoint !== undefined) await unmount(m.mountpoint);
  if (m.volatileMarker !== undefined) await rm(m.volatileMarker, { recursive: true, force: true });
}

async function mountOverlay(m: OverlayMount, target: string): Promise<void> {
  if (m.program === 'fuse-overlayfs') {
    await mountFuseOverlay({ cwd: m.cwd, lowerdirs: m.lowerdirs, ...(m.upper ? { upper: m.upper } : {}), options: m.options }, target);
    return;
  }
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

/** The helper's exit status when it cannot find the program to run, a shell's. */
const NOT_FOUND = 127;

/** Where a FUSE overlay mount failed: fuse-overlayfs's own words. */
export class FuseOverlayError extends TsbuildError {}

/**
 * Mounts an overlay with fuse-overlayfs (the storage of rootless podman and buildah on kernels
 * that refuse overlayfs in a user namespace). It takes the same lowerdir/upperdir/workdir
 * options; relative paths resolve against `cwd`. It runs in the foreground, as our child under
 * `tsbuild-helper die-with-parent` (native/helper/pdeath.c), and serves the mount until it is
 * unmounted, which `unmount` does as for any other mount (umount2 as root of the namespace: no
 * fusermount3 needed). Daemonized, as it would by itself, it outlived a tsbuild killed mid-step,
 * serving a mount no later command could reach; killed with tsbuild, it cannot.
 */
export async function mountFuseOverlay(
  m: { cwd: string; lowerdirs: readonly string[]; upper?: { dir: string; work: string }; options: readonly string[] },
  target: string,
): Promise<void> {
  const opts = [`lowerdir=${m.lowerdirs.join(':')}`];
  if (m.upper !== undefined) opts.push(`upperdir=${m.upper.dir}`, `workdir=${m.upper.work}`);
  opts.push(...m.options);
  const args = ['die-with-parent', String(process.pid), '--', 'fuse-overlayfs', '-f', '-o', opts.join(','), target];
  const child = spawn(helperPath(), args, { cwd: m.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const ended = exited(child);
  // Ready once the kernel's table has the mount; failed if the program ends first.
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    const done = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), wait))]);
    if (done !== undefined) break;
    if ((await mountsUnder(target)).includes(target)) {
      // It runs on by itself; its stderr is drained so that a word from it never blocks it.
      child.unref();
      (child.stderr as Socket).unref();
      return;
    }
  }
  const status = await ended;
  // fuse-overlayfs 1.10 says `unknown argument ignored: lazytime` on every mount: not an error.
  const said = stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('unknown argument ignored'))
    .join('; ');
  const why =
    status.exitCode === NOT_FOUND
      ? 'fuse-overlayfs is not installed (Debian: apt-get install fuse-overlayfs)'
      : said || `exit ${status.exitCode ?? status.signal}`;
  throw new FuseOverlayError(`fuse-overlayfs on ${target}: ${why}`);
}
