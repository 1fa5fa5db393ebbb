// All overlay2 layout knowledge lives here (moby's overlay2 driver is the model):
//   <home>/<key>/diff   the snapshot's own files: an upperdir while active, a lowerdir after
//   <home>/<key>/work   overlay's scratch dir, same filesystem as diff
//   <home>/<key>/link   the snapshot's 26-character short name
//   <home>/<key>/lower  the parents' short links, top first: `l/AAA:l/BBB`
//   <home>/<key>-init/  Docker's init layer of an active snapshot (same shape, no lower)
//   <home>/l/<short> -> ../<key>/diff
// Lower chains are given with the short links, relative to <home>, because the whole mount
// option string must fit in one page: absolute paths would cap an image at a few dozen layers.
//
// Two ways to mount the same directories (OverlayMount.program): the kernel's overlayfs, or
// fuse-overlayfs where the kernel refuses overlayfs in a user namespace (choose.ts decides). The
// layout, and so the store, is Docker's either way.
import { exists } from '../fs/exists.js';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import type { BindMount, Mount, OverlayMount } from '../runtime/types.js';
import { inUserNamespace } from '../runtime/userns.js';
import { removeTreesNow, type InitLayer, type PrepareOptions, type RemoveTrees, type Snapshotter } from './snapshotter.js';

const LINK_DIR = 'l';
const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Below this depth, overlayfs refuses the stack (OVL_MAX_STACK). */
export const MAX_LOWER_LAYERS = 500;

function newLinkName(): string {
  let s = '';
  for (let i = 0; i < 26; i++) s += LINK_ALPHABET[randomInt(LINK_ALPHABET.length)];
  return s;
}

/**
 * Options that make the upperdir a complete change set. Docker turns `index` off; we also turn
 * off redirect_dir and metacopy, which would otherwise let a rename or chmod leave data in lower
 * layers that a diff of the upperdir alone cannot express. Passed only when the kernel knows
 * them (its module exposes a parameter of that name).
 */
function diffSafeOptions(): string[] {
  const params = '/sys/module/overlay/parameters';
  if (inUserNamespace()) {
    // Rootless (runtime/userns.ts): overlayfs may keep its xattrs only in user.overlay.*
    // (`userxattr`), which implies redirect_dir=nofollow and metacopy=off and refuses
    // redirect_dir=off. The differ reads the option back from the mount (whiteout.ts).
    return ['userxattr', ...['index', 'metacopy'].filter((p) => existsSync(join(params, p))).map((p) => `${p}=off`)];
  }
  return ['index', 'redirect_dir', 'metacopy'].filter((p) => existsSync(join(params, p))).map((p) => `${p}=off`);
}

/**
 * `volatile` (Linux 5.10+) for overlays with an upper dir. Without it, unmounting an overlay
 * syncs the whole filesystem under its upper dir (overlayfs's sync_fs): every RUN step, and every
 * COPY through a mount, waited for a journal commit and for the disk to take whatever any
 * process had written there, 256 MB after W3's RUN. A layer's files are then in the page cache
 * and written out by the kernel later, as those of a COPY or a pulled layer always were: a
 * killed tsbuild loses nothing, a power cut is not covered (docs/reliability.md), and the
 * store's records are fsynced as before. BuildKit-based Dagger mounts its overlays so too. The
 * runtime clears the marker volatile leaves in the work dir (runtime/mount.ts).
 */
function volatileOption(): string[] {
  const [major = 0, minor = 0] = release()
    .split('.')
    .map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 10) ? ['volatile'] : [];
}

/** Who mounts the overlay: the kernel, or the FUSE program fuse-overlayfs. */
export type OverlayMounter = 'kernel' | 'fuse-overlayfs';

function initKey(key: string): string {
  return `${key}-init`;
}

