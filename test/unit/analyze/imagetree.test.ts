// The file tree as of each layer (what `analyze -i` browses) on hand-made layers: which entries
// a layer adds, modifies and removes, directory totals, and the wasted bytes at each path.
// Expectations are worked out by hand from Docker's layer rules.
import type { LayerEntry } from '../../../src/analyze/entries.js';
import { ImageTree, type TreeEntry } from '../../../src/analyze/imagetree.js';

/** A regular file (`content` tells copies apart) or, with bytes undefined, a directory. */
function at(path: string, bytes?: number, content = path): LayerEntry {
  const kind = bytes === undefined ? 'dir' : 'file';
  const fingerprint = bytes ? `${bytes}:${content}` : undefined;
  return { kind, path, bytes: bytes ?? 0, fingerprint, mode: 0o644, uid: 0, gid: 0, linkTarget: undefined };
}

/** path → `change bytes wasted` for every entry below the root. */
function flat(e: TreeEntry, out: Record<string, string> = {}): Record<string, string> {
  for (const c of e.children) {
    out[c.path] = `${c.change} ${c.bytes} ${c.wastedBytes}`;
    flat(c, out);
  }
  return out;
}

describe('ImageTree', () => {
  const layers: LayerEntry[][] = [
    [at('a'), at('a/x', 10, 'v1'), at('a/y', 5), at('d'), at('d/p', 1), at('d/q', 2)],
    [at('a/x', 20, 'v2'), { kind: 'whiteout', path: 'a/y' }, at('b', 3)],
    [{ kind: 'opaque', path: 'd' }, at('d'), at('d/r', 4), at('b', 3)],
  ];

  test('each layer marks what it added, modified and removed; totals leave removed entries out', () => {
    const tree = new ImageTree(layers);
    expect(flat(tree.at(0))).toEqual({
      '/a': 'added 15 15',
      '/a/x': 'added 10 10', // its copy is replaced by layer 1
      '/a/y': 'added 5 5', // deleted by layer 1
      '/d': 'added 3 3',
      '/d/p': 'added 1 1',
      '/d/q': 'added 2 2',
    });
    expect(flat(tree.at(1))).toEqual({
      '/a': 'unchanged 20 15',
      '/a/x': 'modified 20 10',
      '/a/y': 'removed 5 5',
      '/b': 'added 3 3', // stored again, unchanged, by layer 2
      '/d': 'unchanged 3 3',
      '/d/p': 'unchanged 1 1',
      '/d/q': 'unchanged 2 2',
    });
    // An opaque directory removes what lower layers had in it; the same file again is a
    // modification whose earlier copy is waste.
    expect(flat(tree.at(2))).toEqual({
      '/a': 'unchanged 20 10',
      '/a/x': 'unchanged 20 10',
      '/b': 'modified 3 3',
      '/d': 'modified 4 3',
      '/d/p': 'removed 1 1',
      '/d/q': 'removed 2 2',
      '/d/r': 'added 4 0',
    });
  });

  test('the same tree whatever order the layers are asked for in', () => {
    const inOrder = new ImageTree(layers);
    const expected = [0, 1, 2].map((i) => flat(inOrder.at(i)));
    const jumping = new ImageTree(layers);
    expect(flat(jumping.at(2))).toEqual(expected[2]);
    expect(flat(jumping.at(0))).toEqual(expected[0]);
    expect(flat(jumping.at(1))).toEqual(expected[1]);
    expect(() => jumping.at(3)).toThrow(RangeError);
  });

  test('a file stored over a directory replaces it; a hardlink is left out of directory totals (its target counts); a symlink shows its target', () => {
    const tree = new ImageTree([
      [
        at('d'),
        at('d/p', 7),
        at('h'),
        at('h/big', 100),
        { kind: 'symlink', path: 'sh', bytes: 11, fingerprint: '->bin/busybox', mode: 0o777, uid: 0, gid: 0, linkTarget: 'bin/busybox' },
      ],
      [
        at('d', 2),
        { kind: 'hardlink', path: 'h/link', bytes: 0, fingerprint: undefined, mode: 0o644, uid: 0, gid: 0, linkTarget: 'h/big' },
      ],
    ]);
    const top = tree.at(1);
    expect(top.children.find((c) => c.name === 'sh')).toMatchObject({ kind: 'symlink', linkTarget: 'bin/busybox', bytes: 11 });
    expect(flat(top)).toMatchObject({ '/d': 'modified 2 0', '/h': 'unchanged 100 0', '/h/big': 'unchanged 100 0' });
    expect(top.children.find((c) => c.name === 'd')!.kind).toBe('file');
    expect(flat(top)['/h/link']).toMatch(/^added /);
    expect(tree.layers.map((l) => l.files)).toEqual([
      { added: 3, modified: 0, removed: 0 },
      { added: 1, modified: 1, removed: 1 },
    ]);
  });
});
