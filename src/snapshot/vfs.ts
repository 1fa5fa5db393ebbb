// The vfs driver: every snapshot is a complete copy of its parent's rootfs (Docker's vfs, the
// fallback that works on any filesystem). Nothing is mounted: a snapshot is a directory used in
// place, and what it changed is found by the differ walking it beside its parent.
//   <home>/dir/<key>/          the full rootfs (Docker's vfs layout)
//   <home>/parents/<key>       the parent snapshot's key, kept outside the rootfs
//   <home>/init/<key>/         the init files of an active snapshot
//   <home>/init/<key>.json     the placeholders made for them in the rootfs, to take out at commit
import { exists } from '../fs/exists.js';
import { mkdir, readFile, rm, readdir, rmdir, writeFile, lstat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { BindMount, Mount } from '../runtime/types.js';
import { removeTreesNow, type InitLayer, type PrepareOptions, type RemoveTrees, type Snapshotter } from './snapshotter.js';

/**
 * What placing an init layer changed in a rootfs: the placeholders created (in creation order)
 * and the mtimes (`seconds.nanoseconds`) of the directories they were created in.
 */
interface Placeholders {
  readonly created: string[];
  readonly times: Record<string, string>;
}

export class VfsSnapshotter implements Snapshotter {
  readonly name = 'vfs' as const;

  constructor(readonly home: string) {}

  private dir(key: string): string {
    return join(this.home, 'dir', key);
  }

  private parentFile(key: string): string {
    return join(this.home, 'parents', key);
  }

  private initDir(key: string): string {
    return join(this.home, 'init', key);
  }

  private placeholdersFile(key: string): string {
    return join(this.home, 'init', `${key}.json`);
  }

  async prepare(key: string, parent: string | undefined, opts: PrepareOptions = {}): Promise<Mount[]> {
    await mkdir(join(this.home, 'dir'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.home, 'parents'), { recursive: true, mode: 0o700 });
    if (parent === undefined) {
      await mkdir(this.dir(key), { mode: 0o755 });
    } else {
      // cp -a keeps ownership, modes, xattrs, hardlinks, devices and nanosecond mtimes, which the
      // differ's walk relies on; reflinks make it cheap where the filesystem has them.
      await (await import('execa')).execa('cp', ['-a', '--reflink=auto', this.dir(parent), this.dir(key)]);
    }
    await writeFile(this.parentFile(key), parent ?? '');
    if (opts.init) await this.placeInit(key, opts.init);
    return this.mounts(key);
  }

  /**
   * No layer can sit between a plain directory and its parent, so the init files live beside
   * the rootfs and are bound over placeholders that commit takes out again. Removing a
   * placeholder must leave its directory exactly as it was, or the differ would count the
   * directory as changed: its mtime is noted first.
   */
  private async placeInit(key: string, init: InitLayer): Promise<void> {
    const rootfs = this.dir(key);
    const made: Placeholders = { created: [], times: {} };
    const ensure = async (path: string, kind: 'dir' | 'file'): Promise<void> => {
      if (path === '.' || path === '') return;
      if (await lstat(join(rootfs, path)).catch(() => undefined)) return;
      await ensure(dirname(path), 'dir');
      const parentDir = join(rootfs, dirname(path));
      if (made.times[parentDir] === undefined) {
        const st = await lstat(parentDir, { bigint: true });
        made.times[parentDir] = `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`;
      }
      if (kind === 'file') await writeFile(join(rootfs, path), '', { mode: 0o644 });
      else await mkdir(join(rootfs, path), { mode: 0o755 });
      made.created.push(path);
    };
    const initDir = this.initDir(key);
    for (const [path, content] of Object.entries(init.files)) {
      await mkdir(dirname(join(initDir, path)), { recursive: true });
      await writeFile(join(initDir, path), content, { mode: 0o644 });
      await ensure(dirname(path), 'dir');
      await ensure(path, 'file');
    }
    for (const d of init.dirs) await ensure(d, 'dir');
    await writeFile(this.placeholdersFile(key), JSON.stringify(made));
  }

  private async readPlaceholders(key: string): Promise<Placeholders | undefined> {
    try {
      return JSON.parse(await readFile(this.placeholdersFile(key), 'utf8')) as Placeholders;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async mounts(key: string): Promise<Mount[]> {
    const binds: BindMount[] = [];
    const initDir = this.initDir(key);
    let files: string[] = [];
    try {
      const entries = await readdir(initDir, { recursive: true, withFileTypes: true });
      files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const source of files.sort()) binds.push({ type: 'bind', source, target: `/${source.slice(initDir.length + 1)}` });
    return [{ type: 'bind', source: this.dir(key) }, ...binds];
  }

  async view(parent: string | undefined): Promise<Mount[]> {
    return parent === undefined ? [] : [{ type: 'bind', source: this.dir(parent), readonly: true }];
  }

  /** Takes out the init placeholders, newest first, so files go before the directories holding them. */
  async commit(key: string): Promise<void> {
    const made = await this.readPlaceholders(key);
    if (made) {
      for (const path of [...made.created].reverse()) {
        const p = join(this.dir(key), path);
        const st = await lstat(p).catch(() => undefined);
        if (!st) continue;
        // A directory the step filled is kept: its content is part of the change.
        if (st.isDirectory()) await rmdir(p).catch(() => undefined);
        else await rm(p, { force: true });
      }
      // Node's utimes has microsecond precision at best; touch sets nanoseconds.
      const { execa } = await import('execa');
      for (const [dir, mtime] of Object.entries(made.times)) {
        await execa('touch', ['-h', '-m', '-d', `@${mtime}`, dir], { reject: false });
      }
    }
    await this.removeInit(key);
  }

  private async removeInit(key: string): Promise<void> {
    await rm(this.initDir(key), { recursive: true, force: true });
    await rm(this.placeholdersFile(key), { force: true });
  }

  fileRoot(key: string): string {
    return this.dir(key);
  }

  async remove(key: string, removeTrees: RemoveTrees = removeTreesNow): Promise<void> {
    await rm(this.placeholdersFile(key), { force: true });
    const dirs = [];
    for (const d of [this.initDir(key), this.dir(key)]) if (await exists(d)) dirs.push(d);
    if (dirs.length > 0) await removeTrees(dirs);
    await rm(this.parentFile(key), { force: true });
  }

  describe(): Record<string, string> | null {
    return null; // as Docker's vfs driver reports
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(join(this.home, 'dir'))).filter((n) => !n.startsWith('.'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
