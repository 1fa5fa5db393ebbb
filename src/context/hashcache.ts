// What the COPY/ADD checksum knows about a context's files from earlier builds: for each file
// (by context-relative path), the lstat fields that change whenever its content can have
// changed — size, mtime, ctime, inode, mode — and the sha256 of the content read then. A file
// whose fields are all unchanged is not read again. This is the idea of git's index and of
// BuildKit's contenthash cache: only new or changed files cost I/O, so the checksum of an
// unchanged 20,000-file context is a directory walk.
//
// Why these fields: a write updates mtime and ctime; `touch -d` can put mtime back, but the
// kernel sets ctime to "now" on every write, chmod, chown, rename or utimes; replacing a file
// (editors, git checkout) gives it a new inode. What they cannot show is a second change within
// the timestamp granularity of the first (same tick, same size, same inode). So a file whose
// ctime is less than RACY_MARGIN_MS older than the moment its content is read is not
// remembered (git's "racily clean" rule) and is read again next time; any change made after a
// remembered read then has a ctime seconds later than the remembered one.
//
// Times are Node's millisecond doubles (Stats.mtimeMs/ctimeMs, exact to about a quarter of a
// microsecond today) rather than BigIntStats' nanoseconds: by the rule above a change moves
// ctime by seconds, and BigIntStats made the walk of an unchanged context markedly slower.
//
// Directories are remembered the same way: the names a directory held when it was listed, under
// its mtime, ctime and inode. Creating, removing or renaming an entry sets the directory's mtime
// and ctime, so a directory whose three are unchanged (and not racily recent) lists the same
// names, and the walk of an unchanged context lstats its entries without reading a directory
// (a 20,000-file tree: ~50 ms of getdents on 5,000 directories, in the kernel).
//
// One file per context root, `<cacheDir>/<sha256 of the root path>`, replaced atomically
// (written aside and renamed; not fsynced: a file cut short is ignored). It is text, streamed in
// and out:
//   tsbuild-contexthash 2 <root as JSON>
//   <sha256 hex> <size> <mtimeMs> <ctimeMs> <inode> <mode> <path as JSON>     (one per file)
//   dir <mtimeMs> <ctimeMs> <inode> <path as JSON> <names joined by / as JSON> (one per directory)
//   end <entries> <sha256 hex of every line above, newlines included>
// (A name holds neither `/` nor NUL, so `/` joins a listing; names are in byte order.)
// A file that does not read back exactly so (truncated, edited, another version, another root)
// is ignored as a whole and rebuilt: the cache can only save reads, never change a checksum.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { AtomicFile } from '../fs/atomic.js';
import type { ListingMemo } from './context.js';

const MAGIC = 'tsbuild-contexthash';
const VERSION = 2;
/**
 * A file whose ctime is this close to the moment its content is read may still change within
 * the same timestamp tick unnoticed. Ticks are a few ms on local filesystems; some (FAT, ext3,
 * NFS with a skewed server clock) are coarser, hence seconds.
 */
export const RACY_MARGIN_MS = 3_000;
const HEX_RE = /^[0-9a-f]{64}$/;
const TRAILER_RE = /^end (\d+) ([0-9a-f]{64})$/;

/** The fields of a regular file's lstat that a content change always moves. */
type Signature = Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino' | 'mode'>;

interface Entry extends Signature {
  /** sha256 of the content, hex. */
  readonly hex: string;
  /** Looked up or recorded since loading: the file exists. */
  seen: boolean;
}

/** The fields of a directory's lstat that adding, removing or renaming an entry always moves. */
type DirSignature = Pick<Stats, 'mtimeMs' | 'ctimeMs' | 'ino'>;

interface DirEntry extends DirSignature {
  /** The names, in byte order, joined by `/`. */
  readonly names: string;
  /** Looked up or recorded since loading: the directory exists. */
  seen: boolean;
}

function sameSignature(a: Signature, b: Signature): boolean {
  return a.ctimeMs === b.ctimeMs && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino && a.mode === b.mode;
}

