// diffImages: what differs between the final filesystems of two images, path by path, as
// `docker diff` and container-diff report it: paths added, removed, and changed (content, also at
// the same size; mode; owner; symlink target; type). Each image's layers are replayed bottom up
// exactly as analyze replays them (replay.ts) from the entries its source gives (source.ts): a
// stored layer's tar-split, any other layer's tar headers. No file content is compared byte by
// byte: a file's content is its size and CRC-64, which a tar-split records and which is computed
// the same way while streaming a layer that is not stored, so the two sides compare whatever
// their sources. mtimes are not compared: every rebuild changes them. The replay is final-fs.ts's,
// which keeps one string per path (replay.ts's bookkeeping of every copy is analyze's).
import type { Digest } from '../digest.js';
import { decodeState, FinalFilesystem, type StateKey } from './final-fs.js';
import type { SourceImage } from './source.js';

export type PathType = 'file' | 'dir' | 'symlink' | 'special';

/** A path in one image's final filesystem. */
export interface PathState {
  readonly type: PathType;
  /** Content bytes (a file's size, a symlink target's length; 0 for the rest). */
  readonly size: number;
  /** Permission bits and setuid/setgid/sticky, as a number (JSON) — shown in octal. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** A symlink's target. */
  readonly target?: string;
}

export type Difference = 'type' | 'content' | 'mode' | 'owner' | 'target';

export interface PathChange {
  /** Absolute image path. */
  readonly path: string;
  readonly change: 'added' | 'removed' | 'changed';
  /** Absent for an added path. */
  readonly before?: PathState;
  /** Absent for a removed path. */
  readonly after?: PathState;
  /** What changed (changed paths only; `type` alone when the type did). */
  readonly what: readonly Difference[];
}

export interface ImageDiff {
  readonly from: { readonly name: string; readonly id: Digest };
  readonly to: { readonly name: string; readonly id: Digest };
  readonly identical: boolean;
  readonly summary: {
    readonly added: number;
    readonly removed: number;
    readonly changed: number;
    /** Content bytes of the added paths, of the removed ones. */
    readonly addedBytes: number;
    readonly removedBytes: number;
  };
  /** Sorted by path, a directory before what is below it. */
  readonly changes: readonly PathChange[];
}

/** A path's state with its content fingerprint, for comparing. */
interface Seen {
  readonly state: PathState;
  readonly fingerprint: string | undefined;
}

/** The final filesystem of an image: its layers replayed, keeping one string per path. */
async function finalFilesystem(img: SourceImage): Promise<FinalFilesystem> {
  const fs = new FinalFilesystem();
  for (const layer of img.layers) await fs.apply(layer.entries());
  return fs;
}

function seen(key: StateKey): Seen {
  const { fingerprint, target, ...rest } = decodeState(key);
  return { state: { ...rest, ...(rest.type === 'symlink' ? { target: target ?? '' } : {}) }, fingerprint };
}

/** What differs between one path's two states; empty when nothing does. */
function differences(a: Seen, b: Seen): Difference[] {
  if (a.state.type !== b.state.type) return ['type'];
  const what: Difference[] = [];
  // Equal sizes with a fingerprint missing on one side (an empty file has none) count as equal content.
  if (a.state.size !== b.state.size || (a.fingerprint !== undefined && b.fingerprint !== undefined && a.fingerprint !== b.fingerprint)) {
    what.push(a.state.type === 'symlink' ? 'target' : 'content');
  }
  if (a.state.mode !== b.state.mode) what.push('mode');
  if (a.state.uid !== b.state.uid || a.state.gid !== b.state.gid) what.push('owner');
  return what;
}

/** Paths in tree order: `/a`, `/a/b`, `/a-b` ('/' sorts before every other character). */
export function comparePaths(a: string, b: string): number {
  const ka = a.replaceAll('/', '\0');
  const kb = b.replaceAll('/', '\0');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Compares two images' final filesystems. Identical image IDs are identical without reading a layer. */
export async function diffImages(from: SourceImage, to: SourceImage): Promise<ImageDiff> {
  const names = { from: { name: sourceLabel(from), id: from.id }, to: { name: sourceLabel(to), id: to.id } };
  const changes: PathChange[] = [];
  if (from.id !== to.id) {
    // Both final filesystems are walked together: only the paths that differ become objects.
    const [a, b] = [await finalFilesystem(from), await finalFilesystem(to)];
    for (const [path, was, is] of FinalFilesystem.compare(a, b)) {
      if (was === undefined) changes.push({ path: `/${path}`, change: 'added', after: seen(is!).state, what: [] });
      else if (is === undefined) changes.push({ path: `/${path}`, change: 'removed', before: seen(was).state, what: [] });
      else {
        const [before, after] = [seen(was), seen(is)];
        const what = differences(before, after);
        if (what.length > 0) changes.push({ path: `/${path}`, change: 'changed', before: before.state, after: after.state, what });
      }
    }
  }
  changes.sort((x, y) => comparePaths(x.path, y.path));
  const count = (c: PathChange['change']): number => changes.filter((x) => x.change === c).length;
  const bytes = (c: PathChange['change']): number =>
    changes.filter((x) => x.change === c).reduce((n, x) => n + (x.after ?? x.before)!.size, 0);
  return {
    ...names,
    identical: changes.length === 0,
    summary: {
      added: count('added'),
      removed: count('removed'),
      changed: count('changed'),
      addedBytes: bytes('added'),
      removedBytes: bytes('removed'),
    },
    changes,
  };
}

/** The name the user gave, with its transport. */
function sourceLabel(img: SourceImage): string {
  const n = img.name;
  if (n.transport === 'store') return n.target;
  if (n.transport === 'docker') return `docker://${n.target}`;
  return `${n.transport}:${n.target}${n.tag !== undefined ? `:${n.tag}` : ''}`;
}
