// ADD's local archives: recognize them and unpack them into a directory, as BuildKit does
// (solver/llbsolver/file/unpack.go, moby/go-archive's Unpack).
//
// Recognition is by content, never by name: the first bytes name a compression Docker knows
// (gzip, bzip2, xz, zstd, or none) and the first decompressed block must be a tar header with a
// valid checksum. Anything else is copied as a plain file.
//
// node-tar reads the archive (its Parser: headers, PAX and GNU long names, body framing); the
// entries are written here rather than by node-tar's Unpack, which differs from Docker in ways
// that show in an image: it rewrites absolute symlink targets (`/etc` becomes `etc`), drops the
// setuid bit when it chowns, skips fifos and device nodes, refuses to write below a symlink even
// inside the destination, and gives directories the time of extraction. What Docker does:
//  - entry names are relative to the destination; a leading `/` is dropped, and a name that
//    climbs out with `..` fails the whole ADD;
//  - parent directories resolve inside the destination as if it were `/` (an absolute symlink
//    stays inside, a relative one that climbs out fails); missing ones are created 0755 root;
//  - an existing entry is replaced (a directory with all it holds), except that directories merge;
//  - owner from the archive, or --chown for every entry; mode (setuid included) and mtime from
//    the archive; directories get their times once everything is in; --chmod does not apply;
//  - hardlinks must point inside the destination; symlink targets are kept verbatim;
//  - extended attributes are not restored (Node cannot set them).
import { once } from 'node:events';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Header, Parser, type ReadEntry } from 'tar';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { mkdirAll, type Ownership } from './mkdirall.js';
import { lookupInRoot } from './securejoin.js';
import { makeSpecialNode } from './special.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const BLOCK = 512;

/** Magic numbers, as moby/go-archive's compression.Detect checks them (in this order). */
function sniffCompression(head: Buffer): Compression {
  const starts = (bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts([0x42, 0x5a, 0x68])) return 'bzip2';
  if (starts([0x1f, 0x8b, 0x08])) return 'gzip';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  // A zstd stream may also open with a skippable frame (magic 0x184D2A50..5F, little-endian).
  if (head.length >= 8 && (head.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50) return 'zstd';
  return 'none';
}

/**
 * The compression of a tar archive at `path`, or undefined when it is not one: Docker's
 * isArchivePath (a regular file that decompresses to something whose first tar header reads).
 */
export async function detectTarArchive(path: string, stats?: Stats): Promise<Compression | undefined> {
  const st = stats ?? (await lstat(path));
  if (!st.isFile()) return undefined;
  const fh = await open(path, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(BLOCK);
    const { bytesRead } = await fh.read(buf, 0, BLOCK, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const compression = sniffCompression(head);
  const block = compression === 'none' ? head : await readDecompressedHead(path, compression);
  if (block === undefined || block.length < BLOCK) return undefined;
  const header = new Header(block);
  return header.cksumValid && !header.nullBlock ? compression : undefined;
}

/** The first block of the decompressed stream, or undefined if decompression fails. */
async function readDecompressedHead(path: string, compression: Compression): Promise<Buffer | undefined> {
  const source = await decompress(path, compression);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of source.stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= BLOCK) break;
    }
    return Buffer.concat(chunks).subarray(0, BLOCK);
  } catch {
    // Not decompressible (truncated, corrupt, tool missing): Docker copies such a file as is.
    return undefined;
  } finally {
    source.cancel();
  }
}

interface Decompressed {
  readonly stream: Readable;
  /** Settles when the decompressor is done; rejects when it failed (e.g. a non-zero exit). */
  readonly done: Promise<void>;
  /** Stop early; `done` then settles without reporting the interruption. */
  cancel(): void;
}

/**
 * A decompressed stream of the file. gzip uses Node's zlib; bzip2, xz and zstd go through the
 * system's `bzip2 -dc`, `xz -dc` and `zstd -dc` (Node has no decoder for them).
 */
