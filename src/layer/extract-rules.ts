// The rules an archive's entries land by, for the one extractor (extract.ts) that unpacks both
// layers (load, import, pull: UnpackLayer in moby/go-archive's diff.go) and ADD's local archives
// (Untar in go-archive's archive.go, into a directory of the image). Where the two differ, the
// difference is a field here with its reason; the defaults are a layer's rules, the strictest,
// and ADD's overrides sit next to them. Nothing else in the extractor knows which caller it serves.
//
// Names are "byte strings" (latin1, one char per byte) so archives with non-UTF-8 names unpack
// exactly as they are; lookups inside the root (securejoin.ts) take them in fs/bytename.ts form.
import { InvalidInputError } from '../errors.js';
import type { Ownership } from '../fs/mkdirall.js';
import { OVERLAY_OPAQUE_XATTR } from './whiteout.js';

export interface ExtractRules {
  /**
   * An absolute entry name (`/etc/passwd`).
   * - refuse: no layer writer produces one, so it marks a hand-made or hostile archive (GNU tar
   *   and moby would strip the `/`);
   * - strip: the name is relative to the destination, as Unpack (go-archive's archive.go) joins
   *   it under `dest`.
   * A name that climbs out with `..` is refused under both.
   */
  readonly absoluteNames: 'refuse' | 'strip';
  /**
   * The directories on the way to an entry.
   * - real-directories: each must be a real directory. A symlink (or any non-directory) this
   *   archive planted is never written through; one a lower layer left (a plain-directory
   *   driver unpacks onto its parent's files) is replaced by a directory, which is what the
   *   overlay view would show. Missing ones are made 0755, less the process umask.
   * - resolve-in-root: resolved inside the root as if it were `/`, by src/fs/securejoin.ts:
   *   symlinks, the archive's own and the image's (`/var/run -> /run`), are followed, an
   *   absolute target is read inside the root and `..` in a relative one stops at the root.
   *   That is Unpack run chrooted into the destination (go-archive's chrootarchive/archive.go),
   *   which Docker's ADD uses: there the kernel resolves both forms the same way. Missing ones
   *   are made 0755 and root's, whatever --chown says (createImpliedDirectories in go-archive's
   *   archive.go uses the root pair of the ID map), but not behind a symlink whose target is
   *   missing: MkdirAll fails on such a link in the chroot (`mkdir /lnk: file exists`), so the
   *   entry is refused, naming the link.
   */
  readonly parents: 'real-directories' | 'resolve-in-root';
  /**
   * What a hardlink may point at.
   * - earlier-entries: an entry this archive wrote before. A plain-directory driver could link
   *   to a lower layer's file, an overlay upper dir could not; refusing keeps the two alike.
   * - inside-root: any path inside the root, found as `parents` finds directories, including
   *   what the destination held before (createTarFile in go-archive's archive.go). A missing
   *   target, or a directory, fails the entry as os.Link fails there, in one line naming it.
   */
  readonly hardlinks: 'earlier-entries' | 'inside-root';
  /**
   * `.wh.` names.
   * - overlay: the root is an empty overlay upper dir; whiteouts become 0/0 char devices and
   *   opaque markers the trusted.overlay.opaque xattr;
   * - delete: the root already holds the parent's files; whiteouts delete what they name and
   *   opaque markers empty their directory of lower content;
   * - plain-files: they are ordinary names, AUFS bookkeeping at the root included. Docker's
   *   Untar converts whiteouts only when asked (TarOptions.WhiteoutFormat), and ADD never asks.
   */
  readonly whiteouts: 'overlay' | 'delete' | 'plain-files';
  /**
   * With `overlay`: the xattr that marks an opaque directory, trusted.overlay.opaque for an
   * overlay mounted by root, user.overlay.opaque under `userxattr` (whiteout.ts).
   */
  readonly opaqueXattr: string;
  /**
   * SCHILY.xattr records.
   * - restore: through the native helper, except overlayfs's own (see queueXattrs);
   * - ignore: what ADD has always done. Not Docker's rule (createTarFile in go-archive's
   *   archive.go and BuildKit's solver/llbsolver/file/unpack_root.go restore them): ADD's old
   *   extractor had no way to set one. Kept as it was so that merging the extractors changes
   *   no image; restoring them is a decision of its own (what to do when the filesystem under
   *   the image refuses one).
   */
  readonly xattrs: 'restore' | 'ignore';
  /** Every entry's owner: the archive's uid/gid, or ADD --chown's (BuildKit's solver/llbsolver/file/unpack.go). */
  readonly owner: Ownership | 'from-archive';
  /** How refusals name things, so each caller's errors read in its own terms. */
  readonly naming: Naming;
}

