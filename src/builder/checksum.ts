// What a COPY/ADD step's cache key sees of its sources: names, types, permission bits, sizes,
// link targets and content — not mtimes and not ownership (the context's owners are reset to
// 0 on copy). Two builds whose sources hash alike produce the same layer, so the second can
// reuse the first's (Docker's rule for COPY caching).
//
// A file's content enters as its own sha256, so that with a metadata cache (cacheDir, see
// src/context/hashcache.ts) an unchanged file is not read at all: the checksum of an unchanged
// context costs one directory walk. With or without the cache, the same sources give the same
// checksum. (Before the cache existed, content was streamed straight into the one digest; the
// checksums of that version differ, so its COPY cache entries miss once.)
//
// A URL source (ADD) enters as what BuildKit's http source puts in its cache key: the file's
// name, mode, content digest and Last-Modified. The content digest means downloading it, once
// per step (the copy reuses the file through `downloads`). With ADD --checksum the pinned
// digest stands in for the content and nothing is downloaded unless the step runs — BuildKit's
// rule too.
//
// A git source (ADD) enters as its remote, the commit its ref resolves to (ls-remote), its
// subdir and --keep-git-dir: the commit is the content, so a cached step fetches nothing.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, readlink } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BuildContext } from '../context/index.js';
import { ContextHashCache, resolveSelected, type SelectOptions } from '../context/index.js';
import { sha256, type Digest } from '../digest.js';
import { isNoSpace } from '../fs/nospace.js';
import type { TreeEntry, TreeSource } from '../fs/copytree.js';
import { decodeName, encodeName, hasEscapedBytes, hostPath as fsPath } from '../fs/bytename.js';
import { Limiter, settleAll } from '../fs/limit.js';
import type { GitSources } from './git.js';
import { gitSettings, parseGitRef } from './git-ref.js';
import { checkRemoteSources, Downloads, isUrlSource, urlFileName, type PinnedChecksum } from './remote.js';

/** Files read at once when their digests are not cached (libuv's pool does the reads). */
const READ_CONCURRENCY = 32;
const READ_CHUNK = 64 * 1024;
/** Files up to this size are read synchronously (see readSmallFile). */
const SMALL_FILE = 64 * 1024;
const SYNC_READS_PER_TURN = 64;
/** If a file was swapped for a symlink or a fifo since the walk, fail rather than follow it or block. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Text gathered before it is hashed (or queued): fewer, larger hash updates. */
const TEXT_CHUNK = 64 * 1024;

export interface SourcesChecksumOptions {
  /**
   * Directory of the per-context metadata caches (tsbuild passes
   * `<root>/image/<driver>/contexthash`). Without it every file is read every time.
   */
  readonly cacheDir?: string;
  /** ADD (URLs allowed) or COPY (a URL is an error). Undefined: URLs allowed, copyIntoRootfs checks. */
  readonly isAdd?: boolean;
  /** ADD --checksum=<algorithm>:<hex>, variables expanded. */
  readonly checksum?: string;
  /**
   * Where URL sources are downloaded; pass the same instance to copyIntoRootfs and close it
   * after the step. Without one, URLs are downloaded into a private instance, closed here,
   * and the copy downloads them again.
   */
  readonly downloads?: Downloads;
  /** --exclude and --parents: only what the copy takes is hashed. */
  readonly select?: SelectOptions;
  /** Resolves git sources (ADD); required when a source is one. */
  readonly gits?: GitSources;
  /** ADD --keep-git-dir, when given. */
  readonly keepGitDir?: boolean;
  /**
   * Gets the text the digest was computed over: one entry per source, file and directory (name,
   * mode, size, content digest), which a cache keeps to say which file made a COPY miss.
   */
  readonly onListing?: (text: string) => void;
  /**
   * Owners enter the digest too: for COPY --from, which keeps the source's owners (the context's
   * are reset to root, so a context's checksum leaves them out).
   */
  readonly owners?: boolean;
  /** The build's: once aborted, the walk stops. */
  readonly signal?: AbortSignal;
}

/** One digest over every source of a COPY/ADD, in the order written. */
export async function sourcesChecksum(
  context: BuildContext,
  sources: readonly string[],
  opts: SourcesChecksumOptions = {},
): Promise<Digest> {
  const pinned = checkRemoteSources(sources, { isAdd: opts.isAdd ?? true, checksum: opts.checksum });
  const cache = opts.cacheDir === undefined ? undefined : await hashCacheOf(context, opts.cacheDir);
  const downloads = opts.downloads ?? new Downloads();
  const hasher = new TreeHasher(context, cache, {
    capture: opts.onListing !== undefined,
    owners: opts.owners === true,
    signal: opts.signal,
  });
  try {
    for (const source of sources) {
      hasher.push(`source\0${source}\0`);
      const git = parseGitRef(source);
      if (git) {
        // The commit stands for the content, as in BuildKit's git source key: nothing is fetched.
        if (!opts.gits) throw new Error('sourcesChecksum: a git source needs opts.gits');
        const { keepGitDir, checksum } = gitSettings(git, { keepGitDir: opts.keepGitDir, checksum: opts.checksum });
        const { commit } = await opts.gits.resolve(git, checksum);
        hasher.push(`g\0${JSON.stringify({ remote: git.remote, commit, subdir: git.subdir, keepGitDir })}\n`);
        continue;
      }
      if (isUrlSource(source)) {
        hasher.push(await urlPart(source, downloads, pinned));
        continue;
      }
      for (const m of await resolveSelected(context, source, opts.select ?? {}))
        await hasher.entry(m.source, m.source.name, m.tree, !m.filtered);
    }
    const digest = await hasher.digest();
    if (opts.onListing) opts.onListing(hasher.listing());
    // The metadata cache only saves reads: on a full disk the checksum stands without it.
    await cache?.save().catch((err: unknown) => {
      if (!isNoSpace(err)) throw err;
    });
    return digest;
  } finally {
    await hasher.settled();
    if (!opts.downloads) await downloads.close();
  }
}