async function decompress(path: string, compression: Compression): Promise<Decompressed> {
  if (compression === 'none' || compression === 'gzip') {
    const file = createReadStream(path);
    const stream = compression === 'gzip' ? file.pipe(createGunzip()) : file;
    if (stream !== file) file.on('error', (err) => stream.destroy(err));
    let cancelled = false;
    const done = once(stream, 'end').then(
      () => undefined,
      (err: unknown) => {
        if (!cancelled) throw err;
      },
    );
    done.catch(() => undefined); // observed by whoever awaits it; never unhandled
    return {
      stream,
      done,
      cancel: () => {
        cancelled = true;
        file.destroy();
        stream.destroy();
      },
    };
  }
  const tool = compression; // the program is named after its format
  const child = (await import('execa')).execa(tool, ['-dc'], { inputFile: path, buffer: { stdout: false, stderr: true }, stripFinalNewline: true });
  let cancelled = false;
  const done = child.then(
    () => undefined,
    (err: unknown) => {
      if (cancelled) return;
      const e = err as { code?: string; stderr?: unknown; shortMessage?: string };
      const why = e.code === 'ENOENT' ? `the ${tool} program is not installed` : String(e.stderr || e.shortMessage);
      const wrapped = new TsbuildError(`cannot decompress ${compression} archive: ${why}`, { cause: err });
      child.stdout?.destroy(wrapped);
      throw wrapped;
    },
  );
  done.catch(() => undefined);
  return {
    stream: child.stdout!,
    done,
    cancel: () => {
      cancelled = true;
      child.kill();
    },
  };
}

export interface ExtractOptions {
  /** Host path of the archive. */
  readonly archive: string;
  readonly compression: Compression;
  /** Host path of the destination directory (existing); entries resolve inside it as if it were `/`. */
  readonly dest: string;
  /** --chown: owner of every entry. Without it, each entry keeps the archive's uid/gid. */
  readonly owner?: Ownership;
  /** How to name the archive in errors. */
  readonly name: string;
}

/** Unpack a tar archive into `dest` with Docker's rules (see the module comment). */
export async function extractTar(opts: ExtractOptions): Promise<void> {
  const source = await decompress(opts.archive, opts.compression);
  const dirTimes: { path: string; atime: number; mtime: number }[] = [];
  try {
    for await (const entry of tarEntries(source.stream, opts.name)) {
      await extractEntry(entry, opts, dirTimes);
    }
    await source.done;
  } finally {
    source.cancel();
  }
  // Last, so that the entries created inside do not bump the directories' mtimes again. A
  // later entry may have replaced a parent of the directory by a symlink, which lutimes would
  // follow anywhere on the host: set the time only where the path still leads to it.
  for (const d of dirTimes) {
    const now = await lookupInRoot(opts.dest, posix.relative(opts.dest, d.path), { followFinal: false, onEscape: () => undefined });
    if (now.hostPath === d.path && now.stats?.isDirectory()) await lutimes(d.path, d.atime, d.mtime);
  }
}

/**
 * The entries of a tar stream, one at a time: node-tar's Parser emits the next entry only once
 * the current one's body has been consumed, which keeps memory flat for any archive size.
 */