function sameDirSignature(a: DirSignature, b: DirSignature): boolean {
  return a.ctimeMs === b.ctimeMs && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

export class ContextHashCache implements ListingMemo {
  /** Directories whose whole listing has been walked since loading. */
  private readonly listed = new Set<string>();
  private dirty: boolean;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    readonly root: string,
    private readonly entries: Map<string, Entry>,
    private readonly dirs: Map<string, DirEntry>,
    /** Why the file on disk was not used, when it was there but is not an intact cache. */
    readonly discarded: string | undefined,
  ) {
    this.dirty = discarded !== undefined;
  }

  /** The cache of the context at `root` (a real path), read from `cacheDir` if there is one. */
  static async load(cacheDir: string, root: string): Promise<ContextHashCache> {
    const file = join(cacheDir, createHash('sha256').update(root).digest('hex'));
    const read = await readCacheFile(file, root);
    return new ContextHashCache(file, root, read.entries, read.dirs, read.discarded);
  }

  /** How many files it knows. */
  get size(): number {
    return this.entries.size;
  }

  /** How many directory listings it knows. */
  get listings(): number {
    return this.dirs.size;
  }

  /** The content digest (hex) recorded for this file, if its lstat is unchanged since. */
  lookup(path: string, st: Stats): string | undefined {
    const e = this.entries.get(path);
    if (!e) return undefined;
    e.seen = true;
    return sameSignature(e, st) ? e.hex : undefined;
  }

  /**
   * Remember a file's content digest, read from a file whose lstat was `st` before and after
   * the read; `readStartedMs` is when the read began (Date.now()). Racily recent files are
   * not remembered.
   */
  record(path: string, st: Stats, hex: string, readStartedMs: number): void {
    if (st.ctimeMs >= readStartedMs - RACY_MARGIN_MS) {
      // An older entry no longer describes the file either.
      if (this.entries.delete(path)) this.dirty = true;
      return;
    }
    const old = this.entries.get(path);
    if (old && sameSignature(old, st) && old.hex === hex) {
      old.seen = true;
      return;
    }
    const { size, mtimeMs, ctimeMs, ino, mode } = st;
    this.entries.set(path, { size, mtimeMs, ctimeMs, ino, mode, hex, seen: true });
    this.dirty = true;
  }

  /** The names (in byte order) recorded for this directory, if its lstat is unchanged since. */
  listing(path: string, st: Stats): string[] | undefined {
    const d = this.dirs.get(path);
    if (!d) return undefined;
    d.seen = true;
    if (!sameDirSignature(d, st)) return undefined;
    return d.names === '' ? [] : d.names.split('/');
  }

  /**
   * Remember a directory's names (in byte order), listed from a directory whose lstat was `st`
   * before the listing began at `readStartedMs`. Racily recent directories are not remembered.
   */
  recordListing(path: string, st: Stats, names: readonly string[], readStartedMs: number): void {
    if (st.ctimeMs >= readStartedMs - RACY_MARGIN_MS) {
      if (this.dirs.delete(path)) this.dirty = true;
      return;
    }
    const joined = names.join('/');
    const old = this.dirs.get(path);
    if (old && sameDirSignature(old, st) && old.names === joined) {
      old.seen = true;
      return;
    }
    const { mtimeMs, ctimeMs, ino } = st;
    this.dirs.set(path, { mtimeMs, ctimeMs, ino, names: joined, seen: true });
    this.dirty = true;
  }

  /**
   * A directory was walked in full, to the bottom: entries below it that were not seen since
   * loading are gone (deleted, excluded, or no longer regular files).
   */
  listedDir(path: string): void {
    this.listed.add(path);
  }

  /**
   * Write the cache if anything changed: new or changed files, and files gone from directories
   * walked since loading. Saves are serialized; one that failed does not stop the next.
   */
  save(): Promise<void> {
    this.saving = this.saving.catch(() => undefined).then(() => this.write());
    return this.saving;
  }

  private async write(): Promise<void> {
    if (this.listed.size > 0) {
      for (const known of [this.entries, this.dirs]) {
        for (const [path, e] of known) {
          if (!e.seen && this.belowListed(path)) {
            known.delete(path);
            this.dirty = true;
          }
        }
      }
    }
    if (!this.dirty) return;
    this.dirty = false;
    await mkdir(dirname(this.file), { recursive: true });
    // Not fsynced: a file a power cut cut short fails its end line and is rebuilt (see the top).
    const out = AtomicFile.create(this.file, { durable: false });
    try {
      await writeEntries(out, this.root, this.entries, this.dirs);
      await out.commit();
    } catch (err) {
      this.dirty = true;
      await out.abort();
      throw err;
    }
  }

  private belowListed(path: string): boolean {
    for (let dir = parentOf(path); ; dir = parentOf(dir)) {
      if (this.listed.has(dir)) return true;
      if (dir === '') return false;
    }
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

async function writeEntries(out: AtomicFile, root: string, entries: Map<string, Entry>, dirs: Map<string, DirEntry>): Promise<void> {
  const body = createHash('sha256');
  let chunk = `${MAGIC} ${VERSION} ${JSON.stringify(root)}\n`;
  const flush = async (): Promise<void> => {
    body.update(chunk);
    const drained = out.stream.write(chunk);
    chunk = '';
    if (!drained) await once(out.stream, 'drain');
  };
  for (const [path, e] of entries) {
    // Numbers print in their shortest form that reads back to the same double.
    chunk += `${e.hex} ${e.size} ${e.mtimeMs} ${e.ctimeMs} ${e.ino} ${e.mode} ${JSON.stringify(path)}\n`;
    if (chunk.length >= 64 * 1024) await flush();
  }
  for (const [path, d] of dirs) {
    chunk += `dir ${d.mtimeMs} ${d.ctimeMs} ${d.ino} ${JSON.stringify(path)} ${JSON.stringify(d.names)}\n`;
    if (chunk.length >= 64 * 1024) await flush();
  }
  await flush();
  out.stream.end(`end ${entries.size + dirs.size} ${body.digest('hex')}\n`);
  await out.written;
}

/** Bytes read from the cache file at a time. */
const READ_CHUNK = 1 << 20;

/**
 * The entries of a cache file; none (with the reason) when it is missing or not intact.
 *
 * Read in 1 MiB pieces (not whole: a cache has a line per context file), hashed as bytes and
 * split into lines by hand: for 20,000 files this is most of the time a cached build spends
 * outside its directory walk, so each line costs a few indexOf calls and no regular expression
 * beyond the digest's.
 */
async function readCacheFile(file: string, root: string): Promise<CacheContents> {
  const entries = new Map<string, Entry>();
  const dirs = new Map<string, DirEntry>();
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!fh) return { entries, dirs };
  const header = `${MAGIC} ${VERSION} ${JSON.stringify(root)}`;
  const body = createHash('sha256');
  let lineNo = 0;
  let trailer: RegExpExecArray | undefined;
  let bad: string | undefined;
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    /** Bytes of an incomplete last line, carried to the next piece. */
    let rest: Buffer = Buffer.alloc(0);
    read: for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const piece = rest.length > 0 ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const last = piece.lastIndexOf(0x0a);
      if (last === -1) {
        rest = Buffer.from(piece);
        continue;
      }
      const lines = piece.subarray(0, last + 1);
      const text = lines.toString('utf8');
      rest = Buffer.from(piece.subarray(last + 1));
      let start = 0;
      /** The bytes of this piece before its end line: all of them unless the end line is here. */
      let hashed = lines.length;
      while (start < text.length) {
        const nl = text.indexOf('\n', start);
        lineNo++;
        if (trailer) {
          bad = 'data after the end line';
        } else if (lineNo === 1) {
          if (text.slice(start, nl) !== header) bad = 'not a cache of this context in this version';
        } else if (text.startsWith('end ', start)) {
          // The digest covers everything before the end line (the last line: after it is `bad`).
          hashed = lines.length - Buffer.byteLength(text.slice(start));
          trailer = TRAILER_RE.exec(text.slice(start, nl)) ?? undefined;
          if (!trailer) bad = 'malformed end line';
        } else if (text.startsWith('dir ', start) ? !parseDir(text, start, nl, dirs) : !parseEntry(text, start, nl, entries)) {
          bad = `malformed line ${lineNo}`;
        }
        if (bad !== undefined) break read;
        start = nl + 1;
      }
      // The bytes as read: hashing the decoded text would encode it back to UTF-8, a char at a time.
      body.update(lines.subarray(0, hashed));
    }
    if (!bad && rest.length > 0) bad = 'truncated (last line incomplete)';
  } finally {
    await fh.close();
  }
  if (!bad && lineNo === 0) bad = 'empty';
  if (!bad && !trailer) bad = 'truncated (no end line)';
  if (!bad && Number(trailer![1]) !== entries.size + dirs.size) bad = 'entry count does not match';
  if (!bad && trailer![2] !== body.digest('hex')) bad = 'checksum does not match';
  return bad ? { entries: new Map(), dirs: new Map(), discarded: bad } : { entries, dirs };
}

