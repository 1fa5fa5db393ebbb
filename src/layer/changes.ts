// What a layer changed, read from directories: the Change stream (types.ts) that writeLayer turns
// into a tar. Two ways to know it, as containerd's walking differ has them:
//  - overlayChanges: an overlay upper dir *is* the change set. Everything in it was written by
//    the layer; a 0/0 character device is a deletion and trusted.overlay.opaque=y a directory
//    that hides what is below (whiteout.ts keeps both conventions);
//  - treeChanges: two complete trees walked side by side (the vfs driver's snapshots, each a full
//    copy of its parent), with Docker's test for "changed" (pkg/archive/changes.go): metadata,
//    not content, as a copy keeps the metadata of what it did not touch.
// Both yield entries in tar order (compareTarOrder), as the helper's walk reports them.
import { join } from 'node:path';
import { walk } from '../runtime/helper.js';
import type { WalkRecord } from '../runtime/types.js';
import type { Change } from './types.js';
import { OVERLAY_OPAQUE_XATTR } from './whiteout.js';

/** Xattrs that describe overlay bookkeeping, never content. */
const IGNORED_XATTR_PREFIX = 'trusted.overlay.';

/** The changes an overlay upper dir records. */
export async function* overlayChanges(upper: string): AsyncIterable<Change> {
  for await (const rec of walk(upper)) {
    if (rec.type === 'c' && rec.devMajor === 0 && rec.devMinor === 0) {
      yield { kind: 'whiteout', name: rec.path };
      continue;
    }
    yield { kind: 'entry', name: rec.path, record: rec, source: join(upper, rec.path) };
    if (rec.type === 'd' && rec.xattrs?.[OVERLAY_OPAQUE_XATTR]?.toString() === 'y') {
      yield { kind: 'opaque', name: rec.path };
    }
  }
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
  const entry = (rec: WalkRecord): Change => ({ kind: 'entry', name: rec.path, record: rec, source: join(upper, rec.path) });
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
    if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
  }
  return pa.length - pb.length;
}
