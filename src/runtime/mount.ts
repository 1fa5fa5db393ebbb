// mount(2) and umount2(2) through the helper, for the snapshotters.
import { runHelper } from './binary.js';

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
