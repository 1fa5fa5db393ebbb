// The final filesystem of an image, for diff: the layers applied bottom up by the same rules as
// replay.ts (a whiteout deletes a path and everything under it, an opaque directory hides what
// lower layers had below it, a non-directory replaces a whole directory tree, a directory only
// made on the way to a deeper entry is root's with mode 0755, a hardlink shows the content its
// target stored in the same layer), but keeping only what diff compares: one short string per
// path. Replay also keeps every stored copy, its owners and who hid it, which analyze needs and
// diff does not; on 100,000 files that bookkeeping was most of diff's memory.
import type { LayerEntry, StoredEntry } from './entries.js';

/** One path's state as diff compares it, encoded so that equal states are equal strings. */
export type StateKey = string;

export interface DecodedState {
  readonly type: 'file' | 'dir' | 'symlink' | 'special';
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly fingerprint: string | undefined;
  readonly target: string | undefined;
}

type Tuple = [DecodedState['type'], number, number, number, number, string | null, string | null];

function encode(s: DecodedState): StateKey {
  const t: Tuple = [s.type, s.size, s.mode, s.uid, s.gid, s.fingerprint ?? null, s.target ?? null];
  return JSON.stringify(t);
}

export function decodeState(key: StateKey): DecodedState {
  const [type, size, mode, uid, gid, fingerprint, target] = JSON.parse(key) as Tuple;
  return { type, size, mode, uid, gid, fingerprint: fingerprint ?? undefined, target: target ?? undefined };
}

const IMPLICIT_DIR = encode({ type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0, fingerprint: undefined, target: undefined });

class PathNode {
  children: Map<string, PathNode> | undefined;
  /** Undefined for a directory no layer stored. */
  state: StateKey | undefined;
  /** The layer that stored `state` (-1: none); deletions reach only lower layers' nodes. */
  layer = -1;
  kind: StoredEntry['kind'] = 'dir';
}

export class FinalFilesystem {
  private readonly root = new PathNode();
  private layers = 0;

  /**
   * Applies the next layer up, entry by entry as the tar gives them (nothing of a layer is held).
   * Deletions apply to lower layers only, whatever their place in the tar (producers do not agree
   * on where an opaque marker goes): they spare what this layer stored, and the directories on
   * its way, which replay.ts makes anew after its deletions and so become root's 0755.
   */
  async apply(entries: AsyncIterable<LayerEntry>): Promise<void> {
    const layer = this.layers++;
    for await (const e of entries) {
      if (e.kind === 'whiteout') {
        const slash = e.path.lastIndexOf('/');
        const parent = this.lookup(slash < 0 ? '' : e.path.slice(0, slash));
        const name = e.path.slice(slash + 1);
        const node = parent?.children?.get(name);
        if (node && !spare(node, layer)) parent!.children!.delete(name);
      } else if (e.kind === 'opaque') {
        const node = this.lookup(e.path);
        for (const [name, child] of node?.children ?? []) if (!spare(child, layer)) node!.children!.delete(name);
      } else if (e.path !== '') {
        this.store(e as StoredEntry, layer);
      }
    }
  }

  private store(e: StoredEntry, layer: number): void {
    let state = stateOf(e);
    if (e.kind === 'hardlink') {
      // A regular file with its own owner and mode, showing the content its target stored
      // earlier in this layer (replay.ts's rule).
      const target = e.linkTarget !== undefined ? this.lookup(e.linkTarget) : undefined;
      const content = target?.layer === layer && target.kind !== 'hardlink' && target.state ? decodeState(target.state) : undefined;
      state = encode({
        ...decodeState(state),
        size: content?.size ?? 0,
        fingerprint: content && content.size > 0 ? content.fingerprint : undefined,
      });
    }
    const node = this.ensure(e.path);
    if (e.kind !== 'dir') node.children = undefined;
    node.state = state;
    node.layer = layer;
    node.kind = e.kind;
  }

  /** Every path and its state, without the leading '/' (the root is not listed). */
  *paths(): Generator<[string, StateKey]> {
    yield* below(this.root, '');
  }

  /**
   * The paths whose state differs between two final filesystems: [path, state in `a`, state in
   * `b`], a state missing where the path is. Both trees are walked together, so no list of every
   * path is made; a subtree on one side only is listed path by path.
   */
  static *compare(a: FinalFilesystem, b: FinalFilesystem): Generator<[string, StateKey | undefined, StateKey | undefined]> {
    yield* compareBelow(a.root, b.root, '');
  }

  private lookup(path: string): PathNode | undefined {
    let node: PathNode | undefined = this.root;
    if (path === '') return node;
    for (const part of path.split('/')) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  /** The node for `path`, making directories on the way; a non-directory in the way becomes one. */
  private ensure(path: string): PathNode {
    let node = this.root;
    for (const part of path.split('/')) {
      if (node.kind !== 'dir') {
        node.state = undefined;
        node.layer = -1;
        node.kind = 'dir';
      }
      node.children ??= new Map();
      let next = node.children.get(part);
      if (!next) {
        next = new PathNode();
        node.children.set(part, next);
      }
      node = next;
    }
    return node;
  }
}

/**
 * Deletes from `node`'s tree what lower layers stored, keeping what `layer` stored. Returns
 * whether anything of `layer` is left; a node kept only for what is below it becomes a directory
 * made on the way (replay.ts deletes first and makes it anew).
 */
function spare(node: PathNode, layer: number): boolean {
  let kept = false;
  for (const [name, child] of node.children ?? []) {
    if (spare(child, layer)) kept = true;
    else node.children!.delete(name);
  }
  if (node.layer === layer) return true;
  if (kept) {
    node.state = undefined;
    node.layer = -1;
    node.kind = 'dir';
  }
  return kept;
}

const join = (prefix: string, name: string): string => (prefix === '' ? name : `${prefix}/${name}`);

function* below(node: PathNode, prefix: string): Generator<[string, StateKey]> {
  for (const [name, child] of node.children ?? []) {
    const path = join(prefix, name);
    yield [path, child.state ?? IMPLICIT_DIR];
    yield* below(child, path);
  }
}

function* compareBelow(a: PathNode, b: PathNode, prefix: string): Generator<[string, StateKey | undefined, StateKey | undefined]> {
  for (const [name, was] of a.children ?? []) {
    const path = join(prefix, name);
    const is = b.children?.get(name);
    if (is === undefined) {
      yield [path, was.state ?? IMPLICIT_DIR, undefined];
      for (const [p, s] of below(was, path)) yield [p, s, undefined];
      continue;
    }
    const [before, after] = [was.state ?? IMPLICIT_DIR, is.state ?? IMPLICIT_DIR];
    if (before !== after) yield [path, before, after];
    yield* compareBelow(was, is, path);
  }
  for (const [name, is] of b.children ?? []) {
    if (a.children?.has(name)) continue;
    const path = join(prefix, name);
    yield [path, undefined, is.state ?? IMPLICIT_DIR];
    for (const [p, s] of below(is, path)) yield [p, undefined, s];
  }
}

function stateOf(e: StoredEntry): StateKey {
  const common = { mode: e.mode, uid: e.uid, gid: e.gid, fingerprint: e.fingerprint };
  switch (e.kind) {
    case 'file':
    case 'hardlink':
      return encode({ type: 'file', size: e.bytes, ...common, target: undefined });
    case 'symlink':
      return encode({ type: 'symlink', size: e.bytes, ...common, target: e.linkTarget ?? '' });
    case 'dir':
    case 'special':
      return encode({ type: e.kind, size: 0, ...common, fingerprint: undefined, target: undefined });
  }
}
