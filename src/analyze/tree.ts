// The image's files as a tree for a treemap: every copy every layer stores (the visible ones and
// the ones a later layer hides, i.e. the waste), by directory, each with the layer that stored
// it. A real image has tens of thousands of files; a page that draws them all is megabytes and
// unreadable, so the tree is capped: directories are opened largest first while the node budget
// lasts, a directory left closed shows as one group per layer, and inside an open directory the
// files too small to see are grouped the same way. Bytes always add up: the root holds every
// stored byte (ImageAnalysis.storedBytes).
import type { HiddenHow, LayerReplay } from './replay.js';

export interface TreeOptions {
  /** At most this many nodes in the tree (directories, files and groups). */
  readonly maxNodes?: number;
  /** A file or directory with a smaller share of all stored bytes is shown only in a group. */
  readonly smallestShare?: number;
}

export const TREE_DEFAULTS: Required<TreeOptions> = { maxNodes: 2000, smallestShare: 1e-4 };

export interface TreeDir {
  readonly kind: 'dir';
  /** The directory's name ('' for the root). */
  readonly name: string;
  /** Bytes of every copy below it. */
  readonly bytes: number;
  /** Of those, the bytes a later layer hides. */
  readonly wastedBytes: number;
  /** How many copies below it. */
  readonly files: number;
  /** Largest first. */
  readonly children: readonly TreeNode[];
}

/** One copy: a file's (or symlink's) content as one layer stored it. */
export interface TreeFile {
  readonly kind: 'file';
  readonly name: string;
  readonly bytes: number;
  readonly layer: number;
  /** Set when a later layer hides this copy: its bytes are wasted. */
  readonly hidden?: { readonly layer: number; readonly how: HiddenHow };
}

/** Copies of one layer in one directory, too many or too small to show one by one. */
export interface TreeGroup {
  readonly kind: 'group';
  readonly files: number;
  readonly bytes: number;
  readonly layer: number;
  /** The copies are hidden by later layers (wasted). */
  readonly hidden: boolean;
}

export type TreeNode = TreeDir | TreeFile | TreeGroup;

interface Leaf {
  readonly name: string;
  readonly bytes: number;
  readonly layer: number;
  readonly hidden: TreeFile['hidden'];
}

class Dir {
  readonly dirs = new Map<string, Dir>();
  readonly files: Leaf[] = [];
  bytes = 0;
  wastedBytes = 0;
  count = 0;
  /** Bytes and copies below, by group key (`layer` or `layer!` for hidden copies). */
  readonly groups = new Map<string, { files: number; bytes: number; layer: number; hidden: boolean }>();
  constructor(
    readonly name: string,
    readonly depth: number,
    readonly parent: Dir | undefined,
  ) {}
}

/** The capped tree of every copy the replayed layers store. */
export function fileTree(layers: readonly LayerReplay[], options: TreeOptions = {}): TreeDir {
  const opts = { ...TREE_DEFAULTS, ...options };
  const root = new Dir('', 0, undefined);
  const all: Dir[] = [root];
  for (const layer of layers) {
    for (const c of layer.copies) {
      const parts = c.path.split('/');
      const leaf: Leaf = { name: parts.pop()!, bytes: c.bytes, layer: c.layer, hidden: c.hiddenBy && { ...c.hiddenBy } };
      let dir = root;
      count(dir, leaf);
      for (const part of parts) {
        let next = dir.dirs.get(part);
        if (!next) {
          next = new Dir(part, dir.depth + 1, dir);
          dir.dirs.set(part, next);
          all.push(next);
        }
        dir = next;
        count(dir, leaf);
      }
      dir.files.push(leaf);
    }
  }

  // Open directories largest first (a parent before its children) while the budget lasts:
  // the order a priority queue would give, since a directory is never larger than its parent.
  const minBytes = root.bytes * opts.smallestShare;
  const open = new Set<Dir>();
  let nodes = 1 + root.groups.size;
  all.sort((a, b) => b.bytes - a.bytes || a.depth - b.depth);
  for (const dir of all) {
    if ((dir.parent && !open.has(dir.parent)) || (dir !== root && dir.bytes < minBytes)) continue;
    const { big, small } = splitFiles(dir, minBytes);
    let cost = big.length + groupsOf(small).size - dir.groups.size;
    for (const sub of dir.dirs.values()) cost += 1 + sub.groups.size;
    if (nodes + cost > opts.maxNodes) continue;
    open.add(dir);
    nodes += cost;
  }
  return emit(root, open, minBytes);
}

function count(dir: Dir, leaf: Leaf): void {
  dir.bytes += leaf.bytes;
  dir.count++;
  if (leaf.hidden) dir.wastedBytes += leaf.bytes;
  addToGroups(dir.groups, leaf);
}

function addToGroups(groups: Dir['groups'], leaf: Leaf): void {
  const key = `${leaf.layer}${leaf.hidden ? '!' : ''}`;
  const g = groups.get(key);
  if (g) {
    g.files++;
    g.bytes += leaf.bytes;
  } else {
    groups.set(key, { files: 1, bytes: leaf.bytes, layer: leaf.layer, hidden: leaf.hidden !== undefined });
  }
}

function groupsOf(leaves: readonly Leaf[]): Dir['groups'] {
  const groups: Dir['groups'] = new Map();
  for (const l of leaves) addToGroups(groups, l);
  return groups;
}

function splitFiles(dir: Dir, minBytes: number): { big: Leaf[]; small: Leaf[] } {
  const big: Leaf[] = [];
  const small: Leaf[] = [];
  for (const f of dir.files) (f.bytes >= minBytes ? big : small).push(f);
  return { big, small };
}

function emit(dir: Dir, open: ReadonlySet<Dir>, minBytes: number): TreeDir {
  const children: TreeNode[] = [];
  const group = (groups: Dir['groups']): void => {
    for (const g of groups.values()) children.push({ kind: 'group', ...g });
  };
  if (open.has(dir)) {
    const { big, small } = splitFiles(dir, minBytes);
    for (const sub of dir.dirs.values()) children.push(emit(sub, open, minBytes));
    for (const f of big) {
      children.push({ kind: 'file', name: f.name, bytes: f.bytes, layer: f.layer, ...(f.hidden ? { hidden: f.hidden } : {}) });
    }
    group(groupsOf(small));
  } else {
    group(dir.groups);
  }
  children.sort((a, b) => b.bytes - a.bytes);
  return { kind: 'dir', name: dir.name, bytes: dir.bytes, wastedBytes: dir.wastedBytes, files: dir.count, children };
}