async function* tarEntries(input: Readable, name: string): AsyncGenerator<ReadEntry> {
  const parser = new Parser({ strict: true });
  const queue: ReadEntry[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  let current: ReadEntry | undefined;
  const fail = (err: unknown) => {
    failure ??= err;
    // Whoever is reading the current entry's body would wait forever for the rest of it.
    current?.destroy(err instanceof Error ? err : new Error(String(err)));
    notify();
  };
  parser.on('entry', (entry: ReadEntry) => {
    queue.push(entry);
    notify();
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    if (!entry.meta) fail(new InvalidInputError(`${name}: unhandled tar entry type ${entry.type} for ${JSON.stringify(entry.path)}`));
  });
  parser.on('end', () => {
    ended = true;
    notify();
  });
  parser.on('error', (err: unknown) => fail(new InvalidInputError(`${name}: ${(err as Error).message}`, { cause: err })));
  // Feed the parser by hand rather than with pipe(): its write() returns false while the current
  // entry waits for us, and 'drain' comes once we have read it.
  const stop = new AbortController();
  void (async () => {
    for await (const chunk of input) {
      if (stop.signal.aborted) return;
      if (!parser.write(chunk as Buffer)) await once(parser, 'drain', { signal: stop.signal });
    }
    parser.end();
  })().catch((err: unknown) => {
    if (stop.signal.aborted) return;
    fail(err instanceof TsbuildError ? err : new InvalidInputError(`${name}: ${(err as Error).message}`, { cause: err }));
  });
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const next = queue.shift();
      if (next) {
        current = next;
        // fail() destroys the current entry with the error; if its reader is between two awaits
        // (making parent directories, say) no one listens, and an 'error' event with no listener
        // would crash the process. The error reaches the reader through `failure` anyway.
        next.on('error', () => undefined);
        yield next;
        current = undefined;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stop.abort();
  }
}

async function extractEntry(
  entry: ReadEntry,
  opts: ExtractOptions,
  dirTimes: { path: string; atime: number; mtime: number }[],
): Promise<void> {
  const name = localName(entry.path);
  if (name === undefined) throw new InvalidInputError(`${opts.name}: invalid entry name ${JSON.stringify(entry.path)}`);
  if (name === '.') return void entry.resume();

  const parent = await resolveInDest(opts, posix.dirname(name), entry.path);
  await mkdirAll(parent, { mode: 0o755, owner: { uid: 0, gid: 0 }, root: opts.dest });
  const target = posix.join(parent, posix.basename(name));

  const existing = await lstat(target).catch(() => undefined);
  if (existing && !(existing.isDirectory() && entry.type === 'Directory')) {
    await rm(target, { recursive: true, force: true });
  }

  const mode = (entry.mode ?? 0o644) & 0o7777;
  let chmodIt = true;
  switch (entry.type) {
    case 'Directory':
      if (!existing?.isDirectory()) await mkdir(target, mode & 0o777);
      entry.resume();
      break;
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
      break;
    case 'Link': {
      const linked = await resolveHardlinkTarget(opts, entry.linkpath ?? '');
      await link(linked, target);
      // The mode belongs to the inode; moby leaves it alone when the link is to a symlink.
      chmodIt = !(await lstat(linked)).isSymbolicLink();
      entry.resume();
      break;
    }
    case 'SymbolicLink':
      await symlink(entry.linkpath ?? '', target);
      chmodIt = false;
      entry.resume();
      break;
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      await makeSpecialNode(target, {
        kind: entry.type === 'FIFO' ? 'fifo' : entry.type === 'CharacterDevice' ? 'char' : 'block',
        mode,
        major: entry.header.devmaj ?? 0,
        minor: entry.header.devmin ?? 0,
      });
      entry.resume();
      break;
    default:
      throw new InvalidInputError(`${opts.name}: unhandled tar entry type ${entry.type} for ${JSON.stringify(entry.path)}`);
  }

  const owner = opts.owner ?? { uid: entry.uid ?? 0, gid: entry.gid ?? 0 };
  await lchown(target, owner.uid, owner.gid);
  if (chmodIt) await chmod(target, mode); // after chown, which clears setuid/setgid
  const mtime = (entry.mtime?.getTime() ?? 0) / 1000;
  const atime = Math.max((entry.atime?.getTime() ?? 0) / 1000, mtime);
  if (entry.type === 'Directory') dirTimes.push({ path: target, atime, mtime });
  else if (chmodIt || entry.type === 'SymbolicLink') await lutimes(target, atime, mtime);
}

/** A tar name made relative and clean, or undefined when it climbs out (moby's filepath.IsLocal). */
function localName(raw: string): string | undefined {
  const name = posix.normalize(raw.replace(/^\/+/, '')).replace(/\/+$/, '') || '.';
  if (name === '..' || name.startsWith('../')) return undefined;
  return name;
}

/** A directory inside the destination, symlinks followed with the destination as `/`. */
async function resolveInDest(opts: ExtractOptions, dir: string, entryName: string): Promise<string> {
  const found = await lookupInRoot(opts.dest, dir, {
    followFinal: true,
    onEscape: (e) => {
      // An absolute target is read inside the destination (chroot-like), as moby's Unpack does;
      // a relative one that climbs out is a breakout attempt.
      if (e.kind === 'dotdot') {
        throw new InvalidInputError(
          `${opts.name}: entry ${JSON.stringify(entryName)} would be written outside the destination through symlink ${JSON.stringify(e.link)}`,
        );
      }
    },
  });
  return found.hostPath;
}

async function resolveHardlinkTarget(opts: ExtractOptions, linkpath: string): Promise<string> {
  const name = localName(linkpath);
  if (name === undefined || name === '.') {
    throw new InvalidInputError(`${opts.name}: invalid hardlink target ${JSON.stringify(linkpath)}`);
  }
  const parent = await resolveInDest(opts, posix.dirname(name), linkpath);
  return posix.join(parent, posix.basename(name));
}