export class Overlay2Snapshotter implements Snapshotter {
  readonly name = 'overlay2' as const;
  /** The kernel's options; fuse-overlayfs takes none of them (it has no index, redirect or metacopy). */
  private readonly extraOptions: readonly string[];
  /** The kernel's options for a writable overlay (volatileOption). */
  private readonly upperOptions: readonly string[];

  constructor(
    readonly home: string,
    readonly mounter: OverlayMounter = 'kernel',
  ) {
    this.extraOptions = mounter === 'kernel' ? diffSafeOptions() : [];
    this.upperOptions = mounter === 'kernel' ? [...this.extraOptions, ...volatileOption()] : [];
  }

  /** How an overlay of this snapshotter is mounted. */
  private overlay(lowerdirs: readonly string[], upper?: { dir: string; work: string }): OverlayMount {
    return {
      type: 'overlay',
      cwd: this.home,
      lowerdirs,
      ...(upper ? { upper } : {}),
      options: upper ? this.upperOptions : this.extraOptions,
      ...(this.mounter === 'fuse-overlayfs' ? { program: 'fuse-overlayfs' as const } : {}),
    };
  }

  scratchOverlay(cwd: string, lower: string, upper: { dir: string; work: string }): Mount {
    return { ...this.overlay([lower], upper), cwd };
  }

  private dir(key: string): string {
    return join(this.home, key);
  }

  /** Creates `key`'s directories and links; returns its own short link and its parents', top first. */
  private async createDir(key: string, parent: string | undefined): Promise<{ link: string; lowers: string[] }> {
    const dir = this.dir(key);
    await mkdir(join(dir, 'diff'), { recursive: true, mode: 0o755 });
    await mkdir(join(dir, 'work'), { recursive: true, mode: 0o700 });
    const link = newLinkName();
    await mkdir(join(this.home, LINK_DIR), { recursive: true, mode: 0o700 });
    await symlink(join('..', key, 'diff'), join(this.home, LINK_DIR, link));
    await writeFile(join(dir, 'link'), link);
    const lowers = parent === undefined ? [] : [await this.linkOf(parent), ...(await this.lowerOf(parent))];
    if (lowers.length > 0) await writeFile(join(dir, 'lower'), lowers.join(':'));
    return { link: `${LINK_DIR}/${link}`, lowers };
  }

  private async linkOf(key: string): Promise<string> {
    return `${LINK_DIR}/${(await readFile(join(this.dir(key), 'link'), 'utf8')).trim()}`;
  }

