// Driver choice as Docker makes it: a driver already holding images in this root keeps being
// used; otherwise overlay2 when the backing filesystem can carry it (d_type, and a real test
// mount succeeds), else vfs, which works anywhere. A forced choice is checked the same way.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TsbuildError } from '../errors.js';
import { mount, unmount, supportsDType } from '../runtime/helper.js';
import { inUserNamespace } from '../runtime/userns.js';
import type { DriverName, Snapshotter } from './snapshotter.js';
import { Overlay2Snapshotter } from './overlay2.js';
import { VfsSnapshotter } from './vfs.js';

export const DRIVERS: readonly DriverName[] = ['overlay2', 'vfs'];

export interface DriverChoice {
  readonly snapshotter: Snapshotter;
  /** One sentence for `tsbuild info`. */
  readonly reason: string;
}

export function isDriverName(s: string): s is DriverName {
  return (DRIVERS as readonly string[]).includes(s);
}

function create(name: DriverName, root: string): Snapshotter {
  return name === 'overlay2' ? new Overlay2Snapshotter(join(root, 'overlay2')) : new VfsSnapshotter(join(root, 'vfs'));
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

export async function chooseDriver(root: string, forced?: DriverName): Promise<DriverChoice> {
  if (forced) {
    if (forced === 'overlay2') {
      const why = await overlayUnsupported(root);
      if (why) throw new TsbuildError(`storage driver overlay2 is not usable here: ${why}`);
    }
    return { snapshotter: create(forced, root), reason: `chosen with --storage-driver ${forced}` };
  }
  for (const name of DRIVERS) {
    if (await hasImages(root, name)) {
      return { snapshotter: create(name, root), reason: `${root} already holds ${name} images` };
    }
  }
  const why = await overlayUnsupported(root);
  if (why === undefined) {
    const reason = inUserNamespace()
      ? 'the backing filesystem supports d_type and a test overlay mount with userxattr succeeded in the user namespace (whiteouts and opaque directories are kept in user.overlay.* xattrs)'
      : 'the backing filesystem supports d_type and a test overlay mount succeeded';
    return { snapshotter: create('overlay2', root), reason };
  }
  return { snapshotter: create('vfs', root), reason: `overlay2 is unavailable (${why}); vfs copies each layer instead` };
}