/** BuildKit's formatCacheKey fields for an http source, as Dockerfile ADD sets them (0600, root). */
async function urlPart(url: string, downloads: Downloads, pinned: PinnedChecksum | undefined): Promise<string> {
  if (pinned) return `u\0${JSON.stringify({ name: urlFileName(url), mode: 0o600, checksum: pinned.text, lastModified: null })}\n`;
  const file = await downloads.get(url);
  const lastModified = file.lastModified ? file.lastModified.getTime() / 1000 : null;
  return `u\0${JSON.stringify({ name: file.name, mode: 0o600, checksum: file.digest, lastModified })}\n`;
}

/**
 * One cache per (context, cacheDir) for the life of the BuildContext: loaded once per build. The
 * context lists its directories through it from then on, for the copy's walk too.
 */
const caches = new WeakMap<BuildContext, Map<string, Promise<ContextHashCache>>>();

function hashCacheOf(context: BuildContext, cacheDir: string): Promise<ContextHashCache> {
  let byDir = caches.get(context);
  if (!byDir) caches.set(context, (byDir = new Map()));
  let cache = byDir.get(cacheDir);
  if (!cache) {
    cache = ContextHashCache.load(cacheDir, context.root).then((loaded) => {
      context.useListings(loaded);
      return loaded;
    });
    byDir.set(cacheDir, cache);
  }
  return cache;
}

/**
 * Walks the sources in order and hashes what the digest covers. Digests of files not in the
 * cache (and link targets) are read concurrently: from the first one on, the text is queued
 * with them and hashed in order at the end; until then it goes straight into the hash.
 */
class TreeHasher {
  private readonly hash = createHash('sha256');
  private text = '';
  /**
   * Text and reads in order, once a read is pending. The text is kept as its bytes unless it is
   * also captured: as a string it is a rope of every piece pushed, thousands of small objects
   * that each scavenge copied until the end (W2's listing behind its first symlink: ~9 MB).
   */
  private readonly queue: (string | Buffer | Promise<string>)[] = [];
  private readonly pending: Promise<string>[] = [];
  private readonly reads: Limiter;
  private readonly owners: boolean;
  private readonly signal: AbortSignal | undefined;
  private syncReads = 0;

  /** The text hashed, when asked to keep it. */
  private readonly captured: string[] | undefined;

  constructor(
    private readonly context: BuildContext,
    private readonly cache: ContextHashCache | undefined,
    opts: { capture: boolean; owners: boolean; signal: AbortSignal | undefined },
  ) {
    this.captured = opts.capture ? [] : undefined;
    this.owners = opts.owners;
    this.signal = opts.signal;
    this.reads = new Limiter(READ_CONCURRENCY, opts.signal);
  }

  listing(): string {
    return this.captured?.join('') ?? '';
  }

  push(text: string): void {
    this.text += text;
    if (this.text.length >= TEXT_CHUNK) this.flush();
  }

  /**
   * `tree` is what the walk sees below a directory; `full` says it is the whole context's view
   * (no --exclude or --parents), so the metadata cache may forget files it did not meet.
   */
  async entry(e: TreeEntry, name: string, tree: TreeSource = this.context, full = true): Promise<void> {
    if (e.stats.isDirectory()) await this.dir(e, name, tree, full);
    else await this.leaf(e, name);
  }

  private async dir(e: TreeEntry, name: string, tree: TreeSource, full: boolean): Promise<void> {
    this.push(`d\0${name}\0${(e.stats.mode & 0o7777).toString(8)}\0${this.owner(e.stats)}`);
    for (const child of await tree.readDir(e)) {
      // The walk's own yields (readDir, SYNC_READS_PER_TURN) let a signal handler run; this sees it.
      this.signal?.throwIfAborted();
      const childName = `${name}/${child.name}`;
      if (child.stats.isDirectory()) await this.dir(child, childName, tree, full);
      else {
        // Most leaves are done synchronously: no promise per file on the warm path.
        const wait = this.leaf(child, childName);
        if (wait) await wait;
      }
    }
    if (full) this.cache?.listedDir(e.path);
    this.push('\n');
  }

