// COPY and ADD from the build context into a step's rootfs, with BuildKit's semantics
// (dockerfile2llb's dispatchCopy, solver/llbsolver/file/backend.go's docopy, fsutil's Copy).
//
// The builder has mounted the step's snapshot at `rootfs`; everything is written through paths
// resolved inside it (resolveInRoot), so the image's own symlinks (`/var/run -> /run`, or a
// hostile `/evil -> /`) lead somewhere inside the rootfs, never onto the host. (A destination
// directory the copy creates is then filled in the overlay's upper dir, the same directory
// without the mount's costs: inUpperDir.)
//
// The destination:
//  - relative to WORKDIR unless absolute; `.`, `` and anything ending in `/` or `/.` name a
//    directory (created with its parents if missing), otherwise the last component is the
//    target's name, unless it already is a directory in the rootfs;
//  - parents created on the way are 0755 (or --chmod's permission bits, as fsutil does since
//    2025, moby/buildkit#5943) and owned by the --chown identity, else root.
// Each source, in order:
//  - a directory copies its contents, not itself; a file lands as the target or, when the
//    target is a directory, inside it under its own (as written or matched) name;
//  - ADD of a local tar archive (recognized by content) unpacks it into the destination, which
//    is then always a directory;
//  - ADD of a git repository (git.ts) copies the checkout's contents (or its subdir's) into the
//    destination, a directory, owned by --chown or root;
//  - --exclude leaves out what its patterns match below each source, COPY --parents keeps each
//    source's path (context/select.ts);
//  - ADD of a URL (remote.ts) copies the downloaded file like a local file named after the URL's
//    path: 0600 unless --chmod, mtime from Last-Modified, never unpacked. ADD --checksum pins
//    its digest.
// Several sources (after wildcards; a wildcard matching nothing is fine) need a directory
// destination. BuildKit does not check this and, for files, silently writes each one over the
// previous at the same path (moby/buildkit#1853, #4550). tsbuild treats the destination as a
// directory then, and refuses with the classic builder's message only when it exists as a file.
import { applyOps } from '../runtime/helper.js';
import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative } from 'node:path';
import { openRootfsSource, resolveSelected, type BuildContext, type ContextSource, type SelectOptions } from '../context/index.js';
import { InvalidInputError } from '../errors.js';
import { hostPath as fsPath } from '../fs/bytename.js';
import { copyTree, type TreeSource } from '../fs/copytree.js';
import { withImagePaths } from '../fs/errors.js';
import { Limiter } from '../fs/limit.js';
import { mkdirAll, type Ownership } from '../fs/mkdirall.js';
import type { ModeChange } from '../fs/mode.js';
import { displayPath, lookupInRoot, resolveInRoot } from '../fs/securejoin.js';
import type { GitSources } from './git.js';
import { gitSettings, parseGitRef } from './git-ref.js';
import { checkRemoteSources, Downloads, isUrlSource, type PinnedChecksum } from './remote.js';

/** Filesystem operations in flight during one COPY. */
const COPY_CONCURRENCY = 32;
const ROOT: Ownership = { uid: 0, gid: 0 };

export interface CopyIntoRootfsOptions {
  readonly context: BuildContext;
  /** Sources as written, variables expanded: context-relative, wildcards allowed. */
  readonly sources: readonly string[];
  /** Destination as written, variables expanded. */
  readonly dest: string;
  /** The image's WORKDIR (absolute), for a relative destination. */
  readonly workdir: string;
  /** The mounted snapshot: the image's whole filesystem as the step sees it. */
  readonly rootfs: string;
  /**
   * The snapshot's own directory below `rootfs`, when `rootfs` is an overlay over it
   * (MountedRootfs.upperDir): a destination directory this copy creates is filled there.
   */
  readonly upperDir?: string;
  /** --chown, already resolved against the image. Default 0:0 (the context's owners are never kept). */
  readonly chown?: Ownership;
  /**
   * Without --chown, copied entries keep their source's owners instead of 0:0: COPY --from a
   * stage or an image (Docker's classic builder preserves ownership for any source but the
   * context; BuildKit's copy keeps it when no chown is given). Parents created stay root's.
   */
  readonly keepOwners?: boolean;
  /** --chmod, for every file and directory copied: octal bits (07777) or a symbolic change. */
  readonly chmod?: number | ModeChange;
  /** --exclude and --parents (context/select.ts). */
  readonly select?: SelectOptions;
  readonly isAdd: boolean;
  /** ADD --checksum=<algorithm>:<hex>, variables expanded: the one (URL) source must have this digest. */
  readonly checksum?: string;
  /**
   * Where URL sources are downloaded. Pass the instance sourcesChecksum used for the cache key,
   * so the file copied is the one that was hashed and is fetched once; the caller closes it.
   * Without one, a private instance is used and closed before returning.
   */
  readonly downloads?: Downloads;
  /** Fetches git sources (ADD); required when a source is one. The caller closes it. */
  readonly gits?: GitSources;
  /** ADD --keep-git-dir, when given. */
  readonly keepGitDir?: boolean;
  /** The build's: once aborted, no further entry is copied. */
  readonly signal?: AbortSignal;
}

