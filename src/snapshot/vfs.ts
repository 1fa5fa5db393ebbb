// The vfs driver: every snapshot is a complete copy of its parent's rootfs (Docker's vfs, the
// fallback that works on any filesystem). Nothing is mounted; what a snapshot changed is found
// by walking it beside its parent. Slower and bigger than overlay2, same layers.
//   <home>/dir/<id>/      the full rootfs (Docker's vfs layout)
//   <home>/parents/<id>   the parent snapshot's id, kept outside the rootfs
//   <home>/init/<id>/     the init files while mounted
import { mkdir, readFile, rm, readdir, rmdir, writeFile, lstat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { Change, LayerDescriptor } from '../layer/types.js';
import { walk } from '../runtime/helper.js';
import type { WalkRecord } from '../runtime/types.js';
import type { InitLayer, MountedRootfs, Snapshotter, Bind } from './snapshotter.js';
import { compareTarOrder } from './order.js';

/** Xattrs that describe overlay bookkeeping, never content. */
const IGNORED_XATTR_PREFIX = 'trusted.overlay.';

export class VfsSnapshotter implements Snapshotter {
  readonly name = 'vfs' as const;
  /** Init placeholders created in each mounted rootfs, to remove at unmount. */
  private readonly placeholders = new Map<string, string[]>();
  /** mtimes (as `seconds.nanoseconds`) of the directories the placeholders were created in. */
  private readonly parentTimes = new Map<string, Map<string, string>>();

  constructor(readonly home: string) {}

  private dir(id: string): string {
    return join(this.home, 'dir', id);
  }

  private parentFile(id: string): string {
    return join(this.home, 'parents', id);
  }

  private async parentOf(id: string): Promise<string | undefined> {
    try {
      const p = (await readFile(this.parentFile(id), 'utf8')).trim();
      return p === '' ? undefined : p;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async prepare(id: string, parent: string | undefined): Promise<void> {
    await mkdir(join(this.home, 'dir'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.home, 'parents'), { recursive: true, mode: 0o700 });
    if (parent === undefined) {
      await mkdir(this.dir(id), { mode: 0o755 });
    } else {
      // cp -a keeps ownership, modes, xattrs, hardlinks, devices and nanosecond mtimes, which the
      // change walk relies on; reflinks make it cheap where the filesystem has them.
      await (await import('execa')).execa('cp', ['-a', '--reflink=auto', this.dir(parent), this.dir(id)]);
    }
    await writeFile(this.parentFile(id), parent ?? '');
  }

  async mount(id: string, init?: InitLayer): Promise<MountedRootfs> {
    const rootfs = this.dir(id);
    const binds: Bind[] = [];
    const created: string[] = [];
    const times = new Map<string, string>();
    this.parentTimes.set(id, times);
    if (init) {
      // No layer can sit between a plain directory and its parent, so the init files live
      // beside the rootfs and are bind-mounted over placeholders that are removed at unmount.
      const initDir = join(this.home, 'init', id);
      for (const [path, content] of Object.entries(init.files)) {
        await mkdir(dirname(join(initDir, path)), { recursive: true });
        await writeFile(join(initDir, path), content, { mode: 0o644 });
        await this.ensure(rootfs, dirname(path), created, 'dir', times);
        await this.ensure(rootfs, path, created, 'file', times);
        binds.push({ source: join(initDir, path), target: `/${path}` });
      }
      for (const d of init.dirs) await this.ensure(rootfs, d, created, 'dir', times);
    }
    this.placeholders.set(id, created);
    return { rootfs, binds };
  }

  /**
   * Creates rootfs/path (and missing parents) if absent, remembering what it created and the
   * mtime of the directory it was created in: removing a placeholder later must leave that
   * directory exactly as it was, or the change walk would count it as changed.
   */
  private async ensure(rootfs: string, path: string, created: string[], kind: 'dir' | 'file', times: Map<string, string>): Promise<void> {
    if (path === '.' || path === '') return;
    if (await lstat(join(rootfs, path)).catch(() => undefined)) return;
    await this.ensure(rootfs, dirname(path), created, 'dir', times);
    const parent = join(rootfs, dirname(path));
    if (!times.has(parent)) {
      const st = await lstat(parent, { bigint: true });
      times.set(parent, `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`);
    }
    if (kind === 'file') await writeFile(join(rootfs, path), '', { mode: 0o644 });
    else await mkdir(join(rootfs, path), { mode: 0o755 });
    created.push(path);
  }

  async unmount(id: string): Promise<void> {
    const created = this.placeholders.get(id) ?? [];
    this.placeholders.delete(id);
    // Newest first, so files go before the directories that hold them; a directory the step
    // filled is kept (its content is part of the change).
    for (const path of [...created].reverse()) {
      const p = join(this.dir(id), path);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await rmdir(p).catch(() => undefined);
      else await rm(p, { force: true });
    }
    // Node's utimes has microsecond precision at best; touch sets nanoseconds.
    for (const [dir, mtime] of this.parentTimes.get(id) ?? []) {
      await (await import('execa')).execa('touch', ['-h', '-m', '-d', `@${mtime}`, dir], { reject: false });
    }
    this.parentTimes.delete(id);
    await rm(join(this.home, 'init', id), { recursive: true, force: true });
  }

  async *changes(id: string): AsyncIterable<Change> {
    const parent = await this.parentOf(id);
    const childRoot = this.dir(id);
    const child = walk(childRoot)[Symbol.asyncIterator]();
    const base = parent === undefined ? undefined : walk(this.dir(parent))[Symbol.asyncIterator]();
    let c = await child.next();
    let p = base ? await base.next() : { done: true as const, value: undefined };
    // Unchanged directories on the path to the current entry: emitted only if something below
    // them changes, as overlayfs copies up the parents of whatever it writes.
    const pending: WalkRecord[] = [];
    const emitted = new Set<string>();
    const entry = (rec: WalkRecord): Change => ({ kind: 'entry', name: rec.path, record: rec, source: join(childRoot, rec.path) });
    function* withAncestors(rec: WalkRecord): Generator<Change> {
      for (const dir of pending) {
        if (!emitted.has(dir.path) && rec.path.startsWith(`${dir.path}/`)) {
          emitted.add(dir.path);
          yield entry(dir);
        }
      }
      emitted.add(rec.path);
    }
    function trimPending(path: string): void {
      while (pending.length > 0 && !path.startsWith(`${pending[pending.length - 1]!.path}/`)) pending.pop();
    }
    const skipBelow = async (prefix: string): Promise<void> => {
      while (!p.done && p.value.path.startsWith(`${prefix}/`)) p = await base!.next();
    };
    while (!c.done || !p.done) {
      const order = c.done ? 1 : p.done ? -1 : compareTarOrder(c.value.path, p.value.path);
      if (order < 0) {
        // Only in the child: added.
        const rec = c.value!;
        trimPending(rec.path);
        yield* withAncestors(rec);
        yield entry(rec);
        if (rec.type === 'd') pending.push(rec);
        c = await child.next();
      } else if (order > 0) {
        // Only in the parent: deleted, and with it everything below it.
        const rec = p.value!;
        trimPending(rec.path);
        yield* withAncestors(rec);
        yield { kind: 'whiteout', name: rec.path };
        p = await base!.next();
        if (rec.type === 'd') await skipBelow(rec.path);
      } else {
        const rec = c.value!;
        const old = p.value!;
        trimPending(rec.path);
        c = await child.next();
        p = await base!.next();
        if (old.type === 'd' && rec.type !== 'd') await skipBelow(old.path);
        if (differs(old, rec)) {
          yield* withAncestors(rec);
          yield entry(rec);
        }
        if (rec.type === 'd') pending.push(rec);
      }
    }
  }

  async apply(id: string, tar: NodeJS.ReadableStream, tarSplitPath: string): Promise<LayerDescriptor> {
    // Loaded here: only pull, load and import unpack layers; a build never does.
    const { applyLayer } = await import('../layer/apply.js');
    return applyLayer(tar, this.dir(id), { whiteouts: 'delete', tarSplitPath });
  }

  fileRoot(id: string): string {
    return this.dir(id);
  }

  async remove(id: string): Promise<void> {
    await this.unmount(id);
    await rm(this.dir(id), { recursive: true, force: true });
    await rm(this.parentFile(id), { force: true });
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

function xattrsEqual(a: WalkRecord['xattrs'], b: WalkRecord['xattrs']): boolean {
  const keys = (x: WalkRecord['xattrs']) => Object.keys(x ?? {}).filter((k) => !k.startsWith(IGNORED_XATTR_PREFIX)).sort();
  const ka = keys(a);
  const kb = keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k]!.equals(b![k]!));
}

/** Docker's test for "changed" (pkg/archive/changes.go): metadata, not content. */
function differs(a: WalkRecord, b: WalkRecord): boolean {
  return (
    a.type !== b.type ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.mtime !== b.mtime ||
    a.mtimeNs !== b.mtimeNs ||
    (a.type !== 'd' && a.size !== b.size) ||
    a.link !== b.link ||
    a.devMajor !== b.devMajor ||
    a.devMinor !== b.devMinor ||
    !xattrsEqual(a.xattrs, b.xattrs)
  );
}
