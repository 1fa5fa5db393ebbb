// Driver choice as Docker makes it: a driver already holding images in this root keeps being
// used; otherwise overlay2 when the backing filesystem can carry it (d_type, and a real test
// mount succeeds), else vfs, which works anywhere. A forced choice is checked the same way.
//
// In a user namespace (rootless, runtime/userns.ts) overlay2 has a second way to mount its
// directories, as rootless podman has: when the kernel refuses overlayfs there (before Linux
// 5.11), the FUSE program fuse-overlayfs mounts the same layout. `--storage-driver
// fuse-overlayfs` (or TSBUILD_STORAGE_DRIVER) asks for it anywhere, for tests.
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TsbuildError } from '../errors.js';
import { mount, mountFuseOverlay, unmount, supportsDType } from '../runtime/helper.js';
import { inUserNamespace } from '../runtime/userns.js';
import type { DriverName, Snapshotter } from './snapshotter.js';
import { Overlay2Snapshotter, type OverlayMounter } from './overlay2.js';
import { VfsSnapshotter } from './vfs.js';

export const DRIVERS: readonly DriverName[] = ['overlay2', 'vfs'];

/** What --storage-driver accepts: a driver, or overlay2 mounted by fuse-overlayfs. */
export type DriverRequest = DriverName | 'fuse-overlayfs';
export const DRIVER_REQUESTS: readonly DriverRequest[] = ['overlay2', 'vfs', 'fuse-overlayfs'];

/** The environment's default for --storage-driver. */
export const STORAGE_DRIVER_ENV = 'TSBUILD_STORAGE_DRIVER';

export interface DriverChoice {
  readonly snapshotter: Snapshotter;
  /** One sentence for `tsbuild info`. */
  readonly reason: string;
}

export function isDriverRequest(s: string): s is DriverRequest {
  return (DRIVER_REQUESTS as readonly string[]).includes(s);
}

function create(name: DriverName, root: string, mounter: OverlayMounter = 'kernel'): Snapshotter {
  return name === 'overlay2' ? new Overlay2Snapshotter(join(root, 'overlay2'), mounter) : new VfsSnapshotter(join(root, 'vfs'));
}

async function hasImages(root: string, name: DriverName): Promise<boolean> {
  try {
    return (await readdir(join(root, 'image', name, 'imagedb', 'content', 'sha256'))).length > 0;
  } catch {
    return false;
  }
}

