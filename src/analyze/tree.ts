// The image's files as a tree for a treemap: every copy every layer stores (the visible ones and
// the ones a later layer hides, i.e. the waste), by directory, each with the layer that stored
// it. A real image has tens of thousands of files; a page that draws them all is megabytes and
// unreadable, so the tree is capped: directories are opened largest first while the node budget
// lasts, showing their largest entries; a directory left closed, and what an open one does not
// show (files too small to see, entries beyond the budget), are grouped per layer. Bytes always
// add up: the root holds every stored byte (ImageAnalysis.storedBytes).
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
  readonly groups: Groups = new Map();
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

  // Open directories largest first (a parent before its children: a directory is never larger
  // than its parent, so this is the order a priority queue would give) while the budget lasts.
  // Opening shows the directory's largest entries one by one, as many as the budget allows;
  // what is left is grouped, so one huge file in a directory of many small ones still shows.
  const minBytes = root.bytes * opts.smallestShare;
  const shown = new Map<Dir, Set<Dir | Leaf>>();
  let nodes = 1 + root.groups.size;
  all.sort((a, b) => b.bytes - a.bytes || a.depth - b.depth);
  for (const dir of all) {
    if (dir.parent && !shown.get(dir.parent)?.has(dir)) continue;
    const rest = copyGroups(dir.groups);
    const show = new Set<Dir | Leaf>();
    const entries = [...dir.dirs.values(), ...dir.files].filter((e) => e.bytes >= minBytes).sort((a, b) => b.bytes - a.bytes);
    for (const entry of entries) {
      const before = rest.size;
      if (entry instanceof Dir) for (const [key, g] of entry.groups) subtract(rest, key, g.files, g.bytes);
      else subtract(rest, groupKey(entry), 1, entry.bytes);
      const cost = (entry instanceof Dir ? 1 + entry.groups.size : 1) + rest.size - before;
      if (nodes + cost > opts.maxNodes) break;
      nodes += cost;
      show.add(entry);
    }
    if (show.size > 0) shown.set(dir, show);
  }
  return emit(root, shown);
}

type Groups = Map<string, { files: number; bytes: number; layer: number; hidden: boolean }>;

function groupKey(leaf: Leaf): string {
  return `${leaf.layer}${leaf.hidden ? '!' : ''}`;
}

function count(dir: Dir, leaf: Leaf): void {
  dir.bytes += leaf.bytes;
  dir.count++;
  if (leaf.hidden) dir.wastedBytes += leaf.bytes;
  const key = groupKey(leaf);
  const g = dir.groups.get(key);
  if (g) {
    g.files++;
    g.bytes += leaf.bytes;
  } else {
    dir.groups.set(key, { files: 1, bytes: leaf.bytes, layer: leaf.layer, hidden: leaf.hidden !== undefined });
  }
}

function copyGroups(groups: Groups): Groups {
  return new Map([...groups].map(([k, g]) => [k, { ...g }]));
}

function subtract(groups: Groups, key: string, files: number, bytes: number): void {
  const g = groups.get(key)!;
  g.files -= files;
  g.bytes -= bytes;
  if (g.files === 0) groups.delete(key);
}

/** The directory as shown: its shown entries, and the rest of its copies grouped per layer. */
function emit(dir: Dir, shown: ReadonlyMap<Dir, ReadonlySet<Dir | Leaf>>): TreeDir {
  const children: TreeNode[] = [];
  const rest = copyGroups(dir.groups);
  for (const entry of shown.get(dir) ?? []) {
    if (entry instanceof Dir) {
      for (const [key, g] of entry.groups) subtract(rest, key, g.files, g.bytes);
      children.push(emit(entry, shown));
    } else {
      subtract(rest, groupKey(entry), 1, entry.bytes);
      const { name, bytes, layer, hidden } = entry;
      children.push({ kind: 'file', name, bytes, layer, ...(hidden ? { hidden } : {}) });
    }
  }
  for (const g of rest.values()) children.push({ kind: 'group', ...g });
  children.sort((a, b) => b.bytes - a.bytes);
  return { kind: 'dir', name: dir.name, bytes: dir.bytes, wastedBytes: dir.wastedBytes, files: dir.count, children };
}
