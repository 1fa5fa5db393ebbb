// The build context: a directory on the host, as COPY and ADD may see it. BuildKit first
// transfers the context to the builder, leaving out what .dockerignore excludes, and COPY then
// reads from that copy. tsbuild reads the directory in place, so the same view is made here:
// an excluded entry does not exist, neither when a source is named or matched, nor inside a
// copied directory, nor as a step while following a symlink. The one exception, as in the
// transfer: an excluded directory that holds a re-included (`!`) entry still exists, holding
// just that.
//
// Where tsbuild is stricter than BuildKit (which confines every path to the context silently):
//  - a source whose `..` climbs above the context root is refused; BuildKit cleans `/../x` to `/x`
//    (in an image's root filesystem, COPY --from, tsbuild does so too: `/..` is `/` there);
//  - a symlink followed while resolving a source must stay inside the context: a target that
//    climbs out with `..`, or any absolute target, is refused; BuildKit would clamp the first
//    and read the second relative to the context root (`/etc/passwd` as `<context>/etc/passwd`),
//    which in practice turns a host path into a "not found".
// Symlinks that are *copied* (inside a copied directory) are never followed, so they may
// point anywhere, as in Docker.
import { lstat, realpath, stat } from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { posix } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { encodeName, hostPath as fsPath, readdirNamesSync } from '../fs/bytename.js';
import type { NamedEntry, TreeEntry, TreeSource } from '../fs/copytree.js';
import { displayPath, lookupInRoot, type Escape, type Lookup } from '../fs/securejoin.js';
import { loadIgnoreRules, parseIgnoreRules, type IgnoreRules } from './ignore.js';
import { compileMatch, hasWildcards } from './pattern.js';

/** How many lstat calls a directory listing makes between two turns of the event loop. */
const LIST_SLICE = 256;

export interface OpenContextOptions {
  /** The Dockerfile's host path; `<Dockerfile>.dockerignore` beside it wins over `.dockerignore`. */
  readonly dockerfile?: string;
}

/**
 * Directory listings remembered from earlier builds (the context's metadata cache,
 * hashcache.ts), consulted before a directory is read.
 */
export interface ListingMemo {
  /** The names (in byte order) of the directory at `path` whose lstat is `st`, if remembered for it. */
  listing(path: string, st: Stats): string[] | undefined;
  /** Remember the names (in byte order) read from it; the read began at `readStartedMs`. */
  recordListing(path: string, st: Stats, names: readonly string[], readStartedMs: number): void;
}

/** A COPY/ADD source resolved in the context. Symlinks named or matched are followed. */
export interface ContextSource extends TreeEntry {
  /**
   * The name it takes at a directory destination: the last component of the path as written or
   * matched (a symlink's own name, not its target's), as BuildKit does. '' for the context root.
   */
  readonly name: string;
}

