// What a layer changed, read from directories: the Change stream (types.ts) that writeLayer turns
// into a tar. Two ways to know it, as containerd's walking differ has them:
//  - overlayChanges: an overlay upper dir *is* the change set. Everything in it was written by
//    the layer; a 0/0 character device is a deletion and trusted.overlay.opaque=y (user.* under
//    `userxattr`) a directory that hides what is below (whiteout.ts keeps both conventions,
//    and fuse-overlayfs's variant of them);
//  - treeChanges: two complete trees walked side by side (the vfs driver's snapshots, each a full
//    copy of its parent), with Docker's test for "changed" (pkg/archive/changes.go): metadata,
//    not content, as a copy keeps the metadata of what it did not touch.
// Both yield entries in tar order (compareTarOrder), as the helper's walk reports them.
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { compareNames, hostPath as fsPath } from '../fs/bytename.js';
import { walk } from '../runtime/helper.js';
import type { WalkRecord } from '../runtime/types.js';
import type { Change } from './types.js';
import { FUSE_OPAQUE_XATTRS, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, isFuseOverlayBookkeeping, type OverlayXattrPrefix } from './whiteout.js';

/**
 * The changes an overlay upper dir records, on the layers `lowerdirs` (top first). One thing in
 * an upper dir is not a change: a directory overlayfs copied up only to hold something that is
 * gone again (a RUN --mount target's stub, container/stubs.ts), with nothing below it and the
 * lower directory's metadata. Like a directory the vfs walk finds unchanged, it is left out.
 */
export async function* overlayChanges(
  upper: string,
  lowerdirs: readonly string[] = [],
  xattrPrefix: OverlayXattrPrefix = 'trusted.overlay.',
  program?: 'fuse-overlayfs',
): AsyncIterable<Change> {
  if (program === 'fuse-overlayfs') {
    yield* fuseOverlayChanges(upper, lowerdirs);
    return;
  }
  const opaqueXattr = `${xattrPrefix}opaque`;
  const held = new HeldDirectory(upper, lowerdirs, (name) => name.startsWith(xattrPrefix));
  for await (const rec of walk(upper)) {
    yield* held.release(rec);
    if (rec.type === 'c' && rec.devMajor === 0 && rec.devMinor === 0) {
      yield { kind: 'whiteout', name: rec.path };
      continue;
    }
    if (rec.type === 'd' && rec.xattrs?.[opaqueXattr]?.toString() === 'y') {
      yield entryOf(upper, rec);
      yield { kind: 'opaque', name: rec.path };
      continue;
    }
    if (rec.type === 'd' && lowerdirs.length > 0) {
      held.hold(rec);
      continue;
    }
    yield entryOf(upper, rec);
  }
  yield* held.release(undefined);
}

function entryOf(upper: string, rec: WalkRecord): Change {
  return { kind: 'entry', name: rec.path, record: rec, source: join(upper, rec.path) };
}

/**
 * A directory of an upper dir held back until the next walk record shows whether it has a child:
 * a childless one that is the lower layers' directory unchanged is no change (overlayChanges).
 */
class HeldDirectory {
  private dir: WalkRecord | undefined;

  constructor(
    private readonly upper: string,
    private readonly lowerdirs: readonly string[],
    /** Overlay's own xattrs, which are bookkeeping, never content. */
    private readonly isBookkeeping: (name: string) => boolean,
    /** Whether a record below the directory counts as a child of it (fuse-overlayfs's markers do not). */
    private readonly isChild: (rec: WalkRecord) => boolean = () => true,
  ) {}

  hold(dir: WalkRecord): void {
    this.dir = dir;
  }

  /** The held directory's entry, if it is a change; `next` is the record after it (none at the end). */
  async *release(next: WalkRecord | undefined): AsyncIterable<Change> {
    const dir = this.dir;
    if (dir === undefined) return;
    this.dir = undefined;
    const hasChild = next !== undefined && next.path.startsWith(`${dir.path}/`) && this.isChild(next);
    if (hasChild || !(await sameAsLower(dir, this.lowerdirs, this.isBookkeeping))) yield entryOf(this.upper, dir);
  }
}

/**
 * overlayChanges for an upper dir fuse-overlayfs wrote (whiteout.ts says how it differs): the
 * same Change stream the kernel's upper dir of the same step gives.
 */