/** Why overlay2 cannot be used under `root`, or undefined if it can. */
export async function overlayUnsupported(root: string): Promise<string | undefined> {
  const home = join(root, 'overlay2');
  await mkdir(home, { recursive: true, mode: 0o700 });
  if (!(await supportsDType(home))) {
    return `the filesystem under ${home} does not report d_type, which overlayfs needs`;
  }
  // `.probe-<pid>-*`: if this process dies mid-probe, repair knows the mount is no one's.
  const probe = join(home, `.probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(probe, d), { recursive: true });
    try {
      await mount({
        type: 'overlay',
        source: 'overlay',
        target: join(probe, 'merged'),
        // In a user namespace overlayfs needs `userxattr`, as the driver then mounts it (overlay2.ts).
        options: `lowerdir=lower,upperdir=upper,workdir=work${inUserNamespace() ? ',userxattr' : ''}`,
        cwd: probe,
      });
    } catch (err) {
      return `a test overlay mount failed: ${(err as Error).message}`;
    }
    await unmount(join(probe, 'merged'));
    return undefined;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

/** Why fuse-overlayfs cannot mount overlay2's layout under `root`, or undefined if it can. */
export async function fuseOverlayUnsupported(root: string): Promise<string | undefined> {
  const home = join(root, 'overlay2');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const probe = join(home, `.probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(probe, d), { recursive: true });
    try {
      await mountFuseOverlay(
        { cwd: probe, lowerdirs: ['lower'], upper: { dir: 'upper', work: 'work' }, options: [] },
        join(probe, 'merged'),
      );
    } catch (err) {
      // The usual cause in a user namespace: /dev/fuse is not open to the user (mode 0600).
      return `a test fuse-overlayfs mount failed: ${(err as Error).message}`;
    }
    await unmount(join(probe, 'merged'));
    return undefined;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

function requested(forced: DriverRequest | undefined): { request: DriverRequest; how: string } | undefined {
  if (forced) return { request: forced, how: `--storage-driver ${forced}` };
  const env = process.env[STORAGE_DRIVER_ENV];
  if (env === undefined || env === '') return undefined;
  if (!isDriverRequest(env))
    throw new TsbuildError(`${STORAGE_DRIVER_ENV}=${env}: unknown storage driver (use ${DRIVER_REQUESTS.join(', ')})`);
  return { request: env, how: `${STORAGE_DRIVER_ENV}=${env}` };
}

const FUSE_REASON = 'fuse-overlayfs mounts the overlay2 layout (whiteouts and opaque directories as fuse-overlayfs writes them)';

/**
 * `<root>/overlay2/.fuse-overlayfs`: layers here were written through fuse-overlayfs. Its upper
 * dirs mark opaque directories in ways the kernel's overlayfs does not read (a `.wh..wh..opq`
 * file, user.fuseoverlayfs.opaque), so such a store keeps being mounted by fuse-overlayfs, as a
 * store holding images keeps its driver.
 */
const FUSE_MARK = '.fuse-overlayfs';

async function fuseMarked(root: string): Promise<boolean> {
  return access(join(root, 'overlay2', FUSE_MARK)).then(
    () => true,
    () => false,
  );
}

async function fuseChoice(root: string, reason: string): Promise<DriverChoice> {
  await writeFile(join(root, 'overlay2', FUSE_MARK), 'The layers under this directory were written through fuse-overlayfs.\n');
  return { snapshotter: create('overlay2', root, 'fuse-overlayfs'), reason };
}

export async function chooseDriver(root: string, forced?: DriverRequest): Promise<DriverChoice> {
  const asked = requested(forced);
  if (asked) {
    if (asked.request === 'fuse-overlayfs') {
      const why = await fuseOverlayUnsupported(root);
      if (why) throw new TsbuildError(`storage driver fuse-overlayfs is not usable here: ${why}`);
      return fuseChoice(root, `chosen with ${asked.how}: ${FUSE_REASON}`);
    }
    if (asked.request === 'overlay2') {
      if (await fuseMarked(root)) {
        throw new TsbuildError(
          `storage driver overlay2: ${root} was written through fuse-overlayfs, which the kernel's overlayfs cannot read (use --storage-driver fuse-overlayfs)`,
        );
      }
      const why = await overlayUnsupported(root);
      if (why) throw new TsbuildError(`storage driver overlay2 is not usable here: ${why}`);
    }
    return { snapshotter: create(asked.request, root), reason: `chosen with ${asked.how}` };
  }
  if (await fuseMarked(root)) {
    const why = await fuseOverlayUnsupported(root);
    if (why) throw new TsbuildError(`${root} was written through fuse-overlayfs, which no longer mounts here: ${why}`);
    return fuseChoice(root, `${root} was written through fuse-overlayfs; ${FUSE_REASON}`);
  }
  for (const name of DRIVERS) {
    if (await hasImages(root, name)) {
      if (name === 'overlay2' && inUserNamespace()) {
        // Whether the kernel mounts overlayfs here is the kernel's to say, not the store's: ask it.
        const choice = await overlayInUserNamespace(root);
        if ('unavailable' in choice) throw new TsbuildError(`${root} holds overlay2 images, but ${choice.unavailable}`);
        return { snapshotter: choice.snapshotter, reason: `${root} already holds overlay2 images; ${choice.reason}` };
      }
      return { snapshotter: create(name, root), reason: `${root} already holds ${name} images` };
    }
  }
  if (inUserNamespace()) {
    const choice = await overlayInUserNamespace(root);
    if ('unavailable' in choice)
      return { snapshotter: create('vfs', root), reason: `${choice.unavailable}; vfs copies each layer instead` };
    return choice;
  }
  const why = await overlayUnsupported(root);
  if (why === undefined) {
    return { snapshotter: create('overlay2', root), reason: 'the backing filesystem supports d_type and a test overlay mount succeeded' };
  }
  return { snapshotter: create('vfs', root), reason: `overlay2 is unavailable (${why}); vfs copies each layer instead` };
}

/** overlay2 in a user namespace: the kernel's overlayfs with userxattr, else fuse-overlayfs. */
async function overlayInUserNamespace(root: string): Promise<DriverChoice | { unavailable: string }> {
  const kernel = await overlayUnsupported(root);
  if (kernel === undefined) {
    return {
      snapshotter: create('overlay2', root),
      reason:
        'the backing filesystem supports d_type and a test overlay mount with userxattr succeeded in the user namespace (whiteouts and opaque directories are kept in user.overlay.* xattrs)',
    };
  }
  const fuse = await fuseOverlayUnsupported(root);
  if (fuse === undefined) {
    return fuseChoice(root, `the kernel refused overlayfs in the user namespace (${kernel}); ${FUSE_REASON}`);
  }
  return { unavailable: `overlay2 is unavailable (${kernel}; ${fuse})` };
}
