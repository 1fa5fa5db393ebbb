// The filesystem of an image as of each of its layers, for browsing it (`tsbuild analyze -i`,
// dive's file tree): every path the layers up to and including one show, each marked with what
// that layer did to it (added, modified, removed), with its size (a directory's: the total below
// it) and the bytes stored at it for nothing. How layers apply is Replay's business
// (./replay.ts) alone; this file only compares the merged tree before and after a layer, and
// takes from one full replay which copies a later layer hides. (./tree.ts is another tree: every
// copy every layer stores, grouped for the HTML report's treemap; this one is the filesystem a
// container of the image would see at each layer.)
import type { LayerEntry, StoredEntry } from './entries.js';
import { Replay, type Copy, type LayerReplay, type ReplayNode } from './replay.js';

/** What the selected layer did to a path. */
export type Change = 'added' | 'modified' | 'removed' | 'unchanged';

export interface TreeEntry {
  readonly name: string;
  /** Absolute image path; `/` for the root. */
  readonly path: string;
  /** A directory no layer stored (only its contents) is a `dir`. */
  readonly kind: StoredEntry['kind'];
  readonly change: Change;
  /**
   * A file's content bytes (a hardlink's: its target's, when the same layer stores both), a
   * symlink's target length; a directory's: the total of the entries below it that are not
   * removed, hardlinks left out (their content is counted at their target).
   */
  readonly bytes: number;
  /**
   * Bytes that this layer or one below stored at the path and that the image does not show: a
   * copy that a later layer (or this one) replaces or deletes. A directory's: the total below it,
   * removed entries included.
   */
  readonly wastedBytes: number;
  /** A symlink's target. */
  readonly linkTarget?: string;
  /** A directory's entries, removed ones included, sorted by name. */
  readonly children: readonly TreeEntry[];
}

/** Trees kept for layers already shown: moving back and forth between layers costs nothing. */
const CACHED_TREES = 8;

export class ImageTree {
  /** Per layer, bottom first: the copies it stores and its file counts. */
  readonly layers: readonly LayerReplay[];
  /** Every copy of every layer by absolute path, with `hiddenBy` as the full replay left it. */
  private readonly copies = new Map<string, Copy[]>();
  private readonly cache = new Map<number, TreeEntry>();
  /** Symlink targets by layer and path (`1\0usr/bin/sh`): the merged tree keeps only which layer stored a path. */
  private readonly symlinks = new Map<string, string>();
  /** A replay that has applied the layers up to `layer`, and the tree it showed then. */
  private cursor: { readonly replay: Replay; layer: number; root: TreeEntry | undefined } | undefined;

  /** `layers`: each layer's entries, bottom first (readLayerEntries' output). */
  constructor(private readonly entries: readonly (readonly LayerEntry[])[]) {
    const replay = new Replay();
    for (const layer of entries) replay.apply(layer);
    this.layers = replay.layers;
    for (const c of replay.layers.flatMap((l) => l.copies)) {
      const path = `/${c.path}`;
      const list = this.copies.get(path);
      if (list) list.push(c);
      else this.copies.set(path, [c]);
    }
    entries.forEach((layer, i) => {
      for (const e of layer) if (e.kind === 'symlink' && e.linkTarget !== undefined) this.symlinks.set(`${i}\0${e.path}`, e.linkTarget);
    });
  }

  /** The filesystem as of layer `index` (0 = bottom), marked with that layer's changes. */
  at(index: number): TreeEntry {
    if (!Number.isInteger(index) || index < 0 || index >= this.entries.length) throw new RangeError(`no layer ${index}`);
    const cached = this.cache.get(index);
    if (cached) {
      this.cache.delete(index);
      this.cache.set(index, cached);
      return cached;
    }
    if (!this.cursor || this.cursor.layer >= index) this.cursor = { replay: new Replay(), layer: -1, root: undefined };
    const cur = this.cursor;
    // Only the tree just before the layer is needed to mark its changes.
    if (cur.layer < index - 1) {
      while (cur.layer < index - 1) cur.replay.apply(this.entries[++cur.layer]!);
      cur.root = undefined;
    }
    if (cur.root === undefined && cur.layer >= 0) cur.root = this.entry('', '/', cur.replay.tree, undefined, cur.layer);
    cur.replay.apply(this.entries[++cur.layer]!);
    cur.root = this.entry('', '/', cur.replay.tree, cur.root, index);
    this.cache.set(index, cur.root);
    if (this.cache.size > CACHED_TREES) this.cache.delete(this.cache.keys().next().value!);
    return cur.root;
  }

  /** The tree below `node` as of `layer`, compared with `before` (the same path one layer down). */
  private entry(name: string, path: string, node: ReplayNode, before: TreeEntry | undefined, layer: number): TreeEntry {
    const kind = node.shown?.kind ?? 'dir';
    const change: Change = before === undefined ? 'added' : node.shown?.layer === layer ? 'modified' : 'unchanged';
    let wastedBytes = this.wasted(path, layer);
    if (kind !== 'dir') {
      const target = kind === 'symlink' ? this.symlinks.get(`${node.shown!.layer}\0${path.slice(1)}`) : undefined;
      const bytes = node.shown?.copy?.bytes ?? 0;
      return { name, path, kind, change, bytes, wastedBytes, ...(target !== undefined ? { linkTarget: target } : {}), children: [] };
    }
    const old = new Map<string, TreeEntry>();
    if (before?.kind === 'dir') for (const c of before.children) if (c.change !== 'removed') old.set(c.name, c);
    const children: TreeEntry[] = [];
    for (const [childName, child] of node.children ?? []) {
      children.push(this.entry(childName, path === '/' ? `/${childName}` : `${path}/${childName}`, child, old.get(childName), layer));
      old.delete(childName);
    }
    for (const gone of old.values()) children.push(removed(gone));
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let bytes = 0;
    for (const c of children) {
      if (c.change !== 'removed' && c.kind !== 'hardlink') bytes += c.bytes;
      wastedBytes += c.wastedBytes;
    }
    return { name, path, kind, change, bytes, wastedBytes, children };
  }

  /** Bytes of the hidden copies stored at `path` by `layer` or below. */
  private wasted(path: string, layer: number): number {
    let n = 0;
    for (const c of this.copies.get(path) ?? []) if (c.layer <= layer && c.hiddenBy) n += c.bytes;
    return n;
  }
}

/** An entry of the layer below, as the selected layer deleted it: with everything below it. */
function removed(e: TreeEntry): TreeEntry {
  return { ...e, change: 'removed', children: e.children.filter((c) => c.change !== 'removed').map(removed) };
}