  /** The parents' short-link paths, top first. */
  private async lowerOf(key: string): Promise<string[]> {
    try {
      const s = (await readFile(join(this.dir(key), 'lower'), 'utf8')).trim();
      return s === '' ? [] : s.split(':');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async prepare(key: string, parent: string | undefined, opts: PrepareOptions = {}): Promise<Mount[]> {
    // The mounts from what was just written, rather than read back as mounts() does.
    const { lowers } = await this.createDir(key, parent);
    const init = opts.init ? await this.writeInit(key, opts.init) : undefined;
    return this.stack(key, init ? [init.link, ...lowers] : lowers, init?.binds ?? []);
  }

  /** The init layer: a snapshot of its own, stacked between the parents and `key` while it is active. */
  private async writeInit(key: string, init: InitLayer): Promise<{ link: string; binds: BindMount[] }> {
    const { link } = await this.createDir(initKey(key), undefined);
    const diff = join(this.dir(initKey(key)), 'diff');
    for (const d of init.dirs) await mkdir(join(diff, d), { recursive: true, mode: 0o755 });
    const binds: BindMount[] = [];
    for (const [path, content] of Object.entries(init.files)) {
      await mkdir(dirname(join(diff, path)), { recursive: true, mode: 0o755 });
      await writeFile(join(diff, path), content, { mode: 0o644 });
      binds.push({ type: 'bind', source: join(diff, path), target: `/${path}` });
    }
    return { link, binds };
  }

  /** The init layer's files as binds over the rootfs, or none when `key` has no init layer. */
  private async initBinds(key: string): Promise<BindMount[]> {
    const diff = join(this.dir(initKey(key)), 'diff');
    let entries;
    try {
      entries = await readdir(diff, { recursive: true, withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
      .sort()
      .map((source) => ({ type: 'bind', source, target: `/${source.slice(diff.length + 1)}` }));
  }

  async mounts(key: string): Promise<Mount[]> {
    const lowers = await this.lowerOf(key);
    const binds = await this.initBinds(key);
    if (binds.length > 0) lowers.unshift(await this.linkOf(initKey(key)));
    return this.stack(key, lowers, binds);
  }

  /** An active snapshot's mounts: `key`'s diff over `lowers` (top first), and the init files over that. */
  private stack(key: string, lowers: readonly string[], binds: readonly BindMount[]): Mount[] {
    if (lowers.length === 0) {
      // A bottom layer with nothing beneath it needs no overlay: its diff dir is the rootfs.
      return [{ type: 'bind', source: join(this.dir(key), 'diff') }, ...binds];
    }
    if (lowers.length > MAX_LOWER_LAYERS) {
      throw new Error(`too many layers: ${lowers.length} (overlayfs stacks at most ${MAX_LOWER_LAYERS})`);
    }
    const upper = { dir: join(key, 'diff'), work: join(key, 'work') };
    return [this.overlay(lowers, upper), ...binds];
  }

  async view(parent: string | undefined): Promise<Mount[]> {
    if (parent === undefined) return [];
    const lowers = [await this.linkOf(parent), ...(await this.lowerOf(parent))];
    // overlayfs wants two lowerdirs at least when there is no upper: one layer is a bind.
    if (lowers.length === 1) return [{ type: 'bind', source: join(this.dir(parent), 'diff'), readonly: true }];
    if (lowers.length > MAX_LOWER_LAYERS) {
      throw new Error(`too many layers: ${lowers.length} (overlayfs stacks at most ${MAX_LOWER_LAYERS})`);
    }
    return [this.overlay(lowers)];
  }

  async commit(key: string): Promise<void> {
    await this.removeDir(initKey(key));
  }

  fileRoot(key: string): string {
    return join(this.dir(key), 'diff');
  }

  /** Drops `key`'s short link and returns its directory if it exists, for removeTrees. */
  private async unlinkDir(key: string): Promise<string[]> {
    const dir = this.dir(key);
    let link: string | undefined;
    try {
      link = (await readFile(join(dir, 'link'), 'utf8')).trim();
    } catch {
      link = undefined;
    }
    if (link) await rm(join(this.home, LINK_DIR, link), { force: true });
    return (await exists(dir)) ? [dir] : [];
  }

  private async removeDir(key: string): Promise<void> {
    await removeTreesNow(await this.unlinkDir(key));
  }

  async remove(key: string, removeTrees: RemoveTrees = removeTreesNow): Promise<void> {
    const dirs = [...(await this.unlinkDir(initKey(key))), ...(await this.unlinkDir(key))];
    if (dirs.length > 0) await removeTrees(dirs);
  }

  describe(stack: readonly string[]): Record<string, string> | null {
    const top = stack.at(-1);
    if (top === undefined) return null;
    const lowers = stack
      .slice(0, -1)
      .reverse()
      .map((key) => join(this.dir(key), 'diff'));
    return {
      ...(lowers.length ? { LowerDir: lowers.join(':') } : {}),
      MergedDir: join(this.dir(top), 'merged'),
      UpperDir: join(this.dir(top), 'diff'),
      WorkDir: join(this.dir(top), 'work'),
    };
  }

  async list(): Promise<string[]> {
    try {
      const names = await readdir(this.home);
      const out: string[] = [];
      for (const n of names) {
        if (n === LINK_DIR || n.startsWith('.')) continue;
        if ((await stat(join(this.home, n))).isDirectory()) out.push(n);
      }
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