async function* fuseOverlayChanges(upper: string, lowerdirs: readonly string[]): AsyncIterable<Change> {
  const held = new HeldDirectory(upper, lowerdirs, isFuseOverlayBookkeeping, (rec) => !isOpaqueMarker(rec));
  for await (const found of walk(upper)) {
    const rec = withoutBookkeeping(found);
    yield* held.release(rec);
    if (isOpaqueMarker(rec)) continue;
    const slash = rec.path.lastIndexOf('/');
    const base = rec.path.slice(slash + 1);
    const deleted =
      rec.type === 'c' && rec.devMajor === 0 && rec.devMinor === 0
        ? rec.path
        : rec.type === 'f' && rec.size === 0 && base.startsWith(WHITEOUT_PREFIX)
          ? `${rec.path.slice(0, slash + 1)}${base.slice(WHITEOUT_PREFIX.length)}`
          : undefined;
    if (deleted !== undefined) {
      if (await inLowers(deleted, lowerdirs)) yield { kind: 'whiteout', name: deleted };
      continue;
    }
    if (rec.type === 'd' && (await fuseOpaque(found, join(upper, rec.path))) && (await inLowers(rec.path, lowerdirs))) {
      yield entryOf(upper, rec);
      yield { kind: 'opaque', name: rec.path };
      continue;
    }
    if (rec.type === 'd' && lowerdirs.length > 0) {
      held.hold(rec);
      continue;
    }
    yield entryOf(upper, rec);
  }
  yield* held.release(undefined);
}

function isOpaqueMarker(rec: WalkRecord): boolean {
  return rec.type === 'f' && (rec.path === WHITEOUT_OPAQUE || rec.path.endsWith(`/${WHITEOUT_OPAQUE}`));
}

function withoutBookkeeping(rec: WalkRecord): WalkRecord {
  if (rec.xattrs === undefined || !Object.keys(rec.xattrs).some(isFuseOverlayBookkeeping)) return rec;
  const xattrs = Object.fromEntries(Object.entries(rec.xattrs).filter(([name]) => !isFuseOverlayBookkeeping(name)));
  return { ...rec, xattrs };
}

/**
 * fuse-overlayfs marks an opaque directory with an xattr where it can, and always with the marker
 * file. It marks every directory it creates, even where no lower layer has the path, which the
 * kernel marks only over a whiteout: the caller asks the lower layers.
 */
async function fuseOpaque(rec: WalkRecord, dir: string): Promise<boolean> {
  if (FUSE_OPAQUE_XATTRS.some((name) => rec.xattrs?.[name]?.toString() === 'y')) return true;
  const marker = await lstat(fsPath(join(dir, WHITEOUT_OPAQUE))).catch(() => undefined);
  return marker?.isFile() ?? false;
}

/** Whether the topmost lower layer that has `path` has it as something other than a whiteout. */
async function inLowers(path: string, lowerdirs: readonly string[]): Promise<boolean> {
  for (const dir of lowerdirs) {
    const st = await lstat(fsPath(join(dir, path))).catch(() => undefined);
    if (st === undefined) continue;
    return !(st.isCharacterDevice() && st.rdev === 0);
  }
  return false;
}

/** Node sets times as a double of seconds, to about 0.25 µs: a time put back is that close. */
function withinMicrosecond(a: bigint, b: bigint): boolean {
  return (a > b ? a - b : b - a) < 1000n;
}

/** Whether directory `rec` of an upper dir is the lower layers' directory, unchanged. */
async function sameAsLower(rec: WalkRecord, lowerdirs: readonly string[], isBookkeeping: (name: string) => boolean): Promise<boolean> {
  if (Object.keys(rec.xattrs ?? {}).some((name) => !isBookkeeping(name))) return false;
  for (const dir of lowerdirs) {
    const st = await lstat(fsPath(join(dir, rec.path)), { bigint: true }).catch(() => undefined);
    if (st === undefined) continue;
    // The topmost lower that has the path decides (a whiteout there is not a directory).
    return (
      st.isDirectory() &&
      Number(st.mode & 0o7777n) === rec.mode &&
      Number(st.uid) === rec.uid &&
      Number(st.gid) === rec.gid &&
      withinMicrosecond(st.mtimeNs, BigInt(rec.mtime) * 1_000_000_000n + BigInt(rec.mtimeNs))
    );
  }
  return false;
}

