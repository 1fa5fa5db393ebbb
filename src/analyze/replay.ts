// Replays an image's layers bottom up the way Docker applies them (an upper layer's entry hides
// the same path below; a whiteout deletes a path and everything under it; an opaque directory
// hides everything lower layers had below it; a file over a directory replaces the whole
// directory), keeping the merged tree as paths only. Every piece of content a layer stores is a
// Copy; a copy ends up either visible in the final filesystem or hidden by a later layer, and a
// hidden copy is bytes the image carries for nothing. Because each copy is one object that is
// hidden at most once, each wasted byte is counted exactly once.
import type { Deletion, LayerEntry, StoredEntry } from './entries.js';

/** How a later layer made a copy invisible. */
export type HiddenHow =
  /** deleted: a whiteout or opaque directory, of the path or of a directory above it */
  | 'deleted'
  /** stored again with different content, or replaced by another kind of entry */
  | 'replaced'
  /** stored again with the same content and a different owner or mode (chown, chmod) */
  | 'metadata'
  /** stored again unchanged (the same COPY twice, a touch, a rewrite with the same bytes) */
  | 'identical';

/** Content stored by one layer: a regular file's bytes or a symlink's target. */
export interface Copy {
  readonly path: string;
  readonly layer: number;
  readonly bytes: number;
  readonly fingerprint: string | undefined;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Set once, when the last path showing this content (hardlinks share it) goes away. */
  hiddenBy: { readonly layer: number; readonly how: HiddenHow } | undefined;
}

export interface FileCounts {
  /** Paths (other than directories) that no lower layer had. */
  added: number;
  /** Paths (other than directories) stored over something lower layers had there. */
  modified: number;
  /** Paths (other than directories) of lower layers that this layer deleted. */
  removed: number;
}

export interface LayerReplay {
  readonly index: number;
  /** Content copies this layer stores, in tar order. */
  readonly copies: readonly Copy[];
  readonly files: Readonly<FileCounts>;
}

/** What a path of the merged tree shows: the kind of entry, the layer that stored it, its content. */
export interface Shown {
  readonly kind: StoredEntry['kind'];
  readonly layer: number;
  readonly copy: Copy | undefined;
  /** The entry that put it there: its owner, mode and link target. */
  readonly entry: StoredEntry;
}

/** A path of the final filesystem: the entry showing there, and the content it shows (a hardlink its target's). */
export interface Visible {
  readonly entry: StoredEntry;
  readonly layer: number;
  readonly copy: Copy | undefined;
}

/** A path of the merged tree, read only; `shown` is undefined for a directory no layer stored. */
export interface ReplayNode {
  readonly shown: Shown | undefined;
  readonly children: ReadonlyMap<string, ReplayNode> | undefined;
}

class Node {
  children: Map<string, Node> | undefined;
  shown: Shown | undefined;
}

/** The merged tree so far, and the copies it shows. */
export class Replay {
  private readonly root = new Node();
  /** How many visible paths show each copy: more than one only for hardlinks. */
  private readonly refs = new Map<Copy, number>();
  readonly layers: LayerReplay[] = [];

  /** The merged tree as of the last layer applied; the next apply changes it in place. */
  get tree(): ReplayNode {
    return this.root;
  }