interface CacheContents {
  entries: Map<string, Entry>;
  dirs: Map<string, DirEntry>;
  discarded?: string;
}

/** One of the five numbers of an entry line, or NaN. */
function numberAt(text: string, from: number, to: number): number {
  if (to <= from) return NaN;
  const c = text.charCodeAt(from);
  // What the writer prints: digits, optionally a leading '-' (never spaces, hex or "Infinity").
  if (!((c >= 48 && c <= 57) || c === 45)) return NaN;
  return Number(text.slice(from, to));
}

/**
 * `count` space-separated numbers from text[from..end), each followed by a space; into `out`.
 * Returns where the text after them starts, or -1 if they are malformed.
 */
function numbersAt(text: string, from: number, end: number, count: number, out: number[]): number {
  for (let field = 0; field < count; field++) {
    const next = text.indexOf(' ', from);
    if (next === -1 || next >= end) return -1;
    const n = numberAt(text, from, next);
    if (Number.isNaN(n)) return -1;
    out.push(n);
    from = next + 1;
  }
  return from;
}

/** The JSON string text[from..to) (quotes included), or undefined if it is not one. */
function quotedAt(text: string, from: number, to: number): string | undefined {
  if (to - from < 2 || text.charCodeAt(from) !== 34 || text.charCodeAt(to - 1) !== 34) return undefined;
  const quoted = text.slice(from, to);
  // JSON.stringify escapes `"`, `\` and control characters only; no backslash means nothing to undo.
  if (quoted.includes('\\')) return parseJsonString(quoted);
  const inner = quoted.slice(1, -1);
  return inner.includes('"') ? undefined : inner;
}

