// The bench's default work directory: a journaled ext4 made for the run, a `mkfs.ext4` with its
// default options on a sparse image file, loop-mounted. Why: a root filesystem that is an ext4
// without a journal (this project's VMs) skips inodes freed in the last minute when it allocates
// new ones, so a workload that follows a removal of 20,000 files (W2, after the floor's or a
// peer's cleanup) swung by seconds for every tool (docs/performance.md). On a journaled ext4 no
// tool pays for that. `--work-dir` still puts the run wherever it is told.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Sparse: only what the run writes takes space on the disk below (the bench needs ~5 GB). */
const IMAGE_BYTES = 32 * 2 ** 30;

export interface WorkFs {
  /** The mounted filesystem's root, where the run's scratch directory goes. */
  readonly dir: string;
  /** The image file, for messages. */
  readonly image: string;
  /** Unmounts the filesystem and removes the image; safe to call more than once. */
  remove(): Promise<void>;
}

function sh(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message} (Debian: apt-get install e2fsprogs mount)`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
}

/** A fresh journaled ext4 under `base`, mounted; removed by `remove()` (the Session calls it last). */
export async function journaledWorkFs(base: string): Promise<WorkFs> {
  await mkdir(base, { recursive: true });
  const home = await mkdtemp(join(base, 'tsb-ext4-'));
  const image = join(home, 'ext4.img');
  const dir = join(home, 'mnt');
  let mounted = false;
  let removing: Promise<void> | undefined;
  const remove = (): Promise<void> =>
    (removing ??= (async () => {
      if (mounted) {
        // A lazy unmount if something still holds it: the loop device goes once it is let go.
        const r = spawnSync('umount', [dir]);
        if (r.status !== 0) sh(['umount', '-l', dir]);
        mounted = false;
      }
      await rm(image, { force: true });
      await rmdir(dir).catch(() => undefined);
      await rmdir(home);
    })());
  try {
    // Searchable: --peers rootless runs as an ordinary user below it.
    await chmod(home, 0o711);
    await mkdir(dir);
    sh(['truncate', '-s', String(IMAGE_BYTES), image]);
    sh(['mkfs.ext4', '-q', '-F', image]);
    // -o loop: mount sets up the loop device and frees it at the unmount (autoclear).
    // noinit_itable: no ext4lazyinit thread zeroing the 32 GiB's inode tables in the background
    // through the run's first minutes, where it slowed the first workloads' fsyncs for every tool.
    sh(['mount', '-o', 'loop,noinit_itable', image, dir]);
    mounted = true;
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
  return { dir, image, remove };
}