  /** Anything but a directory; returns a promise only when it had to wait. */
  private leaf(e: TreeEntry, name: string): Promise<void> | undefined {
    const st = e.stats;
    this.push(`${kindOf(st)}\0${name}\0${(st.mode & 0o7777).toString(8)}\0${this.owner(st)}`);
    if (st.isFile()) {
      this.push(`${st.size}\0`);
      const cached = this.cache?.lookup(e.path, st);
      if (cached !== undefined) {
        this.push(`${cached}\n`);
      } else if (st.size <= SMALL_FILE) {
        // The event loop gets a turn every SYNC_READS_PER_TURN synchronous reads.
        if (++this.syncReads % SYNC_READS_PER_TURN === 0) {
          return yieldToLoop().then(() => this.push(`${this.readSmallFile(e)}\n`));
        }
        this.push(`${this.readSmallFile(e)}\n`);
      } else {
        this.later(() => this.readFile(e));
        this.push('\n');
      }
    } else if (st.isSymbolicLink()) {
      this.later(async () => decodeName(await readlink(fsPath(e.hostPath), { encoding: 'buffer' })));
      this.push('\0\n');
    } else {
      this.push(`${st.rdev}\0\n`);
    }
    return undefined;
  }

  private owner(st: Stats): string {
    return this.owners ? `${st.uid}:${st.gid}\0` : '';
  }

  /** The digest, once every read has finished. */
  async digest(): Promise<Digest> {
    this.flush();
    await settleAll(this.pending);
    for (const p of this.queue) {
      if (Buffer.isBuffer(p)) {
        this.hash.update(p);
        continue;
      }
      const text = typeof p === 'string' ? p : await p;
      this.hash.update(textBytes(text));
      this.captured?.push(text);
    }
    return sha256(this.hash.digest('hex'));
  }

  /** Wait for reads still running (after a failure), so nothing outlives the call. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.pending);
  }

  private flush(): void {
    if (this.text === '') return;
    if (this.queue.length === 0) {
      this.hash.update(textBytes(this.text));
      this.captured?.push(this.text);
    } else this.queue.push(this.captured ? this.text : textBytes(this.text));
    this.text = '';
  }

  private later(read: () => Promise<string>): void {
    this.flush();
    const p = this.reads.run(read);
    // Rejections surface from digest() (settleAll); until then they are not unhandled.
    p.catch(() => undefined);
    this.pending.push(p);
    this.queue.push(p);
  }

  private async readFile(e: TreeEntry): Promise<string> {
    const started = Date.now();
    const { hex, stats } = await hashFile(fsPath(e.hostPath), e.stats.size);
    this.remember(e, hex, stats, started);
    return hex;
  }

  /**
   * Small files are read synchronously: through fs.promises, opening, reading, fstat-ing and
   * closing one costs several times the syscalls themselves, which dominated a cold 20,000-file
   * checksum.
   */
  private readSmallFile(e: TreeEntry): string {
    const started = Date.now();
    const { hex, stats } = hashSmallFileSync(fsPath(e.hostPath), e.stats.size);
    this.remember(e, hex, stats, started);
    return hex;
  }

  /** Cache a digest only if the file did not change between the walk's lstat and the read's end. */
  private remember(e: TreeEntry, hex: string, after: Stats, readStartedMs: number): void {
    if (sameFile(after, e.stats)) this.cache?.record(e.path, e.stats, hex, readStartedMs);
  }
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Text as the bytes the hash takes. Names that are not UTF-8 (fs/bytename.ts) enter as their own
 * bytes: UTF-8 would turn every such byte into the same U+FFFD, and `a\xff` and `a\xfe` would
 * give one key. ASCII text, nearly all of it, is its own UTF-8 and is taken as Latin-1, which is
 * copied rather than encoded a character at a time (a 20,000-file listing: ~15 ms -> ~2 ms).
 */
function textBytes(text: string): Buffer {
  if (hasEscapedBytes(text)) return encodeName(text);
  return Buffer.from(text, NON_ASCII.test(text) ? 'utf8' : 'latin1');
}

function kindOf(st: Stats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  if (st.isCharacterDevice()) return 'c';
  return 'b';
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.mode === b.mode;
}

/** hashFile for a file of at most SMALL_FILE bytes, synchronously. */
function hashSmallFileSync(path: string | Buffer, size: number): { hex: string; stats: Stats } {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size + 1));
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return { hex: h.digest('hex'), stats: fstatSync(fd) };
  } finally {
    closeSync(fd);
  }
}

/**
 * sha256 of a regular file, and its fstat after reading (OPEN_FLAGS: never through a symlink,
 * never blocking on a fifo).
 */
async function hashFile(path: string | Buffer, size: number): Promise<{ hex: string; stats: Stats }> {
  const fh = await open(path, OPEN_FLAGS);
  try {
    const h = createHash('sha256');
    // Sized to the file (small ones come from Node's shared pool): most context files are
    // small, and a fresh 64 KiB buffer for each would keep the garbage collector busy.
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size + 1));
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return { hex: h.digest('hex'), stats: await fh.stat() };
  } finally {
    await fh.close();
  }
}
