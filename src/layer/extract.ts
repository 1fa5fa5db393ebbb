// One extractor for every tar tsbuild unpacks onto disk: layers (load, import, pull; containerd's
// differ Apply, UnpackLayer in moby/go-archive's diff.go) and ADD's local archives (Untar in
// go-archive's archive.go, which Docker runs chrooted into the destination through
// chrootarchive/archive.go). What differs between the two is ExtractRules (extract-rules.ts);
// everything here holds for both.
//
// This runs as root on other people's archives, so every name is treated as hostile:
// - names are cleaned, and `..` that climbs out of the root is refused;
// - the directories on the way are found by the `parents` rule, never by letting the kernel
//   follow a symlink: every path handed to the filesystem has only real directories above it;
// - whatever is at an entry's path is removed first (directories merge instead), and files are
//   created with O_EXCL|O_NOFOLLOW;
// - owner, then mode (chown clears setuid/setgid), then times; directory times are set once
//   everything is in, and only where the path still leads to them;
// - device nodes, fifos and xattrs go through the native helper in batches (Node has no
//   mknod(2) or setxattr(2)); a queued one is made before anything could be written through it.
// We are the only writer of the root while this runs, so checks made just before each write hold.
// Each entry's system calls are synchronous (microseconds each): through the promise API, a thread-
// pool round trip each queued behind the layer's gunzip, 60,000 small files took 37 s; now 5 s.
import { yieldIfBusy } from '../abort.js';
import {
  chmodSync,
  closeSync,
  constants,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { decodeName, encodeName } from '../fs/bytename.js';
import { mkdirAll, type Ownership } from '../fs/mkdirall.js';
import { lookupInRoot, type Lookup } from '../fs/securejoin.js';
import { applyOps } from '../runtime/helper.js';
import { inUserNamespace, unmappedOwner } from '../runtime/userns.js';
import type { FsOp } from '../runtime/types.js';
import { baseOf, cleanName, extractRules, isUnder, joinRel, parentOf, refuse, show } from './extract-rules.js';
import type { ExtractOptions, ExtractRules } from './extract-rules.js';
import type { TarHeader } from './tarheader.js';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './whiteout.js';

export interface ExtractEntry {
  readonly header: TarHeader;
  /** The content; what is left unread is skipped by whoever reads the archive. */
  readonly body: AsyncIterable<Buffer>;
}

/**
 * Unpacks `entries` into the existing directory `root` by `opts` (see ExtractRules) and returns
 * the bytes written as overlay2 counts them (moby's directory.Size: regular files, symlink
 * targets). Refuses hostile entries with an InvalidInputError naming the entry; on any error the
 * root is left as far as it got, for the caller to deal with, and nothing outside it is touched.
 */
export async function extract(
  entries: AsyncIterable<ExtractEntry>,
  root: string,
  opts: ExtractOptions,
): Promise<{ readonly size: number }> {
  if (!(await lstat(root)).isDirectory()) throw new Error(`${root} is not a directory`);
  const extractor = new Extractor(root, extractRules(opts));
  for await (const entry of entries) {
    await extractor.apply(entry);
    await yieldIfBusy(); // its system calls are synchronous: let Ctrl-C's handler run (abort.ts)
  }
  await extractor.finish();
  return { size: extractor.size };
}

const ROOT: Ownership = { uid: 0, gid: 0 };

interface Times {
  readonly rel: string;
  readonly atime: number;
  readonly mtime: number;
}

function timesOf(rel: string, h: TarHeader): Times {
  const mtime = h.mtime + h.mtimeNs / 1e9;
  // createTarFile in moby/go-archive's archive.go: the access time is the later of the two.
  return { rel, atime: Math.max(h.atime ?? mtime, mtime), mtime };
}

function lstatOrUndefined(p: Buffer): Stats | undefined {
  return lstatSync(p, { throwIfNoEntry: false });
}

function setTimesIfThere(p: Buffer, t: Times): void {
  try {
    lutimesSync(p, t.atime, t.mtime);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

class Extractor {
  size = 0;
  private readonly root: Buffer;
  /** Paths this archive created (and directories it had to create implicitly). */
  private readonly written = new Set<string>();
  /** Paths known to be real directories right now (kept under `real-directories`). */
  private readonly dirs = new Set<string>(['']);
  /** Helper operations, applied in one batch at the end; a slot is cleared when a later entry replaces its node. */
  private readonly ops: (FsOp | undefined)[] = [];
  /** Paths whose node (whiteout, device, fifo) is still a pending mknod in `ops`, by slot. */
  private readonly pendingNodes = new Map<string, number>();
  /** Times of device nodes and fifos, set once the helper has made them. */
  private readonly nodeTimes = new Map<string, Times>();
  /** Directory times are set last, once nothing more is created inside them. */
  private readonly dirTimes: Times[] = [];

  constructor(
    private readonly rootPath: string,
    private readonly rules: ExtractRules,
  ) {
    this.root = Buffer.from(rootPath);
  }

  private refuse(name: Buffer, why: string): never {
    refuse(this.rules, name, why);
  }

  private fsPath(rel: string): Buffer {
    return rel === '' ? this.root : Buffer.concat([this.root, Buffer.from(`/${rel}`, 'latin1')]);
  }

  /** The helper takes paths as bytes (apply-ops), so any name can be made. */
  private helperPath(rel: string): Buffer {
    return this.fsPath(rel);
  }

  async apply(entry: ExtractEntry): Promise<void> {
    const h = entry.header;
    const name = h.name;
    const rel = cleanName(this.rules, name, 'name');
    if (rel === '') return; // "./": moby leaves the root's own metadata alone
    const whiteouts = this.rules.whiteouts !== 'plain-files';
    // AUFS bookkeeping (.wh..wh.plnk/..., .wh..wh.aufs) at the root is not content; moby skips it too.
    if (whiteouts && rel.startsWith(WHITEOUT_META_PREFIX) && rel !== WHITEOUT_OPAQUE) return;
    const at = await this.place(rel, name);
    const base = baseOf(at);
    if (whiteouts && base.startsWith(WHITEOUT_PREFIX)) {
      if (h.size > 0) this.refuse(name, 'is a whiteout with content');
      if (base === WHITEOUT_OPAQUE) await this.opaque(parentOf(at));
      else await this.whiteout(at, base.slice(WHITEOUT_PREFIX.length), h, name);
      return;
    }
    await this.create(at, h, name, entry.body);
  }

  /** Where the entry `rel` goes, once the directories above it are there by the `parents` rule. */
  private async place(rel: string, name: Buffer): Promise<string> {
    if (this.rules.parents === 'real-directories') {
      await this.ensureParents(rel, name);
      return rel;
    }
    const dir = await this.resolveDir(parentOf(rel));
    if (dir.missingThrough) {
      const { link, target } = dir.missingThrough;
      this.refuse(
        name,
        `would be written through symlink ${JSON.stringify(link)} to ${JSON.stringify(target)}, which is not in ${this.rules.naming.root}`,
      );
    }
    await mkdirAll(dir.hostPath, { mode: 0o755, owner: ROOT, root: this.rootPath });
    return joinRel(dir.rel, baseOf(rel));
  }

  /** `real-directories`: checks (and creates) each parent of rel; see ExtractRules.parents. */
  private async ensureParents(rel: string, name: Buffer): Promise<void> {
    const archive = this.rules.naming.archive;
    const parts = rel.split('/');
    let dir = '';
    for (let i = 0; i < parts.length - 1; i++) {
      dir = dir === '' ? parts[i]! : `${dir}/${parts[i]!}`;
      if (this.dirs.has(dir)) continue;
      if (this.pendingNodes.has(dir))
        this.refuse(name, `would be written below ${show(dir)}, which ${archive} made a device, fifo or whiteout`);
      const st = lstatOrUndefined(this.fsPath(dir));
      if (st?.isDirectory()) {
        this.dirs.add(dir);
        continue;
      }
      if (st !== undefined) {
        if (this.written.has(dir)) {
          this.refuse(
            name,
            `would be written through ${show(dir)}, which ${archive} made a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'}`,
          );
        }
        // Left by a lower layer: in the merged view this layer's directory hides it.
        await rm(this.fsPath(dir), { recursive: true, force: true });
      }
      mkdirSync(this.fsPath(dir), { mode: 0o755 });
      this.dirs.add(dir);
      this.written.add(dir);
    }
  }

  /**
   * `resolve-in-root`: the directory `dir` looked up inside the root as if it were `/`, as the
   * kernel does in Docker's chroot: an absolute symlink target is read inside the root, and `..`
   * in a target stops at the root. `missingThrough` names a dangling symlink on the way.
   */
  private async resolveDir(dir: string): Promise<{ rel: string; hostPath: string; missingThrough?: Lookup['missingThrough'] }> {
    // A node still queued is not on disk yet: the lookup would miss it and a directory be made in its place.
    if (this.pendingNodes.size > 0) await this.flushOps();
    const found = await lookupInRoot(this.rootPath, decodeName(Buffer.from(dir, 'latin1')), { followFinal: true });
    return {
      rel: encodeName(found.path).toString('latin1'),
      hostPath: found.hostPath,
      ...(found.missingThrough ? { missingThrough: found.missingThrough } : {}),
    };
  }

  /** Makes room for a new node at rel, unless both old and new are directories (those merge). */
  private async clear(rel: string, keepDir: boolean): Promise<boolean> {
    const slot = this.pendingNodes.get(rel);
    if (slot !== undefined) {
      this.ops[slot] = undefined;
      this.pendingNodes.delete(rel);
    }
    this.nodeTimes.delete(rel);
    const st = lstatOrUndefined(this.fsPath(rel));
    if (st === undefined) return false;
    if (keepDir && st.isDirectory()) return true;
    await this.remove(rel, st);
    return false;
  }

  /**
   * Removes rel and everything below it. Queued device nodes and xattrs are applied first: they
   * are applied by path, so one queued below a directory that a later entry replaces by a
   * symlink would otherwise be made wherever that symlink points.
   */
  private async remove(rel: string, st: Stats): Promise<void> {
    if (st.isDirectory() && this.ops.length > 0) await this.flushOps();
    await rm(this.fsPath(rel), { recursive: true, force: true });
    this.forget(rel);
  }

  /**
   * Drops cached knowledge about rel and everything below it. `dirs` holds every parent of what it
   * holds (ensureParents adds them top-down), and pending nodes have nothing below them, so only
   * a known directory needs a scan.
   */
  private forget(rel: string): void {
    this.pendingNodes.delete(rel);
    if (!this.dirs.has(rel)) return;
    for (const d of this.dirs) if (isUnder(d, rel)) this.dirs.delete(d);
  }

  private async whiteout(rel: string, target: string, h: TarHeader, name: Buffer): Promise<void> {
    if (target === '' || target === '.' || target === '..') this.refuse(name, 'is not a valid whiteout');
    const deleted = joinRel(parentOf(rel), target);
    await this.clear(deleted, false);
    if (this.rules.whiteouts === 'delete') {
      this.written.delete(deleted);
      return;
    }
    const path = this.helperPath(deleted);
    this.queueNode(deleted, { op: 'mknod', path, type: 'c', mode: 0, major: 0, minor: 0, uid: h.uid, gid: h.gid });
  }

  private async opaque(dir: string): Promise<void> {
    if (this.rules.whiteouts === 'overlay') {
      this.ops.push({ op: 'setxattr', path: this.helperPath(dir), name: this.rules.opaqueXattr, value: Buffer.from('y') });
      return;
    }
    // Remove what lower layers put in dir, keeping what this archive already wrote there.
    const prune = async (d: string): Promise<void> => {
      for (const child of await readdir(this.fsPath(d), { encoding: 'buffer', withFileTypes: true })) {
        const rel = joinRel(d, child.name.toString('latin1'));
        if (!this.written.has(rel)) {
          if (child.isDirectory() && this.ops.length > 0) await this.flushOps();
          await rm(this.fsPath(rel), { recursive: true, force: true });
          this.forget(rel);
        } else if (child.isDirectory()) {
          await prune(rel);
        }
      }
    };
    await prune(dir);
  }

  private queueNode(rel: string, op: FsOp): void {
    this.pendingNodes.set(rel, this.ops.length);
    this.ops.push(op);
    this.written.add(rel);
  }

  private async create(rel: string, h: TarHeader, name: Buffer, body: AsyncIterable<Buffer>): Promise<void> {
    const p = this.fsPath(rel);
    const merged = await this.clear(rel, h.type === 'dir');
    const owner = this.rules.owner === 'from-archive' ? { uid: h.uid, gid: h.gid } : this.rules.owner;
    // Rootless (runtime/userns.ts), owners the namespace cannot hold and device nodes fail here,
    // before anything is written, in words rather than as chown's EINVAL or mknod's EPERM.
    const unmapped = unmappedOwner(owner.uid, owner.gid);
    if (unmapped !== undefined) refuse(this.rules, name, `is owned by ${owner.uid}:${owner.gid}: ${unmapped}`);
    if ((h.type === 'char' || h.type === 'block') && (h.devMajor !== 0 || h.devMinor !== 0) && inUserNamespace())
      refuse(this.rules, name, `is a device node (${h.type} ${h.devMajor}:${h.devMinor}): a user namespace cannot create one (rootless)`);
    const times = timesOf(rel, h);
    let linkTargetIsSymlink = false;
    switch (h.type) {
      case 'dir':
        if (!merged) mkdirSync(p, { mode: 0o700 });
        this.dirs.add(rel);
        break;
      case 'file': {
        const fd = openSync(p, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          }
        } finally {
          closeSync(fd);
        }
        this.size += h.size;
        break;
      }
      case 'symlink': {
        const target = h.linkname;
        symlinkSync(target, p);
        this.size += target.length;
        break;
      }
      case 'hardlink':
        linkTargetIsSymlink = await this.hardlink(p, h, name);
        break;
      case 'char':
      case 'block':
      case 'fifo': {
        const type = h.type === 'char' ? 'c' : h.type === 'block' ? 'b' : 'p';
        const path = this.helperPath(rel);
        this.queueNode(rel, {
          op: 'mknod',
          path,
          type,
          mode: h.mode,
          major: h.devMajor,
          minor: h.devMinor,
          uid: owner.uid,
          gid: owner.gid,
        });
        this.nodeTimes.set(rel, times);
        this.queueXattrs(rel, h);
        return;
      }
    }
    this.written.add(rel);
    // chown first: it clears setuid/setgid, which chmod then sets.
    lchownSync(p, owner.uid, owner.gid);
    // A hardlink to a symlink is the symlink's inode: it has no mode of its own and keeps its own
    // times (createTarFile in go-archive's archive.go skips both for it).
    if (h.type !== 'symlink' && !linkTargetIsSymlink) chmodSync(p, h.mode);
    this.queueXattrs(rel, h);
    if (h.type === 'dir') this.dirTimes.push(times);
    else if (!linkTargetIsSymlink) lutimesSync(p, times.atime, times.mtime);
  }

  /** Links `p` to the entry's target, found by the `hardlinks` rule; returns whether the target is a symlink. */
  private async hardlink(p: Buffer, h: TarHeader, name: Buffer): Promise<boolean> {
    const linkname = h.linkname;
    const target = cleanName(this.rules, linkname, 'hardlink target', name);
    if (this.rules.hardlinks === 'earlier-entries') {
      if (target === '' || !this.written.has(target)) {
        this.refuse(name, `is a hardlink to ${show(target)}, which is not an earlier entry of ${this.rules.naming.archive}`);
      }
    } else if (target === '') {
      this.refuse(name, `is a hardlink to ${this.rules.naming.root} itself`);
    }
    let at = target;
    if (this.rules.parents === 'real-directories') {
      await this.ensureParents(target, linkname);
    } else {
      at = joinRel((await this.resolveDir(parentOf(target))).rel, baseOf(target));
    }
    if (this.pendingNodes.has(at)) await this.flushOps();
    const st = lstatOrUndefined(this.fsPath(at));
    if (this.rules.hardlinks === 'inside-root') {
      // link(2) would fail too (createTarFile's os.Link does), but with ENOENT or EPERM and two
      // host paths, naming neither the archive nor the entry.
      const written = JSON.stringify(linkname.toString('utf8'));
      if (st === undefined) this.refuse(name, `is a hardlink to ${written}, which is not in ${this.rules.naming.root}`);
      if (st.isDirectory()) this.refuse(name, `is a hardlink to ${written}, which is a directory`);
    } else if (st === undefined || st.isDirectory()) {
      this.refuse(name, `is a hardlink to ${show(at)}, which is ${st ? 'a directory' : 'gone'}`);
    }
    linkSync(this.fsPath(at), p);
    return st.isSymbolicLink();
  }

  /**
   * Xattrs from the archive, except overlayfs's own: opacity comes only from the opaque marker,
   * and a planted trusted.overlay.redirect or .origin would steer overlay's lookups.
   */
  private queueXattrs(rel: string, h: TarHeader): void {
    if (this.rules.xattrs === 'ignore') return;
    for (const [attr, value] of h.xattrs) {
      if (attr.startsWith('trusted.overlay.') || attr.startsWith('user.overlay.')) continue;
      this.ops.push({ op: 'setxattr', path: this.helperPath(rel), name: encodeName(attr), value });
    }
  }

  private async flushOps(): Promise<void> {
    const batch = this.ops.filter((op): op is FsOp => op !== undefined);
    this.ops.length = 0;
    this.pendingNodes.clear();
    if (batch.length > 0) await applyOps(batch);
  }

  async finish(): Promise<void> {
    await this.flushOps();
    const dirs = new Map<string, Promise<boolean>>();
    for (const t of this.nodeTimes.values()) {
      if (await this.plainDir(parentOf(t.rel), dirs)) setTimesIfThere(this.fsPath(t.rel), t);
    }
    for (const t of this.dirTimes) {
      if (await this.plainDir(t.rel, dirs)) setTimesIfThere(this.fsPath(t.rel), t);
    }
  }

  /**
   * Whether rel and each directory above it are real directories now. Times are set by path once
   * everything is unpacked, and by then a later entry may have replaced a directory: by a file
   * (whose own time must stay) or by a symlink, which lutimes would follow out of the root for
   * anything below it. So a time is set only where the path still leads to what was made.
   */
  private plainDir(rel: string, cache: Map<string, Promise<boolean>>): Promise<boolean> {
    if (rel === '') return Promise.resolve(true);
    let known = cache.get(rel);
    if (known === undefined) {
      known = this.plainDir(parentOf(rel), cache).then(async (ok) =>
        ok
          ? lstat(this.fsPath(rel)).then(
              (st) => st.isDirectory(),
              () => false,
            )
          : false,
      );
      cache.set(rel, known);
    }
    return known;
  }
}
