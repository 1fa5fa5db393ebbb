// Resolve a path inside a directory as if that directory were `/`: the image's rootfs for COPY
// destinations, WORKDIR and /etc/passwd, the build context for COPY sources, an ADD archive's
// destination for its entries. Symlinks are followed component by component by hand, because
// the kernel would resolve an absolute target such as `/etc -> /host/etc` against the host's
// root, not the image's (containerd's continuity `fs.RootPath` does the same job for BuildKit).
//
// Two kinds of `..`:
//  - in the *input* path it is resolved lexically, before anything is looked up. Docker cleans
//    COPY destinations and WORKDIR with path.Clean before resolving them, so `/a/../b` is `/b`
//    even when `/a` is a symlink;
//  - in a symlink's *target* it is resolved against the already resolved parent, which holds
//    no symlinks any more, so stepping back one component is what the kernel would do too.
// `..` at the root stays at the root, as in a chroot; callers that must refuse that instead
// (the build context) say so with `onEscape`.
//
// Names that are not UTF-8 travel as fs/bytename.ts strings, so a path given or returned may
// hold escaped bytes: hand it to node:fs through bytename's hostPath.
//
// The answer is a host path, valid as long as nobody swaps a component for a symlink
// afterwards. That holds here: a rootfs is only written by the step that resolves in it.
import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { posix, resolve as resolveHostPath } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { decodeName, hostPath as fsPath } from './bytename.js';

/** Linux's MAXSYMLINKS: how many symlinks one lookup may follow before it fails with ELOOP. */
export const MAX_SYMLINKS = 40;

/** A lookup followed more than MAX_SYMLINKS symlinks: a loop, or a chain too long to be honest. */
export class SymlinkLoopError extends InvalidInputError {
  readonly code = 'ELOOP';
  constructor(readonly path: string) {
    super(`${path}: too many levels of symbolic links`);
  }
}

/** A symlink whose target leaves the root: absolute (`/x`), or `..` past the root. */
export interface Escape {
  readonly kind: 'absolute' | 'dotdot';
  /** Root-relative path of the symlink, '/'-separated. */
  readonly link: string;
  /** The symlink's target, verbatim. */
  readonly target: string;
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too, as open(2) does without O_NOFOLLOW. Default true. */
  readonly followFinal?: boolean;
  /**
   * Called when a symlink points out of the root. Returning keeps chroot semantics (an absolute
   * target is root-relative, `..` stops at the root); throwing refuses the lookup.
   */
  readonly onEscape?: (escape: Escape) => void;
  /**
   * Entries to treat as absent although they exist (the build context hides .dockerignore'd
   * paths this way). Gets the root-relative path and the entry's lstat.
   */
  readonly isHidden?: (path: string, stats: Stats) => boolean | Promise<boolean>;
}

/** Where a lookup ended. */
export interface Lookup {
  /** Absolute host path, always under root. */
  readonly hostPath: string;
  /** The same place relative to root, '/'-separated, '' for the root itself. */
  readonly path: string;
  /** lstat of the final component; undefined when it does not exist (or is hidden). */
  readonly stats: Stats | undefined;
  /**
   * When the first missing component came from a symlink's target: that symlink, which dangles.
   * mkdir -p through it would fail in a chroot (go's MkdirAll stops at a symlink it cannot
   * follow), so callers that create what is missing, as Docker's Untar does, need to know.
   */
  readonly missingThrough?: { readonly link: string; readonly target: string };
}

/** Resolve `path` inside `root` and return the host path (see the module comment for the rules). */
export async function resolveInRoot(root: string, path: string, opts: ResolveOptions = {}): Promise<string> {
  return (await lookupInRoot(root, path, opts)).hostPath;
}

/** Like resolveInRoot, plus the root-relative result and the final component's lstat. */
export async function lookupInRoot(root: string, path: string, opts: ResolveOptions = {}): Promise<Lookup> {
  const hostRoot = resolveHostPath(root);
  const followFinal = opts.followFinal ?? true;
  // Components still to walk, last one first so that pop() takes the next. Each remembers the
  // symlink whose target it came from, to name the culprit if it climbs out of the root.
  const todo: Component[] = splitComponents(posix.normalize(`/${path}`))
    .map((name) => ({ name }))
    .reverse();
  // Components resolved so far: each one exists as a non-symlink, or is past a missing one.
  const done: string[] = [];
  // Index in `done` of the first component that does not exist (or is hidden); -1 if none.
  // Everything below it is missing too, whatever the host has there.
  let missingFrom = -1;
  let missingThrough: Component['from'];
  let links = 0;
  let stats: Stats | undefined;
  let statsKnown = false; // stats describes done's last component (or the root when done is empty)

  while (todo.length > 0) {
    const { name, from } = todo.pop()!;
    if (name === '..') {
      // Only symlink targets can still hold `..`: the input was normalized above.
      if (done.length === 0) {
        if (from) opts.onEscape?.({ kind: 'dotdot', ...from });
      } else {
        done.pop();
        if (done.length <= missingFrom) {
          missingFrom = -1;
          missingThrough = undefined;
        }
      }
      statsKnown = false;
      continue;
    }
    const rel = done.length === 0 ? name : `${done.join('/')}/${name}`;
    const entry = missingFrom === -1 ? await lstatVisible(hostRoot, rel, opts.isHidden) : undefined;
    const isLast = todo.length === 0;
    if (entry?.isSymbolicLink() && (followFinal || !isLast)) {
      if (++links > MAX_SYMLINKS) throw new SymlinkLoopError(path);
      const target = decodeName(await readlink(fsPath(posix.join(hostRoot, rel)), { encoding: 'buffer' }));
      const link = { link: rel, target };
      if (target.startsWith('/')) {
        opts.onEscape?.({ kind: 'absolute', ...link });
        done.length = 0;
      }
      todo.push(
        ...splitComponents(target)
          .map((c) => ({ name: c, from: link }))
          .reverse(),
      );
      statsKnown = false;
      continue;
    }
    if (!entry && missingFrom === -1) {
      missingFrom = done.length;
      missingThrough = from;
    }
    done.push(name);
    stats = entry;
    statsKnown = true;
  }

  const rel = done.join('/');
  const hostPath = rel === '' ? hostRoot : posix.join(hostRoot, rel);
  if (!statsKnown) stats = missingFrom === -1 ? await lstatVisible(hostRoot, rel, opts.isHidden) : undefined;
  return { hostPath, path: rel, stats, ...(missingThrough ? { missingThrough } : {}) };
}

/** Render a root-relative path the way users write it: `/etc/passwd`. */
export function displayPath(rel: string): string {
  return `/${rel}`;
}

interface Component {
  readonly name: string;
  readonly from?: { readonly link: string; readonly target: string };
}

function splitComponents(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

async function lstatVisible(hostRoot: string, rel: string, isHidden: ResolveOptions['isHidden']): Promise<Stats | undefined> {
  let st: Stats;
  try {
    st = await lstat(fsPath(rel === '' ? hostRoot : posix.join(hostRoot, rel)));
  } catch (err) {
    // A missing component, or a file used as a directory: what follows does not exist either.
    // The caller's own operation (mkdir, open) then reports the problem with its own verb.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  if (rel !== '' && isHidden && (await isHidden(rel, st))) return undefined;
  return st;
}
