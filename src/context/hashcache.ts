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
// One file per context root, `<cacheDir>/<sha256 of the root path>`, replaced atomically
// (written aside, fsynced, renamed). It is text, streamed in and out:
//   tsbuild-contexthash 1 <root as JSON>
//   <sha256 hex> <size> <mtimeMs> <ctimeMs> <inode> <mode> <path as JSON>     (one per file)
//   end <entries> <sha256 hex of every line above, newlines included>
// A file that does not read back exactly so (truncated, edited, another version, another root)
// is ignored as a whole and rebuilt: the cache can only save reads, never change a checksum.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { AtomicFile } from '../fs/atomic.js';

const MAGIC = 'tsbuild-contexthash';
const VERSION = 1;
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

function sameSignature(a: Signature, b: Signature): boolean {
  return a.ctimeMs === b.ctimeMs && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino && a.mode === b.mode;
}

export class ContextHashCache {
  /** Directories whose whole listing has been walked since loading. */
  private readonly listed = new Set<string>();
  private dirty: boolean;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    readonly root: string,
    private readonly entries: Map<string, Entry>,
    /** Why the file on disk was not used, when it was there but is not an intact cache. */
    readonly discarded: string | undefined,
  ) {
    this.dirty = discarded !== undefined;
  }

  /** The cache of the context at `root` (a real path), read from `cacheDir` if there is one. */
  static async load(cacheDir: string, root: string): Promise<ContextHashCache> {
    const file = join(cacheDir, createHash('sha256').update(root).digest('hex'));
    const read = await readCacheFile(file, root);
    return new ContextHashCache(file, root, read.entries, read.discarded);
  }

  /** How many files it knows. */
  get size(): number {
    return this.entries.size;
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
      for (const [path, e] of this.entries) {
        if (!e.seen && this.belowListed(path)) {
          this.entries.delete(path);
          this.dirty = true;
        }
      }
    }
    if (!this.dirty) return;
    this.dirty = false;
    await mkdir(dirname(this.file), { recursive: true });
    const out = AtomicFile.create(this.file);
    try {
      await writeEntries(out, this.root, this.entries);
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

async function writeEntries(out: AtomicFile, root: string, entries: Map<string, Entry>): Promise<void> {
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
  await flush();
  out.stream.end(`end ${entries.size} ${body.digest('hex')}\n`);
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
async function readCacheFile(file: string, root: string): Promise<{ entries: Map<string, Entry>; discarded?: string }> {
  const entries = new Map<string, Entry>();
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!fh) return { entries };
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
      const text = piece.toString('utf8', 0, last + 1);
      rest = Buffer.from(piece.subarray(last + 1));
      let start = 0;
      let hashedTo = 0;
      while (start < text.length) {
        const nl = text.indexOf('\n', start);
        lineNo++;
        if (trailer) {
          bad = 'data after the end line';
        } else if (lineNo === 1) {
          if (text.slice(start, nl) !== header) bad = 'not a cache of this context in this version';
        } else if (text.startsWith('end ', start)) {
          // The digest covers everything before the end line.
          body.update(text.slice(hashedTo, start));
          hashedTo = -1;
          trailer = TRAILER_RE.exec(text.slice(start, nl)) ?? undefined;
          if (!trailer) bad = 'malformed end line';
        } else if (!parseEntry(text, start, nl, entries)) {
          bad = `malformed line ${lineNo}`;
        }
        if (bad !== undefined) break read;
        start = nl + 1;
      }
      if (hashedTo !== -1) body.update(text.slice(hashedTo));
    }
    if (!bad && rest.length > 0) bad = 'truncated (last line incomplete)';
  } finally {
    await fh.close();
  }
  if (!bad && lineNo === 0) bad = 'empty';
  if (!bad && !trailer) bad = 'truncated (no end line)';
  if (!bad && Number(trailer![1]) !== entries.size) bad = 'entry count does not match';
  if (!bad && trailer![2] !== body.digest('hex')) bad = 'checksum does not match';
  return bad ? { entries: new Map(), discarded: bad } : { entries };
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
 * `<hex> <size> <mtime> <ctime> <ino> <mode> <"path">` (text[start..end)) into `into`; false if
 * the line is malformed.
 */
function parseEntry(text: string, start: number, end: number, into: Map<string, Entry>): boolean {
  if (text.charCodeAt(start + 64) !== 32) return false;
  const hex = text.slice(start, start + 64);
  if (!HEX_RE.test(hex)) return false;
  const fields: number[] = [];
  let from = start + 65;
  for (let field = 0; field < 5; field++) {
    const next = text.indexOf(' ', from);
    if (next === -1 || next >= end) return false;
    const n = numberAt(text, from, next);
    if (Number.isNaN(n)) return false;
    fields.push(n);
    from = next + 1;
  }
  if (end - from < 2 || text.charCodeAt(from) !== 34 || text.charCodeAt(end - 1) !== 34) return false;
  const quoted = text.slice(from, end);
  // JSON.stringify escapes `"`, `\` and control characters only; no backslash means nothing to undo.
  let path: string | undefined;
  if (quoted.includes('\\')) path = parseJsonString(quoted);
  else if (!quoted.slice(1, -1).includes('"')) path = quoted.slice(1, -1);
  if (path === undefined) return false;
  const [size, mtimeMs, ctimeMs, ino, mode] = fields as [number, number, number, number, number];
  into.set(path, { hex, size, mtimeMs, ctimeMs, ino, mode, seen: false });
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
