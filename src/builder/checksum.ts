// What a COPY/ADD step's cache key sees of its sources: names, types, permission bits, sizes,
// link targets and content — not mtimes and not ownership (the context's owners are reset to
// 0 on copy). Two builds whose sources hash alike produce the same layer, so the second can
// reuse the first's (Docker's rule for COPY caching).
//
// A file's content enters as its own sha256, so that with a metadata cache (cacheDir, see
// src/context/hashcache.ts) an unchanged file is not read at all: the checksum of an unchanged
// context costs one directory walk (tree-hasher.ts). A directory taken whole costs less: its
// text is remembered with the stamp of its tree (src/context/treememo.ts), and an unchanged
// stamp, which the helper takes on other cores, stands for the walk. With or without either
// cache, the same sources give the same checksum. (Before the cache existed, content was streamed straight into the one digest; the
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
import type { Stats } from 'node:fs';
import type { BuildContext, ContextSource } from '../context/index.js';
import { ContextHashCache, RACY_MARGIN_MS, resolveSelected, TreeMemos, type SelectOptions } from '../context/index.js';
import type { Digest } from '../digest.js';
import { isNoSpace } from '../fs/nospace.js';
import { hasEscapedBytes } from '../fs/bytename.js';
import { stampTree } from '../runtime/helper.js';
import type { GitSources } from './git.js';
import { gitSettings, parseGitRef } from './git-ref.js';
import { checkRemoteSources, Downloads, isUrlSource, urlFileName, type PinnedChecksum } from './remote.js';
import { TreeHasher } from './tree-hasher.js';

export interface SourcesChecksumOptions {
  /**
   * Directory of the per-context metadata caches (tsbuild passes
   * `<root>/image/<driver>/contexthash`). Without it every file is read every time.
   */
  readonly cacheDir?: string;
  /**
   * Directory of the memos of whole source directories (tsbuild passes
   * `<root>/image/<driver>/contexthash/trees`); used with cacheDir only.
   */
  readonly memoDir?: string;
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
  // Loaded for a walk only: a directory whose stamp is unchanged needs none (memoizedDirBytes).
  const cacheDir = opts.cacheDir;
  const cache = cacheDir === undefined ? undefined : new LazyCache(() => hashCacheOf(context, cacheDir));
  const memos = opts.memoDir === undefined ? undefined : new TreeMemos(opts.memoDir);
  const downloads = opts.downloads ?? new Downloads();
  const owners = opts.owners === true;
  const hasher = new TreeHasher(context, { capture: opts.onListing !== undefined, owners, signal: opts.signal });
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
      for (const m of await resolveSelected(context, source, opts.select ?? {})) {
        if (memos && cache && m.tree === context && !m.filtered && m.source.stats.isDirectory()) {
          const bytes = await memoizedDirBytes(context, m.source, { memos, cache, owners, signal: opts.signal });
          for (const b of bytes) hasher.pushBytes(b);
          continue;
        }
        hasher.useCache(await cache?.get());
        await hasher.entry(m.source, m.source.name, m.tree, !m.filtered);
      }
    }
    const digest = await hasher.digest();
    if (opts.onListing) opts.onListing(hasher.listing());
    // The metadata cache only saves reads: on a full disk the checksum stands without it.
    await cache?.saveIfUsed().catch(unlessNoSpace);
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

function unlessNoSpace(err: unknown): void {
  if (!isNoSpace(err)) throw err;
}

/** The context's metadata cache, loaded once something needs it (a walk), and saved only then. */
class LazyCache {
  private loading: Promise<ContextHashCache> | undefined;

  constructor(private readonly load: () => Promise<ContextHashCache>) {}

  get(): Promise<ContextHashCache> {
    return (this.loading ??= this.load());
  }

  async saveIfUsed(): Promise<void> {
    if (this.loading) await (await this.loading).save();
  }
}

/**
 * What the checksum hashes for a source directory taken whole from the context: the bytes a walk
 * of it gives, or the same bytes remembered (src/context/treememo.ts) when the tree's stamp is
 * the one taken with it. With a stamp to compare, nothing else runs meanwhile: the helper's
 * threads have the cores to themselves (the metadata cache's load on this thread made a 20,000-
 * file stamp ~40 ms slower), and an unchanged tree needs nothing else. Otherwise the stamp, to
 * be recorded, is taken while the cache loads and the tree is walked.
 */
async function memoizedDirBytes(
  context: BuildContext,
  source: ContextSource,
  opts: { memos: TreeMemos; cache: LazyCache; owners: boolean; signal: AbortSignal | undefined },
): Promise<readonly Buffer[]> {
  const key = { root: context.root, path: source.path, name: source.name, ignore: context.ignore.text, owners: opts.owners };
  // An unreadable memo is no memo: the walk below stands without it.
  const memo = await opts.memos.read(key).catch(() => undefined);
  // Without a memo, the directories .dockerignore hides are not known before the walk; unless no
  // rule can hide one, a stamp of everything (a node_modules or .git it hides) is not worth it.
  const stampPrune = memo?.prune ?? (context.ignore.hasExceptions || !/\S/.test(context.ignore.text) ? [] : undefined);
  const startedMs = Date.now();
  const stamping = stampPrune && stampTree(source.hostPath, { prune: stampPrune }).catch(() => undefined);
  if (memo?.stamp && stamping) {
    if ((await stamping)?.digest === memo.stamp) return memo.bytes;
  }
  const cache = opts.cache.get();

  // Only when no rule re-includes can a hidden directory be left out of a stamp: then hiding
  // depends on the path alone. A name that is not UTF-8 cannot be passed on (the stamp keeps it).
  const prune: string[] = [];
  const onHidden = context.ignore.hasExceptions
    ? undefined
    : (path: string, st: Stats): void => {
        const rel = source.path === '' ? path : path.slice(source.path.length + 1);
        if (st.isDirectory() && !hasEscapedBytes(rel)) prune.push(rel);
      };
  const walker = new TreeHasher(context, { capture: false, collect: true, owners: opts.owners, signal: opts.signal, onHidden });
  walker.useCache(await cache);
  try {
    await walker.entry(source, source.name, context, true);
    await walker.complete();
  } finally {
    await walker.settled();
  }
  const bytes = walker.bytes();
  const stamp = await stamping;
  // As in the metadata cache: a tree with a recent change may change again unseen (racily clean).
  const recordable = stamp !== undefined && samePaths(stampPrune ?? [], prune) && stamp.newestCtimeMs < startedMs - RACY_MARGIN_MS;
  await opts.memos.write(key, { stamp: recordable ? stamp.digest : null, prune, bytes }).catch(unlessNoSpace);
  return bytes;
}

function samePaths(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