/** One source to copy: a context entry, or a downloaded URL dressed as one. */
interface CopyItem {
  readonly source: ContextSource;
  /** What a directory source's walk sees: the context, or a view of it with --exclude/--parents applied. */
  readonly tree: TreeSource;
  /** ADD of a local file: unpack it when it is a tar archive. URL sources never are. */
  readonly mayUnpack: boolean;
}

/** Copy (or, for ADD, copy or unpack) the sources into the rootfs. */
export async function copyIntoRootfs(opts: CopyIntoRootfsOptions): Promise<void> {
  try {
    await copySources(opts);
  } catch (err) {
    throw withImagePaths(err, opts.rootfs);
  }
}

async function copySources(opts: CopyIntoRootfsOptions): Promise<void> {
  const cmd = opts.isAdd ? 'ADD' : 'COPY';
  if (opts.sources.length === 0) throw new InvalidInputError(`${cmd} requires at least one source`);
  const pinned = checkRemoteSources(opts.sources, { isAdd: opts.isAdd, checksum: opts.checksum });
  if (typeof opts.chmod === 'number' && (!Number.isInteger(opts.chmod) || opts.chmod < 0 || opts.chmod > 0o7777)) {
    throw new InvalidInputError(`invalid chmod parameter: ${opts.chmod.toString(8)}`);
  }
  const downloads = opts.downloads ?? new Downloads();
  try {
    await copyItems(opts, await resolveItems(opts, downloads, pinned));
  } finally {
    if (!opts.downloads) await downloads.close();
  }
}

/** Every source, resolved (URLs downloaded) before anything is written: a missing one fails the step whole. */
async function resolveItems(opts: CopyIntoRootfsOptions, downloads: Downloads, pinned: PinnedChecksum | undefined): Promise<CopyItem[]> {
  const items: CopyItem[] = [];
  for (const s of opts.sources) {
    const git = parseGitRef(s);
    if (git) {
      // The checkout's root, copied as a directory: its contents go to the destination.
      if (!opts.gits) throw new Error('copyIntoRootfs: a git source needs opts.gits');
      const { keepGitDir, checksum } = gitSettings(git, { keepGitDir: opts.keepGitDir, checksum: opts.checksum });
      const checkout = await openRootfsSource(await opts.gits.checkout(git, keepGitDir, checksum));
      for (const { source, tree } of await resolveSelected(checkout, '/', {
        ...(opts.select?.exclude ? { exclude: opts.select.exclude } : {}),
      })) {
        items.push({ source, tree, mayUnpack: false });
      }
      continue;
    }
    if (isUrlSource(s)) {
      const file = await downloads.get(s, pinned);
      const stats = await lstat(file.hostPath);
      const source = { name: file.name, path: file.name, hostPath: file.hostPath, stats };
      items.push({ source, tree: opts.context, mayUnpack: false });
      continue;
    }
    for (const { source, tree } of await resolveSelected(opts.context, s, opts.select ?? {})) {
      items.push({ source, tree, mayUnpack: opts.isAdd });
    }
  }
  return items;
}