  /**
   * Applies the next layer up. Deletions apply to lower layers only, so they go first, whatever
   * their place in the tar (producers do not agree on where an opaque marker goes).
   */
  apply(entries: readonly LayerEntry[]): LayerReplay {
    const index = this.layers.length;
    const files: FileCounts = { added: 0, modified: 0, removed: 0 };
    for (const e of entries) {
      if (e.kind === 'whiteout') {
        const { parent, name } = this.lookupParent(e.path);
        const node = parent?.children?.get(name);
        if (node) {
          this.hideTree(node, index, 'deleted', files);
          parent!.children!.delete(name);
        }
      } else if (e.kind === 'opaque') {
        const node = this.lookup(e.path);
        for (const child of node?.children?.values() ?? []) this.hideTree(child, index, 'deleted', files);
        if (node) node.children = undefined;
      }
    }
    const copies: Copy[] = [];
    const byPath = new Map<string, Copy>();
    for (const e of entries) {
      if (isDeletion(e) || e.path === '') continue;
      const node = this.ensure(e.path, index, files);
      let copy: Copy | undefined;
      if (e.kind === 'hardlink') {
        // A hardlink shares its target's content, stored once by this layer.
        copy = e.linkTarget !== undefined ? byPath.get(e.linkTarget) : undefined;
      } else if (e.bytes > 0) {
        copy = {
          path: e.path,
          layer: index,
          bytes: e.bytes,
          fingerprint: e.fingerprint,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          hiddenBy: undefined,
        };
        copies.push(copy);
        byPath.set(e.path, copy);
      }
      if (copy) this.refs.set(copy, (this.refs.get(copy) ?? 0) + 1);
      if (e.kind === 'dir') {
        if (node.shown && node.shown.kind !== 'dir') {
          this.release(node.shown.copy, index, 'replaced');
          files.modified++;
        }
      } else {
        // A non-directory replaces whatever was there, a directory's whole tree included.
        const before = node.shown;
        let replacedTree = false;
        for (const child of node.children?.values() ?? []) {
          this.hideTree(child, index, 'replaced', files);
          replacedTree = true;
        }
        node.children = undefined;
        if (before) this.release(before.copy, index, howReplaced(before.copy, copy));
        // A path twice in one tar (tar-split refuses that, other writers may not) counts once.
        if (before?.layer !== index) {
          if (before || replacedTree) files.modified++;
          else files.added++;
        }
      }
      node.shown = { kind: e.kind, layer: index, copy, entry: e };
    }
    const layer: LayerReplay = { index, copies, files };
    this.layers.push(layer);
    return layer;
  }

  /** The final filesystem so far: every path shown, keyed without the leading '/' (the root is not listed). */
  visible(): Map<string, Visible> {
    const out = new Map<string, Visible>();
    const walk = (node: Node, prefix: string): void => {
      for (const [name, child] of node.children ?? []) {
        const path = prefix === '' ? name : `${prefix}/${name}`;
        // A directory made only on the way to a deeper entry is made as Docker makes it: 0755, root's.
        const shown = child.shown ?? { entry: implicitDir(path), layer: -1, copy: undefined };
        out.set(path, { entry: shown.entry, layer: shown.layer, copy: shown.copy });
        walk(child, path);
      }
    };
    walk(this.root, '');
    return out;
  }

  private lookup(path: string): Node | undefined {
    let node: Node | undefined = this.root;
    if (path === '') return node;
    for (const part of path.split('/')) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  private lookupParent(path: string): { parent: Node | undefined; name: string } {
    const slash = path.lastIndexOf('/');
    return { parent: this.lookup(slash < 0 ? '' : path.slice(0, slash)), name: path.slice(slash + 1) };
  }

  /** The node for `path`, creating directories on the way; a non-directory in the way is replaced. */
  private ensure(path: string, layer: number, files: FileCounts): Node {
    let node = this.root;
    for (const part of path.split('/')) {
      if (node.shown && node.shown.kind !== 'dir') {
        this.release(node.shown.copy, layer, 'replaced');
        files.removed++;
        node.shown = undefined;
      }
      node.children ??= new Map();
      let next = node.children.get(part);
      if (!next) {
        next = new Node();
        node.children.set(part, next);
      }
      node = next;
    }
    return node;
  }

  /** Hides a node and everything below it. */
  private hideTree(node: Node, layer: number, how: HiddenHow, files: FileCounts): void {
    if (node.shown && node.shown.kind !== 'dir') {
      files.removed++;
      this.release(node.shown.copy, layer, how);
    }
    for (const child of node.children?.values() ?? []) this.hideTree(child, layer, how, files);
  }

  /** One path less shows `copy`; the last one gone hides it. */
  private release(copy: Copy | undefined, layer: number, how: HiddenHow): void {
    if (!copy) return;
    const n = (this.refs.get(copy) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(copy, n);
      return;
    }
    this.refs.delete(copy);
    copy.hiddenBy ??= { layer, how };
  }
}

function implicitDir(path: string): StoredEntry {
  return { kind: 'dir', path, bytes: 0, fingerprint: undefined, mode: 0o755, uid: 0, gid: 0, linkTarget: undefined };
}

function howReplaced(old: Copy | undefined, now: Copy | undefined): HiddenHow {
  if (!old || !now || old.fingerprint === undefined || old.fingerprint !== now.fingerprint) return 'replaced';
  return old.mode === now.mode && old.uid === now.uid && old.gid === now.gid ? 'identical' : 'metadata';
}

function isDeletion(e: LayerEntry): e is Deletion {
  return e.kind === 'whiteout' || e.kind === 'opaque';
}