export interface Naming {
  /** Names an entry, before its quoted name: `layer entry`, `/app.tar: entry`. */
  readonly entry: string;
  /** The archive, as its entries' refusals speak of it: `this layer`. */
  readonly archive: string;
  /** The directory unpacked into: `the layer`, `the destination`. */
  readonly root: string;
}

/** What the extractor is told: `whiteouts` always (no default is right for everyone), the rest when it differs from a layer's. */
export type ExtractOptions = Partial<ExtractRules> & Pick<ExtractRules, 'whiteouts'>;

/** A layer's rules: the defaults. */
const DEFAULTS: Omit<ExtractRules, 'whiteouts'> = {
  absoluteNames: 'refuse',
  parents: 'real-directories',
  hardlinks: 'earlier-entries',
  xattrs: 'restore',
  opaqueXattr: OVERLAY_OPAQUE_XATTR,
  owner: 'from-archive',
  naming: { entry: 'layer entry', archive: 'this layer', root: 'the layer' },
};

/** Docker's Untar into a directory of the image (ADD of a local archive); see each field above. */
export const UNTAR_RULES = {
  absoluteNames: 'strip',
  parents: 'resolve-in-root',
  hardlinks: 'inside-root',
  whiteouts: 'plain-files',
  xattrs: 'ignore',
} as const satisfies Partial<ExtractRules>;

export function extractRules(opts: ExtractOptions): ExtractRules {
  return { ...DEFAULTS, ...opts };
}

/** `name` for messages: as UTF-8 where it is, JSON-quoted. */
export function show(rel: string): string {
  return JSON.stringify(Buffer.from(rel, 'latin1').toString('utf8'));
}

export function refuse(rules: ExtractRules, name: Buffer, why: string): never {
  throw new InvalidInputError(`${rules.naming.entry} ${JSON.stringify(name.toString('utf8'))} ${why}`);
}

/**
 * Cleans an archive path into a relative byte string ('' for the root): `.` and empty parts go,
 * `..` is resolved lexically and refused where it climbs above the root; a leading `/` is
 * refused or dropped as `absoluteNames` says. `entry`: the entry whose link target `name` is.
 */
export function cleanName(rules: ExtractRules, name: Buffer, what: string, entry?: Buffer): string {
  const s = name.toString('latin1');
  // A link target is refused under its entry's name, with the target quoted after the reason.
  const fail = (why: string): never =>
    entry ? refuse(rules, entry, `${what} ${why}: ${JSON.stringify(name.toString('utf8'))}`) : refuse(rules, name, `${what} ${why}`);
  // Stripping needs nothing more: the empty parts before the first `/` are skipped below.
  if (s.startsWith('/') && rules.absoluteNames === 'refuse') fail('is an absolute path');
  const parts: string[] = [];
  for (const part of s.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) fail(`climbs out of ${rules.naming.root} with '..'`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export function joinRel(dir: string, base: string): string {
  return dir === '' ? base : `${dir}/${base}`;
}

export function isUnder(rel: string, dir: string): boolean {
  return dir === '' || rel === dir || rel.startsWith(`${dir}/`);
}
