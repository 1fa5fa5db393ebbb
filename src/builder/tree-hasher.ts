// Walks a tree in a build context (or an image's root filesystem) and hashes what a COPY/ADD
// cache key covers of it (src/builder/checksum.ts says what that is): names, types, permission
// bits, sizes, link targets, and each file's content as its own sha256, from the context's
// metadata cache when the file's lstat is unchanged (src/context/hashcache.ts), else read.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, readlink } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BuildContext, ContextHashCache } from '../context/index.js';
import { sha256, type Digest } from '../digest.js';
import type { TreeEntry, TreeSource } from '../fs/copytree.js';
import { decodeName, encodeName, hasEscapedBytes, hostPath as fsPath } from '../fs/bytename.js';
import { Limiter, settleAll } from '../fs/limit.js';

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

/**
 * Walks the sources in order and hashes what the digest covers. Digests of files not in the
 * cache (and link targets) are read concurrently: from the first one on, the text is queued
 * with them and hashed in order at the end; until then it goes straight into the hash.
 */
export class TreeHasher {
  private readonly hash: Hash | undefined;
  private cache: ContextHashCache | undefined;
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
  private readonly onHidden: ((path: string, st: Stats) => void) | undefined;
  private syncReads = 0;

  /** The text hashed, when asked to keep it. */
  private readonly captured: string[] | undefined;
  /** With `collect`, the bytes that would have been hashed, in order, instead. */
  private readonly collected: Buffer[] | undefined;

  /**
   * `collect` keeps the bytes instead of hashing them (a memo's, treememo.ts); `onHidden` hears
   * of what .dockerignore hides in directories walked in the context.
   */
  constructor(
    private readonly context: BuildContext,
    opts: {
      capture: boolean;
      collect?: boolean;
      owners: boolean;
      signal: AbortSignal | undefined;
      onHidden?: ((path: string, st: Stats) => void) | undefined;
    },
  ) {
    this.captured = opts.capture ? [] : undefined;
    this.collected = opts.collect ? [] : undefined;
    this.hash = opts.collect ? undefined : createHash('sha256');
    this.owners = opts.owners;
    this.signal = opts.signal;
    this.onHidden = opts.onHidden;
    this.reads = new Limiter(READ_CONCURRENCY, opts.signal);
  }

  /** Digests of unchanged files come from `cache` from now on. */
  useCache(cache: ContextHashCache | undefined): void {
    this.cache = cache;
  }

  listing(): string {
    return this.captured?.join('') ?? '';
  }

  /** What `collect` kept, once complete(). */
  bytes(): readonly Buffer[] {
    return this.collected ?? [];
  }

  push(text: string): void {
    this.text += text;
    if (this.text.length >= TEXT_CHUNK) this.flush();
  }

  /**
   * Text given as the bytes the hash takes (textBytes's, as a memo keeps them). Those are
   * decodeName's input: names that are not UTF-8 are their own bytes, everything else UTF-8.
   */
  pushBytes(bytes: Buffer): void {
    this.flush();
    const text = this.captured ? decodeName(bytes) : undefined;
    if (this.queue.length > 0) this.queue.push(text ?? bytes);
    else {
      this.emit(bytes);
      if (text !== undefined) this.captured!.push(text);
    }
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
    const children = tree === this.context ? await this.context.readDir(e, this.onHidden) : await tree.readDir(e);
    for (const child of children) {
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
    await this.complete();
    if (!this.hash) throw new Error('TreeHasher: made to collect, not to hash');
    return sha256(this.hash.digest('hex'));
  }

  /** Waits for every read, and hashes (or collects, and captures) what was queued behind them. */
  async complete(): Promise<void> {
    this.flush();
    await settleAll(this.pending);
    for (const p of this.queue) {
      if (Buffer.isBuffer(p)) {
        this.emit(p);
        continue;
      }
      const text = typeof p === 'string' ? p : await p;
      this.emit(textBytes(text));
      this.captured?.push(text);
    }
    this.queue.length = 0;
  }

  private emit(bytes: Buffer): void {
    this.hash?.update(bytes);
    this.collected?.push(bytes);
  }

  /** Wait for reads still running (after a failure), so nothing outlives the call. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.pending);
  }

  private flush(): void {
    if (this.text === '') return;
    if (this.queue.length === 0) {
      this.emit(textBytes(this.text));
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