/** Where the JSON string starting at text[from] (a quote) ends, just past its closing quote; -1 if it does not. */
function quotedEnd(text: string, from: number, end: number): number {
  if (text.charCodeAt(from) !== 34) return -1;
  for (let i = from + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 92) i++;
    else if (c === 34) return i + 1;
  }
  return -1;
}

/**
 * `<hex> <size> <mtime> <ctime> <ino> <mode> <"path">` (text[start..end)) into `into`; false if
 * the line is malformed.
 */
function parseEntry(text: string, start: number, end: number, into: Map<string, Entry>): boolean {
  if (text.charCodeAt(start + 64) !== 32) return false;
  const hex = text.slice(start, start + 64);
  if (!HEX_RE.test(hex)) return false;
  const fields: number[] = [];
  const from = numbersAt(text, start + 65, end, 5, fields);
  if (from === -1) return false;
  const path = quotedAt(text, from, end);
  if (path === undefined) return false;
  const [size, mtimeMs, ctimeMs, ino, mode] = fields as [number, number, number, number, number];
  into.set(path, { hex, size, mtimeMs, ctimeMs, ino, mode, seen: false });
  return true;
}

/** `dir <mtime> <ctime> <ino> <"path"> <"names">` (text[start..end)) into `into`; false if malformed. */
function parseDir(text: string, start: number, end: number, into: Map<string, DirEntry>): boolean {
  const fields: number[] = [];
  const from = numbersAt(text, start + 4, end, 3, fields);
  if (from === -1) return false;
  const pathEnd = quotedEnd(text, from, end);
  if (pathEnd === -1 || text.charCodeAt(pathEnd) !== 32) return false;
  const path = quotedAt(text, from, pathEnd);
  const names = quotedAt(text, pathEnd + 1, end);
  if (path === undefined || names === undefined) return false;
  const [mtimeMs, ctimeMs, ino] = fields as [number, number, number];
  into.set(path, { mtimeMs, ctimeMs, ino, names, seen: false });
  return true;
}

function parseJsonString(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
