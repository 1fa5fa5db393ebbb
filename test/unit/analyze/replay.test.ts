// The layer replay on hand-made layers: which stored bytes end up visible and which are hidden
// (wasted), by what, and the per-layer file counts. Expectations are worked out by hand from
// Docker's layer rules, not from the implementation.
import type { LayerEntry, StoredEntry } from '../../../src/analyze/entries.js';
import { Replay, type Copy } from '../../../src/analyze/replay.js';

function file(path: string, bytes: number, opts: { content?: string; uid?: number; mode?: number } = {}): StoredEntry {
  return {
    kind: 'file',
    path,
    bytes,
    fingerprint: bytes > 0 ? `${bytes}:${opts.content ?? path}` : undefined,
    mode: opts.mode ?? 0o644,
    uid: opts.uid ?? 0,
    gid: 0,
    linkTarget: undefined,
  };
}
function dir(path: string): StoredEntry {
  return { kind: 'dir', path, bytes: 0, fingerprint: undefined, mode: 0o755, uid: 0, gid: 0, linkTarget: undefined };
}
function hardlink(path: string, target: string): StoredEntry {
  return { kind: 'hardlink', path, bytes: 0, fingerprint: undefined, mode: 0o644, uid: 0, gid: 0, linkTarget: target };
}
const whiteout = (path: string): LayerEntry => ({ kind: 'whiteout', path });
const opaque = (path: string): LayerEntry => ({ kind: 'opaque', path });

function replay(...layers: LayerEntry[][]): Replay {
  const r = new Replay();
  for (const l of layers) r.apply(l);
  return r;
}
const all = (r: Replay): Copy[] => r.layers.flatMap((l) => l.copies);
const wasted = (r: Replay): number =>
  all(r)
    .filter((c) => c.hiddenBy)
    .reduce((n, c) => n + c.bytes, 0);
const fate = (r: Replay, layer: number, path: string) => r.layers[layer]!.copies.find((c) => c.path === path)?.hiddenBy;

describe('layer replay', () => {
  test('the seed: a file added, then deleted by a whiteout, wastes its whole size once', () => {
    const r = replay([dir('tmp'), file('tmp/big', 200)], [file('x', 10), whiteout('tmp/big')]);
    expect(wasted(r)).toBe(200);
    expect(fate(r, 0, 'tmp/big')).toEqual({ layer: 1, how: 'deleted' });
    expect(r.layers[1]!.files).toEqual({ added: 1, modified: 0, removed: 1 });
  });

  test('a path stored three times wastes the two hidden copies, not three', () => {
    const r = replay([file('a', 100, { content: 'v1' })], [file('a', 120, { content: 'v2' })], [file('a', 130, { content: 'v3' })]);
    expect(wasted(r)).toBe(220);
    expect(fate(r, 0, 'a')).toEqual({ layer: 1, how: 'replaced' });
    expect(fate(r, 1, 'a')).toEqual({ layer: 2, how: 'replaced' });
    expect(fate(r, 2, 'a')).toBeUndefined();
    expect(r.layers[1]!.files).toEqual({ added: 0, modified: 1, removed: 0 });
  });

  test('same content again: identical, or a metadata change (chown/chmod)', () => {
    const r = replay(
      [file('a', 50, { content: 'x' }), file('b', 70, { content: 'y' })],
      [file('a', 50, { content: 'x' }), file('b', 70, { content: 'y', uid: 1000 })],
    );
    expect(fate(r, 0, 'a')).toEqual({ layer: 1, how: 'identical' });
    expect(fate(r, 0, 'b')).toEqual({ layer: 1, how: 'metadata' });
    expect(wasted(r)).toBe(120);
  });

  test('a whiteout of a directory hides everything below it, at every depth', () => {
    const r = replay([dir('d'), file('d/a', 1), dir('d/e'), file('d/e/b', 2), file('keep', 4)], [whiteout('d')]);
    expect(wasted(r)).toBe(3);
    expect(r.layers[1]!.files.removed).toBe(2);
    expect(fate(r, 0, 'keep')).toBeUndefined();
  });

  test('an opaque directory hides the lower contents but keeps its own layer’s', () => {
    const r = replay([dir('d'), file('d/old', 5)], [dir('d'), opaque('d'), file('d/new', 7)]);
    expect(fate(r, 0, 'd/old')).toEqual({ layer: 1, how: 'deleted' });
    expect(fate(r, 1, 'd/new')).toBeUndefined();
    expect(wasted(r)).toBe(5);
  });

  test('the opaque marker may come after the directory’s new entries in the tar', () => {
    const r = replay([dir('d'), file('d/old', 5)], [dir('d'), file('d/new', 7), opaque('d')]);
    expect(fate(r, 1, 'd/new')).toBeUndefined();
    expect(wasted(r)).toBe(5);
  });

  test('a file over a directory replaces the whole tree; a directory over a file replaces the file', () => {
    const r = replay([dir('p'), file('p/x', 3), file('q', 9)], [file('p', 1), dir('q'), file('q/y', 2)]);
    expect(fate(r, 0, 'p/x')).toEqual({ layer: 1, how: 'replaced' });
    expect(fate(r, 0, 'q')).toEqual({ layer: 1, how: 'replaced' });
    expect(wasted(r)).toBe(12);
  });

  test('hardlinked content stays visible while one of its paths does', () => {
    const r = replay([file('a', 40), hardlink('b', 'a')], [whiteout('a')]);
    expect(fate(r, 0, 'a')).toBeUndefined();
    expect(wasted(r)).toBe(0);
    const gone = replay([file('a', 40), hardlink('b', 'a')], [whiteout('a'), whiteout('b')]);
    expect(wasted(gone)).toBe(40);
  });

  test('added, modified and removed count files, not directories', () => {
    const r = replay(
      [dir('etc'), file('etc/a', 1), file('etc/b', 1)],
      [dir('etc'), file('etc/a', 2, { content: 'new' }), file('etc/c', 1), whiteout('etc/b')],
    );
    expect(r.layers[0]!.files).toEqual({ added: 2, modified: 0, removed: 0 });
    expect(r.layers[1]!.files).toEqual({ added: 1, modified: 1, removed: 1 });
  });
});