async function copyItems(opts: CopyIntoRootfsOptions, items: readonly CopyItem[]): Promise<void> {
  const cmd = opts.isAdd ? 'ADD' : 'COPY';
  const dest = destination(opts.dest, opts.workdir);
  const several = items.length > 1;
  const destIsDir = dest.isDir || several;
  if (several && !dest.isDir) {
    const existing = await lookupInRoot(opts.rootfs, dest.path);
    if (existing.stats && !existing.stats.isDirectory()) {
      throw new InvalidInputError(`When using ${cmd} with more than one source file, the destination must be a directory and end with a /`);
    }
  }

  const owner = opts.chown ?? ROOT;
  const limiter = new Limiter(COPY_CONCURRENCY, opts.signal);
  // fsutil gives created parents --chmod's bits only when they are octal; a symbolic mode leaves them 0755.
  const parentMode = typeof opts.chmod === 'number' ? opts.chmod & 0o777 : (opts.chmod?.octal ?? 0o755) & 0o777;
  for (const { source, tree, mayUnpack } of items) {
    if (mayUnpack) {
      // Loaded here, with the tar reader and extractor behind it: only ADD of a local file can unpack an archive.
      const { isTarArchive, untar } = await import('../layer/untar.js');
      if (await isTarArchive(source.hostPath, source.stats)) {
        // unpack.go: the destination is a directory, 0755, owned by --chown or root.
        const host = await resolveInRoot(opts.rootfs, dest.path);
        await mkdirAll(host, { mode: 0o755, owner, root: opts.rootfs });
        await untar({
          archive: source.hostPath,
          dest: host,
          name: displayPath(source.path),
          ...(opts.chown ? { owner: opts.chown } : {}),
        });
        continue;
      }
    }
    const { target, created } = await prepareTarget(source, dest.path, destIsDir, { mode: parentMode, owner, root: opts.rootfs });
    const direct = created ? inUpperDir(opts, target) : undefined;
    // A URL source is a single file: copyTree never asks the context to list it.
    await copyTree(tree, source, direct ?? target, {
      ...(opts.keepOwners && !opts.chown ? {} : { owner }),
      root: direct !== undefined ? opts.upperDir! : opts.rootfs,
      limiter,
      targetIsNew: created,
      ...(opts.chmod !== undefined ? { mode: opts.chmod } : {}),
      keepCapabilities: (files) =>
        applyOps(files.map((f) => ({ op: 'copyxattr', from: f.from, path: f.to, name: 'security.capability' }) as const)),
    });
  }
}

/**
 * Where to fill a destination directory that prepareTarget just created through the overlay:
 * the same directory in the overlay's upper dir, or undefined to copy through the mount.
 *
 * Why: every entry created through overlayfs costs it a lookup in each lower layer and its own
 * bookkeeping; W2's COPY of 20,000 files into a new directory took 0.95-0.99 s through the
 * mount and 0.69-0.79 s here (the two taking turns, same tree and machine). Why it is
 * sound: the directory had nothing below it when overlayfs made it (had it merged a lower
 * directory, it would have existed already), so the merged view of everything under it is
 * the upper dir's alone, whiteouts and opaque markers included, whatever is written there;
 * only a lower directory's contents could make the mount show more, and there is none. Nothing
 * was looked up under it through the mount yet, so the mount has no cached entry to go stale,
 * and what is looked up later (a second source copied into the same directory) is found in
 * the upper dir as it is now. The differ reads the upper dir anyway.
 */
function inUpperDir(opts: CopyIntoRootfsOptions, target: string): string | undefined {
  if (opts.upperDir === undefined) return undefined;
  const rel = relative(opts.rootfs, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  const there = join(opts.upperDir, rel);
  // Made by overlayfs in the upper dir at the same path; anything else and the mount is used.
  return lstatSync(fsPath(there), { throwIfNoEntry: false })?.isDirectory() ? there : undefined;
}

interface Destination {
  /** Absolute and clean, no trailing slash (except `/` itself). */
  readonly path: string;
  /** Written as a directory: `.`, empty, or ending in `/` or `/.`. */
  readonly isDir: boolean;
}

/** BuildKit's pathRelativeToWorkingDir with keepSlash, then cleanPath. */
function destination(dest: string, workdir: string): Destination {
  const d = dest === '' || dest === '.' ? './' : dest;
  const isDir = d.endsWith('/') || d.endsWith('/.');
  const abs = d.startsWith('/') ? d : posix.join('/', workdir || '/', d);
  const path = posix.normalize(abs).replace(/(.)\/+$/, '$1');
  return { path, isDir };
}

/**
 * fsutil's Copy up to the copy itself: create the destination's parents (or the destination,
 * when it is a directory), then pick the target for this source: a host path, and whether it
 * is a directory created just now (so empty).
 */
async function prepareTarget(
  source: ContextSource,
  destPath: string,
  destIsDir: boolean,
  mkdirOpts: { mode: number; owner: Ownership; root: string },
): Promise<{ target: string; created: boolean }> {
  const root = mkdirOpts.root;
  const made = await mkdirAll(await resolveInRoot(root, destIsDir ? destPath : posix.dirname(destPath)), mkdirOpts);
  const host = await resolveInRoot(root, destPath);
  const existing = await lstat(host).catch(() => undefined);
  if (source.stats.isDirectory()) {
    // The contents go into the destination, created if need be; a file there is an error
    // from the copy itself ("cannot copy to non-directory").
    if (existing) return { target: host, created: made.includes(host) };
    await mkdirAll(host, mkdirOpts);
    return { target: host, created: true };
  }
  if (existing?.isDirectory()) return { target: join(host, source.name), created: false };
  await mkdirAll(dirname(host), mkdirOpts);
  return { target: host, created: false };
}