/** Open a directory as a build context, with its .dockerignore. */
export async function openContext(dir: string, opts: OpenContextOptions = {}): Promise<BuildContext> {
  let root: string;
  try {
    root = await realpath(dir);
    if (!(await stat(root)).isDirectory()) throw new InvalidInputError(`build context ${dir} is not a directory`);
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`cannot open build context ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return new BuildContext(root, await loadIgnoreRules(root, opts.dockerfile));
}

/** An image's root filesystem as the source of COPY --from: no .dockerignore, chroot symlinks. */
export async function openRootfsSource(dir: string): Promise<BuildContext> {
  return new BuildContext(await realpath(dir), parseIgnoreRules('', undefined), 'rootfs');
}

export class BuildContext implements TreeSource {
  /** Excluded directories found to hold a re-included entry (or not). */
  private readonly dirVisibility = new Map<string, Promise<boolean>>();
  private listings: ListingMemo | undefined;

  /**
   * Use openContext (or openRootfsSource). `root` must be a real path (no symlinks).
   * `symlinks`: in a build context a symlink pointing out of it is refused; in an image's root
   * filesystem (COPY --from) it resolves inside the root, as in a chroot.
   */
  constructor(
    readonly root: string,
    readonly ignore: IgnoreRules,
    private readonly symlinks: 'context' | 'rootfs' = 'context',
  ) {}

  /** From now on, directories are listed through `memo` (what it remembers, it is asked first). */
  useListings(memo: ListingMemo): void {
    this.listings = memo;
  }

  /** Is this context-relative path excluded by .dockerignore (before any `!` re-inclusion below it)? */
  isExcluded(path: string): boolean {
    return this.ignore.excludes(path);
  }

  /**
   * Resolve one COPY/ADD source, as written in the Dockerfile (variables already expanded):
   * relative to the context root, a leading `/` meaning the root too. Wildcards follow Go's
   * filepath.Match, one path component each; a wildcard matching nothing yields [] (BuildKit
   * allows that), a plain path that does not exist is an error.
   */
  async resolveSource(source: string): Promise<ContextSource[]> {
    // An image's root has nothing above it: there `..` stops at `/` (BuildKit's path.Join("/",
    // src)), as a chroot does, and the normalize below does just that.
    if (this.symlinks === 'context') refuseClimbingOut(source);
    const clean = posix.normalize(`/${source}`).replace(/\/+$/, '') || '/';
    const components = clean.split('/').filter((c) => c !== '');
    const firstWild = components.findIndex(hasWildcards);
    const prefix = firstWild === -1 ? components : components.slice(0, firstWild);
    const base = await this.lookup(prefix.join('/'), source);
    if (firstWild === -1) {
      if (!base.stats) throw notFound(clean);
      return [{ ...entryOf(base, base.stats), name: components.at(-1) ?? '' }];
    }
    if (!base.stats) throw notFound(`/${prefix.join('/')}`);
    if (!base.stats.isDirectory()) return [];
    const pattern = components.slice(firstWild);
    const matches = await this.match({ ...entryOf(base, base.stats) }, pattern);
    const out: ContextSource[] = [];
    for (const m of matches) {
      if (!m.stats.isSymbolicLink()) {
        out.push(m);
        continue;
      }
      // BuildKit follows symlinks that a wildcard matched, like named ones.
      const target = await this.lookup(m.path, source);
      if (!target.stats) throw notFound(displayPath(m.path));
      out.push({ ...entryOf(target, target.stats), name: m.name });
    }
    return out;
  }

  /**
   * The visible children of a directory, sorted by name (bytewise, as Go sorts). `onHidden`
   * hears of each child that .dockerignore hides.
   *
   * An lstat is a few microseconds in the kernel; through libuv's pool (fs.promises) each one
   * also costs a thread hop and a promise, several times the syscall, and a listing is nothing
   * but lstats. So they are made synchronously, LIST_SLICE at a time, yielding to the event
   * loop between slices so that a huge directory never holds it for long. The listing itself
   * is synchronous for the same reason: a walk awaits one directory after another, so each
   * round trip through the pool was idle time (5,000 directories: ~250 ms).
   */
  async readDir(dir: TreeEntry, onHidden?: (path: string, stats: Stats) => void): Promise<NamedEntry[]> {
    const names = this.listNames(dir);
    const out: NamedEntry[] = [];
    const prefix = dir.path === '' ? '' : `${dir.path}/`;
    const hostPrefix = dir.hostPath.endsWith('/') ? dir.hostPath : `${dir.hostPath}/`;
    for (let i = 0; i < names.length; i++) {
      if (i > 0 && i % LIST_SLICE === 0) await yieldToLoop();
      const name = names[i]!;
      const path = prefix + name;
      const hostPath = hostPrefix + name;
      const stats = lstatSync(fsPath(hostPath));
      const visible = this.isVisible(path, stats);
      if (visible === true || (visible !== false && (await visible))) out.push({ name, path, hostPath, stats });
      else onHidden?.(path, stats);
    }
    return out;
  }

  /** Every name in a directory, in byte order: remembered, or read (and remembered). */
  private listNames(dir: TreeEntry): string[] {
    const remembered = this.listings?.listing(dir.path, dir.stats);
    if (remembered) return remembered;
    const started = Date.now();
    const names = sortBytewise(readdirNamesSync(dir.hostPath));
    this.listings?.recordListing(dir.path, dir.stats, names, started);
    return names;
  }

  /** Entries below `dir` whose relative path matches `pattern` (one element per component). */
  private async match(dir: TreeEntry, pattern: string[]): Promise<ContextSource[]> {
    const matcher = compileMatch(pattern.join('/'));
    if (!matcher) return [];
    const out: ContextSource[] = [];
    // Depth-first in name order, never through symlinks: what Go's filepath.Walk visits. A
    // component wildcard cannot match '/', so only paths as deep as the pattern can match.
    const visit = async (d: TreeEntry, rel: string[]): Promise<void> => {
      for (const child of await this.readDir(d)) {
        const parts = [...rel, child.name];
        if (parts.length === pattern.length) {
          if (matcher(parts.join('/'))) out.push(child);
        } else if (child.stats.isDirectory()) {
          await visit(child, parts);
        }
      }
    };
    await visit(dir, []);
    return out;
  }

  private lookup(path: string, source: string): Promise<Lookup> {
    return lookupInRoot(this.root, path, {
      followFinal: true,
      onEscape: (e) => {
        if (this.symlinks === 'context') throw escapeError(source, e);
      },
      isHidden: async (rel, st) => !(await this.isVisible(rel, st)),
    });
  }

  /** Answered synchronously unless an excluded directory must be looked into. */
  private isVisible(path: string, stats: Stats): boolean | Promise<boolean> {
    if (!this.ignore.excludes(path)) return true;
    if (!this.ignore.hasExceptions || !stats.isDirectory()) return false;
    let visible = this.dirVisibility.get(path);
    if (!visible) {
      visible = this.holdsVisible(path);
      this.dirVisibility.set(path, visible);
    }
    return visible;
  }

  /** Does this (excluded) directory hold anything re-included, at any depth? */
  private async holdsVisible(path: string): Promise<boolean> {
    for (const name of readdirNamesSync(posix.join(this.root, path))) {
      const child = `${path}/${name}`;
      if (await this.isVisible(child, await lstat(fsPath(posix.join(this.root, child))))) return true;
    }
    return false;
  }
}

function entryOf(l: Lookup, stats: Stats): TreeEntry {
  return { path: l.path, hostPath: l.hostPath, stats };
}

/** Docker's classic builder said "forbidden path outside the build context"; so does tsbuild. */
function refuseClimbingOut(source: string): void {
  let depth = 0;
  for (const c of source.split('/')) {
    if (c === '..') {
      if (--depth < 0) throw new InvalidInputError(`forbidden path outside the build context: ${source}`);
    } else if (c !== '' && c !== '.') {
      depth++;
    }
  }
}

/** BuildKit's wording: `"/path": not found`. */
function notFound(path: string): InvalidInputError {
  return new InvalidInputError(`"${path}": not found`);
}

function escapeError(source: string, e: Escape): InvalidInputError {
  return new InvalidInputError(
    `cannot copy ${JSON.stringify(source)}: symlink ${displayPath(e.link)} points outside the build context (to ${JSON.stringify(e.target)})`,
  );
}

/**
 * Names in the byte order of their bytes (Go's sort.Strings). For UTF-8 that is code point
 * order, which JavaScript's default sort (UTF-16 code units) also gives unless a name holds a
 * character from U+D800 up (surrogate pairs sort below U+E000..U+FFFF there), or a byte that is
 * not UTF-8 (fs/bytename.ts): only then are bytes compared.
 */
function sortBytewise(names: string[]): string[] {
  if (!names.some((n) => /[\ud800-\uffff]/.test(n))) return names.sort();
  return names
    .map((n) => ({ n, b: encodeName(n) }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.n);
}