/** The changes that turn the tree `lower` (none: empty) into the tree `upper`. */
export async function* treeChanges(lower: string | undefined, upper: string): AsyncIterable<Change> {
  const child = walk(upper)[Symbol.asyncIterator]();
  const base = lower === undefined ? undefined : walk(lower)[Symbol.asyncIterator]();
  let c = await child.next();
  let p = base ? await base.next() : { done: true as const, value: undefined };
  // Unchanged directories on the path to the current entry: emitted only if something below
  // them changes, as overlayfs copies up the parents of whatever it writes.
  const pending: WalkRecord[] = [];
  const emitted = new Set<string>();
  const entry = (rec: WalkRecord): Change => entryOf(upper, rec);
  function* withAncestors(rec: WalkRecord): Generator<Change> {
    for (const dir of pending) {
      if (!emitted.has(dir.path) && rec.path.startsWith(`${dir.path}/`)) {
        emitted.add(dir.path);
        yield entry(dir);
      }
    }
    emitted.add(rec.path);
  }
  function trimPending(path: string): void {
    while (pending.length > 0 && !path.startsWith(`${pending[pending.length - 1]!.path}/`)) pending.pop();
  }
  const skipBelow = async (prefix: string): Promise<void> => {
    while (!p.done && p.value.path.startsWith(`${prefix}/`)) p = await base!.next();
  };
  while (!c.done || !p.done) {
    const order = c.done ? 1 : p.done ? -1 : compareTarOrder(c.value.path, p.value.path);
    if (order < 0) {
      // Only in the upper tree: added.
      const rec = c.value!;
      trimPending(rec.path);
      yield* withAncestors(rec);
      yield entry(rec);
      if (rec.type === 'd') pending.push(rec);
      c = await child.next();
    } else if (order > 0) {
      // Only in the lower tree: deleted, and with it everything below it.
      const rec = p.value!;
      trimPending(rec.path);
      yield* withAncestors(rec);
      yield { kind: 'whiteout', name: rec.path };
      p = await base!.next();
      if (rec.type === 'd') await skipBelow(rec.path);
    } else {
      const rec = c.value!;
      const old = p.value!;
      trimPending(rec.path);
      c = await child.next();
      p = await base!.next();
      if (old.type === 'd' && rec.type !== 'd') await skipBelow(old.path);
      if (differs(old, rec)) {
        yield* withAncestors(rec);
        yield entry(rec);
      }
      if (rec.type === 'd') pending.push(rec);
    }
  }
}

/** Overlay bookkeeping a tree may still carry (a layer copied from an upper dir), never content. */
const IGNORED_XATTR_PREFIX = 'trusted.overlay.';

function xattrsEqual(a: WalkRecord['xattrs'], b: WalkRecord['xattrs']): boolean {
  const keys = (x: WalkRecord['xattrs']) =>
    Object.keys(x ?? {})
      .filter((k) => !k.startsWith(IGNORED_XATTR_PREFIX))
      .sort();
  const ka = keys(a);
  const kb = keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k]!.equals(b![k]!));
}

/** Docker's test for "changed" (pkg/archive/changes.go): metadata, not content. */
function differs(a: WalkRecord, b: WalkRecord): boolean {
  return (
    a.type !== b.type ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.mtime !== b.mtime ||
    a.mtimeNs !== b.mtimeNs ||
    (a.type !== 'd' && a.size !== b.size) ||
    a.link !== b.link ||
    a.devMajor !== b.devMajor ||
    a.devMinor !== b.devMinor ||
    !xattrsEqual(a.xattrs, b.xattrs)
  );
}

/**
 * Tar order for layer entries: depth first, a directory before its contents, siblings sorted by
 * the bytes of their names. The helper's walk emits exactly this order; merging two walks needs
 * the same comparison. Negative if a comes before b. Paths are '/'-separated and relative. */
export function compareTarOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    if (pa[i] !== pb[i]) return compareNames(pa[i]!, pb[i]!);
  }
  return pa.length - pb.length;
}
