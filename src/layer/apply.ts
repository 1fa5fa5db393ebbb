// Layer tar -> unpacked directory (containerd's differ Apply, moby's UnpackLayer), recording the
// tar-split of the exact uncompressed bytes so the diffID can be reproduced later.
//
// This runs as root on other people's archives, so every name is treated as hostile:
// - names are cleaned; absolute names and '..' that climbs out of the layer are refused;
// - every parent of an entry must be a real directory: a symlink (or any non-directory) that
//   this archive planted is never written through, one left by a lower layer (delete mode) is
//   replaced by a directory, which is what the overlay view would show;
// - a hardlink must point at an earlier entry of this archive;
// - files are created with O_EXCL|O_NOFOLLOW after whatever was at the path has been removed.
// We are the only writer of targetDir while this runs, so checks made just before each write hold.
//
// Names are handled as "byte strings" (latin1, one char per byte) and turned back into Buffers
// for the filesystem, so archives with non-UTF-8 names unpack exactly as they are.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, realpath, rm, symlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { applyOps } from '../runtime/helper.js';
import type { FsOp } from '../runtime/types.js';
import { ByteReader, TruncatedError } from './bytereader.js';
import { decompress } from './decompress.js';
import { TarFormatError, type TarHeader } from './tarheader.js';
import { readTar } from './tarreader.js';
import { TarSplitWriter, disassemble, type RecordedEntry } from './tarsplit.js';
import type { LayerDescriptor } from './types.js';
import { OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './whiteout.js';

export interface ApplyLayerOptions {
  /**
   * overlay: the target is an empty overlay upper dir; whiteouts become 0/0 char devices and
   * opaque markers the trusted.overlay.opaque xattr.
   * delete: the target already holds the parent's files (plain-directory drivers); whiteouts
   * delete what they name and opaque markers empty their directory of lower content.
   */
  readonly whiteouts: 'overlay' | 'delete';
  /** Where the tar-split of the uncompressed archive is written (atomically). */
  readonly tarSplitPath: string;
}

/**
 * Unpacks a layer tar (uncompressed, gzip, bzip2, xz or zstd) into targetDir and returns the
 * diffID and sizes of its uncompressed bytes. Refuses hostile or malformed archives with an
 * InvalidInputError naming the entry; on any error targetDir is left for the caller to delete
 * and nothing outside it has been touched.
 */
export async function applyLayer(
  tar: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  targetDir: string,
  opts: ApplyLayerOptions,
): Promise<LayerDescriptor> {
  const hash = createHash('sha256');
  let tarSize = 0;
  const uncompressed = decompress(tar as AsyncIterable<Uint8Array>);
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of uncompressed) {
      hash.update(chunk);
      tarSize += chunk.length;
      yield chunk;
    }
  };
  const src = new ByteReader(counted());
  const split = new TarSplitWriter(opts.tarSplitPath);
  try {
    const unpacker = await Unpacker.create(targetDir, opts.whiteouts);
    for await (const entry of disassemble(readTar(src), split)) await unpacker.apply(entry);
    await unpacker.finish();
    await split.commit();
    return { diffId: `sha256:${hash.digest('hex')}` as Digest, size: unpacker.size, tarSize };
  } catch (e) {
    await split.abort();
    await src.cancel().catch(() => undefined); // the error being thrown says more than a failed close
    if (e instanceof TarFormatError) throw new InvalidInputError(`invalid layer tar: ${e.message}`, { cause: e });
    if (e instanceof TruncatedError) {
      throw new InvalidInputError(
        tarSize < 512 ? `not a layer tar: only ${tarSize} bytes` : `the layer tar is truncated: ${e.message}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** `name` for messages: as UTF-8 where it is, JSON-quoted. */
function show(rel: string): string {
  return JSON.stringify(Buffer.from(rel, 'latin1').toString('utf8'));
}

function refuse(name: Buffer, why: string): never {
  throw new InvalidInputError(`layer entry ${JSON.stringify(name.toString('utf8'))} ${why}`);
}

/**
 * Cleans an archive path into a relative byte string ('' for the root). Names climbing above the
 * root are refused, as moby refuses them. Absolute names are refused too, where GNU tar and moby
 * strip the '/': no layer writer produces one, so it marks a hand-made or hostile archive.
 */
function cleanName(name: Buffer, what: string): string {
  const s = name.toString('latin1');
  if (s.startsWith('/')) refuse(name, `${what} is an absolute path`);
  const parts: string[] = [];
  for (const part of s.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) refuse(name, `${what} climbs out of the layer with '..'`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

function isUnder(rel: string, dir: string): boolean {
  return dir === '' || rel === dir || rel.startsWith(`${dir}/`);
}

async function lstatOrUndefined(p: Buffer): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

interface Times {
  readonly rel: string;
  readonly sec: number;
}

class Unpacker {
  /** Bytes as overlay2 counts them (moby's directory.Size): regular files, symlink targets. */
  size = 0;
  /** Paths this archive created (and directories it had to create implicitly). */
  private readonly written = new Set<string>();
  /** Paths known to be real directories right now. */
  private readonly dirs = new Set<string>(['']);
  /** Helper operations, applied in one batch at the end; a slot is cleared when a later entry replaces its node. */
  private readonly ops: (FsOp | undefined)[] = [];
  /** Paths whose node (whiteout, device, fifo) is still a pending mknod in `ops`, by slot. */
  private readonly pendingNodes = new Map<string, number>();
  private readonly nodeTimes: Times[] = [];
  /** Directory times are set last, once nothing more is created inside them. */
  private readonly dirTimes: Times[] = [];

  private constructor(
    private readonly root: Buffer,
    private readonly mode: 'overlay' | 'delete',
  ) {}

  static async create(targetDir: string, mode: 'overlay' | 'delete'): Promise<Unpacker> {
    const real = await realpath(targetDir);
    const st = await lstat(real);
    if (!st.isDirectory()) throw new Error(`${targetDir} is not a directory`);
    return new Unpacker(Buffer.from(real), mode);
  }

  private fsPath(rel: string): Buffer {
    return rel === '' ? this.root : Buffer.concat([this.root, Buffer.from(`/${rel}`, 'latin1')]);
  }

  /** The helper takes paths as JSON strings, so they must be UTF-8. */
  private helperPath(rel: string, name: Buffer): string {
    const p = this.fsPath(rel);
    if (!isUtf8(p)) refuse(name, 'needs a device node or xattr but its name is not UTF-8');
    return p.toString('utf8');
  }

  async apply(entry: RecordedEntry): Promise<void> {
    const h = entry.header;
    const rel = cleanName(h.name, 'name');
    if (rel === '') return; // "./": moby leaves the root's own metadata alone
    // AUFS bookkeeping (.wh..wh.plnk/..., .wh..wh.aufs) at the root is not content; moby skips it too.
    if (rel.startsWith(WHITEOUT_META_PREFIX) && rel !== WHITEOUT_OPAQUE) return;
    await this.ensureParents(rel, h.name);
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (h.size > 0) refuse(h.name, 'is a whiteout with content');
      if (base === WHITEOUT_OPAQUE) await this.opaque(parentOf(rel), h.name);
      else await this.whiteout(rel, base.slice(WHITEOUT_PREFIX.length), h);
      return;
    }
    await this.create(rel, h, entry.body);
  }

  /** Checks (and creates) each parent of rel; see the module comment for the rules. */
  private async ensureParents(rel: string, name: Buffer): Promise<void> {
    const parts = rel.split('/');
    let dir = '';
    for (let i = 0; i < parts.length - 1; i++) {
      dir = dir === '' ? parts[i]! : `${dir}/${parts[i]!}`;
      if (this.dirs.has(dir)) continue;
      if (this.pendingNodes.has(dir)) refuse(name, `would be written below ${show(dir)}, which this layer made a device, fifo or whiteout`);
      const st = await lstatOrUndefined(this.fsPath(dir));
      if (st?.isDirectory()) {
        this.dirs.add(dir);
        continue;
      }
      if (st !== undefined) {
        if (this.written.has(dir)) {
          refuse(name, `would be written through ${show(dir)}, which this layer made a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'}`);
        }
        // Left by a lower layer: in the merged view this layer's directory hides it.
        await rm(this.fsPath(dir), { recursive: true, force: true });
      }
      await mkdir(this.fsPath(dir), { mode: 0o755 });
      this.dirs.add(dir);
      this.written.add(dir);
    }
  }

  /** Makes room for a new node at rel, unless both old and new are directories (those merge). */
  private async clear(rel: string, keepDir: boolean): Promise<boolean> {
    const slot = this.pendingNodes.get(rel);
    if (slot !== undefined) {
      this.ops[slot] = undefined;
      this.pendingNodes.delete(rel);
    }
    const st = await lstatOrUndefined(this.fsPath(rel));
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

  private async whiteout(rel: string, target: string, h: TarHeader): Promise<void> {
    if (target === '' || target === '.' || target === '..') refuse(h.name, 'is not a valid whiteout');
    const deleted = parentOf(rel) === '' ? target : `${parentOf(rel)}/${target}`;
    if (this.mode === 'delete') {
      await this.clear(deleted, false);
      this.written.delete(deleted);
      return;
    }
    await this.clear(deleted, false);
    const path = this.helperPath(deleted, h.name);
    this.queueNode(deleted, { op: 'mknod', path, type: 'c', mode: 0, major: 0, minor: 0, uid: h.uid, gid: h.gid });
  }

  private async opaque(dir: string, name: Buffer): Promise<void> {
    if (this.mode === 'overlay') {
      this.ops.push({ op: 'setxattr', path: this.helperPath(dir, name), name: OVERLAY_OPAQUE_XATTR, value: Buffer.from('y') });
      return;
    }
    // Remove what lower layers put in dir, keeping what this archive already wrote there.
    const prune = async (d: string): Promise<void> => {
      for (const child of await readdir(this.fsPath(d), { encoding: 'buffer', withFileTypes: true })) {
        const rel = d === '' ? child.name.toString('latin1') : `${d}/${child.name.toString('latin1')}`;
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

  private async create(rel: string, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const p = this.fsPath(rel);
    const merged = await this.clear(rel, h.type === 'dir');
    let linkTargetIsSymlink = false;
    switch (h.type) {
      case 'dir':
        if (!merged) await mkdir(p, { mode: 0o700 });
        this.dirs.add(rel);
        break;
      case 'file': {
        const fh = await open(p, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
          }
        } finally {
          await fh.close();
        }
        this.size += h.size;
        break;
      }
      case 'symlink':
        await symlink(h.linkname, p);
        this.size += h.linkname.length;
        break;
      case 'hardlink': {
        const target = cleanName(h.linkname, 'hardlink target');
        if (target === '' || !this.written.has(target)) refuse(h.name, `is a hardlink to ${show(target)}, which is not an earlier entry of this layer`);
        await this.ensureParents(target, h.linkname);
        if (this.pendingNodes.has(target)) await this.flushOps();
        const st = await lstatOrUndefined(this.fsPath(target));
        if (st === undefined || st.isDirectory()) refuse(h.name, `is a hardlink to ${show(target)}, which is ${st ? 'a directory' : 'gone'}`);
        linkTargetIsSymlink = st.isSymbolicLink();
        await link(this.fsPath(target), p);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const type = h.type === 'char' ? 'c' : h.type === 'block' ? 'b' : 'p';
        const path = this.helperPath(rel, h.name);
        this.queueNode(rel, { op: 'mknod', path, type, mode: h.mode, major: h.devMajor, minor: h.devMinor, uid: h.uid, gid: h.gid });
        this.nodeTimes.push({ rel, sec: h.mtime + h.mtimeNs / 1e9 });
        this.queueXattrs(rel, h);
        return;
      }
    }
    this.written.add(rel);
    // chown first: it clears setuid/setgid, which chmod then sets.
    await lchown(p, h.uid, h.gid);
    if (h.type !== 'symlink' && !linkTargetIsSymlink) await chmod(p, h.mode);
    this.queueXattrs(rel, h);
    const t = { rel, sec: h.mtime + h.mtimeNs / 1e9 };
    if (h.type === 'dir') this.dirTimes.push(t);
    else await lutimes(p, t.sec, t.sec);
  }

  /**
   * Xattrs from the archive, except overlayfs's own: opacity comes only from the opaque marker,
   * and a planted trusted.overlay.redirect or .origin would steer overlay's lookups.
   */
  private queueXattrs(rel: string, h: TarHeader): void {
    for (const [name, value] of h.xattrs) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
      this.ops.push({ op: 'setxattr', path: this.helperPath(rel, h.name), name, value });
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
    const parents = new Map<string, Promise<boolean>>();
    for (const t of this.nodeTimes) {
      // A node replaced or deleted later in the archive is simply gone.
      if (this.written.has(t.rel) && (await this.underPlainDirs(t.rel, parents))) await lutimes(this.fsPath(t.rel), t.sec, t.sec).catch(ignoreEnoent);
    }
    for (const t of this.dirTimes) {
      if (await this.underPlainDirs(t.rel, parents)) await lutimes(this.fsPath(t.rel), t.sec, t.sec).catch(ignoreEnoent);
    }
  }

  /**
   * Times are set by path once everything is unpacked, and by then a later entry may have
   * replaced a parent directory: by a file (the path is gone) or by a symlink, which lutimes
   * would follow out of the target. So a time is set only if every parent is still a directory.
   */
  private underPlainDirs(rel: string, cache: Map<string, Promise<boolean>>): Promise<boolean> {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return Promise.resolve(true);
    const parent = rel.slice(0, slash);
    let known = cache.get(parent);
    if (known === undefined) {
      known = this.underPlainDirs(parent, cache).then(async (ok) =>
        ok ? lstat(this.fsPath(parent)).then((st) => st.isDirectory(), () => false) : false,
      );
      cache.set(parent, known);
    }
    return known;
  }
}

function ignoreEnoent(e: unknown): void {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
}
