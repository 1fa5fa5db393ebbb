// Startup repair: what a tsbuild process killed mid-work (kill -9, OOM, power) leaves behind,
// removed by the next command that opens the store. Everything tsbuild writes temporarily is
// recognizable and names its owner:
//   - snapshot directories: listed in their owner's lease (src/store/leases.ts) until a layer
//     record names them; a snapshot neither committed nor leased by a live process is an orphan,
//   - temporary names carry the owner's PID: `<root>/tmp/<what>-<pid>-<random>`,
//     `layerdb/tmp/write-set-<pid>-*`, `.tmp-<file>-<pid>-*` beside every atomically written
//     file, `overlay2/.probe-<pid>-*`,
//   - mounts below the root are rootfs mounts in the owner's temp dirs (`tmp/rootfs-<pid>-*`),
//     or overlay2 snapshots' `merged` dirs (where a store's earlier writers mounted them: a store
//     outlives the tsbuild that wrote it).
// Layer records, image configs, index records and repositories.json are never half-written (they are renamed
// into place whole), so there is nothing to mend in them: a layer published by a process that
// died before storing its image is merely unused, and prune removes it as Docker's does.
//
// Repair runs only when some process died holding a lease (a lease outlives only a process that
// did not exit normally); finding none costs one readdir. It runs under the store lock, and
// never touches what a live process owns.
import { lstat, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { realpath } from 'node:fs/promises';
import { mountsUnder, unmount } from '../runtime/helper.js';
import { TEMP_PREFIX, sweepTemps } from '../fs/atomic.js';
import { isAlive, ownerGone, ownerPid, scanLeases } from './leases.js';
import type { StoreParts } from './parts.js';

export interface RepairReport {
  readonly unmounted: readonly string[];
  readonly removedSnapshots: readonly string[];
  readonly removedTemps: readonly string[];
  readonly deadLeases: readonly string[];
}

/**
 * A temporary name whose owner is gone. A name that carries no PID is not judged: it may belong
 * to a live process of an older tsbuild, and removing a live process's file is worse than
 * keeping a dead one's.
 */
function deadName(name: string): boolean {
  const pid = ownerPid(name);
  return pid !== undefined && !isAlive(pid);
}

/**
 * An atomic write's `.tmp-` file whose owner is gone, its PID perhaps given to a live process
 * since (leases.ts ownerGone). Judged by its ctime, which no one can set back, and only for a
 * plain file: a directory may be a mount point, whose times are those of what is mounted there
 * (see deadTempDir).
 */
async function deadTempFile(name: string, path: string): Promise<boolean> {
  if (deadName(name)) return true;
  const st = await lstat(path).catch(() => undefined);
  return st !== undefined && st.isFile() && ownerGone(name, st.ctimeMs);
}

/**
 * A temp dir whose owner is gone, its PID perhaps given to a live process since. A directory's
 * ctime moves whenever an entry is added or removed in it, always by its owner, so a holder of
 * the PID that started after that was never its owner. Only for a directory with no mount at or
 * below it (`mounted`): a mount point's times are the mounted tree's, so those keep deadName's
 * rule.
 */
async function deadTempDir(name: string, path: string, mounted: readonly string[]): Promise<boolean> {
  if (deadName(name)) return true;
  if (mounted.some((m) => m === path || m.startsWith(`${path}${sep}`))) return false;
  const st = await lstat(path).catch(() => undefined);
  return st !== undefined && ownerGone(name, st.ctimeMs);
}

/** The repair itself; call holding the store lock. */
export async function repair(parts: StoreParts): Promise<RepairReport> {
  const { live, dead } = await scanLeases(parts.paths.leases);
  const own = parts.lease.record();
  const liveSnapshots = new Set([...live, own].flatMap((l) => l.snapshots));
  const snapshotIsLive = (id: string): boolean => liveSnapshots.has(id.replace(/-init$/, ''));
  const root = await realpath(parts.root);
  const home = resolve(root, relative(parts.root, parts.snapshotter.home));

  // 1. Mounts below the root whose owner is gone: a snapshot's merged dir, or a mount inside a
  //    dead process's temp dir. Anything else was not mounted by tsbuild and stays.
  const unmounted: string[] = [];
  const mounts = await mountsUnder(root);
  for (const m of mounts) {
    if (m === root) continue;
    const path = relative(root, m).split(sep);
    let dead: boolean | undefined;
    if (m.startsWith(`${home}${sep}`)) {
      const first = relative(home, m).split(sep)[0]!;
      if (first.startsWith('.probe-')) dead = deadName(first);
      else if (parts.snapshotter.name === 'overlay2') dead = first !== 'l' && !snapshotIsLive(first);
      else if (first === 'dir' || first === 'init') dead = !snapshotIsLive(relative(home, m).split(sep)[1] ?? '');
    } else if (path[0] === 'tmp' && path[1] !== undefined) {
      dead = deadName(path[1]);
    }
    if (dead) {
      await unmount(m, { detach: true });
      unmounted.push(m);
    }
  }

  // 2. Snapshots no layer record names and no live process leases.
  const committed = new Set((await parts.layers.list()).map((l) => l.cacheId));
  const removedSnapshots: string[] = [];
  for (const id of await parts.snapshotter.list()) {
    if (committed.has(id) || snapshotIsLive(id)) continue;
    if (id.startsWith('.')) continue;
    await parts.snapshotter.remove(id);
    removedSnapshots.push(id);
  }

  // 3. Temporary files and directories of dead processes.
  const removedTemps: string[] = [];
  const sweepAll = async (dir: string, isTemp: (name: string) => boolean): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    const stillMounted = mounts.filter((m) => !unmounted.includes(m));
    const inRoot = resolve(root, relative(parts.root, dir));
    for (const n of names) {
      if (!isTemp(n) || !(await deadTempDir(n, join(inRoot, n), stillMounted))) continue;
      await rm(join(dir, n), { recursive: true, force: true });
      removedTemps.push(join(dir, n));
    }
  };
  await sweepAll(parts.paths.tmp, () => true);
  await sweepAll(parts.layers.tmpDir, () => true);
  await sweepAll(parts.snapshotter.home, (n) => n.startsWith('.probe-'));
  const meta = parts.paths.meta;
  const metadata = join(parts.images.dir, 'metadata', 'sha256');
  const dirs = [
    meta,
    parts.paths.buildcache,
    parts.paths.contexthash,
    parts.paths.treememo,
    parts.paths.distribution,
    join(parts.images.dir, 'content', 'sha256'),
    parts.indexes.contentDir,
    metadata,
  ];
  for (const name of await readdir(metadata).catch(() => [] as string[])) {
    if (!name.startsWith(TEMP_PREFIX)) dirs.push(join(metadata, name));
  }
  for (const d of dirs) removedTemps.push(...(await sweepTemps(d, deadTempFile)));

  // 4. overlay2's short links whose snapshot is gone.
  if (parts.snapshotter.name === 'overlay2') {
    const links = join(parts.snapshotter.home, 'l');
    for (const name of await readdir(links).catch(() => [] as string[])) {
      const target = await readlink(join(links, name)).catch(() => undefined);
      if (target === undefined) continue;
      const exists = await stat(join(links, target)).then(
        () => true,
        () => false,
      );
      if (!exists) {
        await rm(join(links, name), { force: true });
        removedTemps.push(join(links, name));
      }
    }
  }

  // 5. Last, the dead leases: until now they were what told a command to repair.
  for (const name of dead) await rm(join(parts.paths.leases, name), { force: true });
  return { unmounted, removedSnapshots, removedTemps, deadLeases: dead };
}
