// diff's final-filesystem replay (final-fs.ts) against analyze's (replay.ts), which the replay
// tests check by hand against Docker's layer rules: on random stacks of layers over a small set
// of paths (files, directories, symlinks, hardlinks, whiteouts and opaque markers in any order),
// both must show the same paths with the same type, size, content, mode, owner and link target.
// Then a few cases worked out by hand.
import fc from 'fast-check';
import type { LayerEntry, StoredEntry } from '../../../src/analyze/entries.js';
import { decodeState, FinalFilesystem, type DecodedState } from '../../../src/analyze/final-fs.js';
import { Replay } from '../../../src/analyze/replay.js';

async function* iterate(entries: readonly LayerEntry[]): AsyncGenerator<LayerEntry> {
  yield* entries;
}

async function finalFs(layers: readonly LayerEntry[][]): Promise<Map<string, DecodedState>> {
  const fs = new FinalFilesystem();
  for (const l of layers) await fs.apply(iterate(l));
  return new Map([...fs.paths()].map(([p, k]) => [p, decodeState(k)]));
}

/** What replay.ts shows at each path, in final-fs's terms (a hardlink is a file with its target's content). */
function replayed(layers: readonly LayerEntry[][]): Map<string, DecodedState> {
  const r = new Replay();
  for (const l of layers) r.apply(l);
  const out = new Map<string, DecodedState>();
  for (const [path, { entry, copy }] of r.visible()) {
    const common = { mode: entry.mode, uid: entry.uid, gid: entry.gid };
    const state: DecodedState =
      entry.kind === 'hardlink'
        ? { type: 'file', size: copy?.bytes ?? 0, ...common, fingerprint: copy?.fingerprint, target: undefined }
        : entry.kind === 'symlink'
          ? { type: 'symlink', size: entry.bytes, ...common, fingerprint: entry.fingerprint, target: entry.linkTarget ?? '' }
          : entry.kind === 'file'
            ? { type: 'file', size: entry.bytes, ...common, fingerprint: entry.fingerprint, target: undefined }
            : { type: entry.kind, size: 0, ...common, fingerprint: undefined, target: undefined };
    out.set(path, state);
  }
  return out;
}

const PATHS = ['a', 'a/b', 'a/b/c', 'a/d', 'e', 'e/f'];

const storedEntry: fc.Arbitrary<LayerEntry> = fc.oneof(
  fc
    .record({ path: fc.constantFrom(...PATHS), bytes: fc.nat(3), uid: fc.nat(1), mode: fc.constantFrom(0o644, 0o600) })
    .map(({ path, bytes, uid, mode }): StoredEntry => ({
      kind: 'file',
      path,
      bytes,
      fingerprint: bytes > 0 ? `${bytes}:${path}:${uid}` : undefined,
      mode,
      uid,
      gid: 0,
      linkTarget: undefined,
    })),
  fc.record({ path: fc.constantFrom(...PATHS), uid: fc.nat(1) }).map(({ path, uid }): StoredEntry => ({
    kind: 'dir',
    path,
    bytes: 0,
    fingerprint: undefined,
    mode: 0o755,
    uid,
    gid: 0,
    linkTarget: undefined,
  })),
  fc.record({ path: fc.constantFrom(...PATHS), to: fc.constantFrom('x', '/y') }).map(({ path, to }): StoredEntry => ({
    kind: 'symlink',
    path,
    bytes: to.length,
    fingerprint: to,
    mode: 0o777,
    uid: 0,
    gid: 0,
    linkTarget: to,
  })),
  fc.record({ path: fc.constantFrom(...PATHS), target: fc.constantFrom(...PATHS) }).map(({ path, target }): StoredEntry => ({
    kind: 'hardlink',
    path,
    bytes: 0,
    fingerprint: undefined,
    mode: 0o644,
    uid: 0,
    gid: 0,
    linkTarget: target,
  })),
  fc.constantFrom(...PATHS).map((path): LayerEntry => ({ kind: 'whiteout', path })),
  fc.constantFrom(...PATHS).map((path): LayerEntry => ({ kind: 'opaque', path })),
);

/**
 * A layer as a tar writer makes one: each path at most once (tar-split refuses a path twice), and
 * nothing stored below a path the layer stores as a non-directory, before or after it (no writer
 * puts a file's path and paths below it in one tar). Within such malformed layers the two replays
 * may show a hardlink's content differently.
 */
const layer = fc.array(storedEntry, { maxLength: 8 }).map((es) => {
  const seen = new Set<string>();
  const stored: string[] = [];
  const nonDirs: string[] = [];
  return es.filter((e) => {
    const deletion = e.kind === 'whiteout' || e.kind === 'opaque';
    const key = `${deletion ? e.kind : 'stored'}:${e.path}`;
    if (seen.has(key)) return false;
    if (!deletion && e.kind !== 'dir' && stored.some((p) => p.startsWith(`${e.path}/`))) return false;
    if (!deletion && nonDirs.some((p) => e.path.startsWith(`${p}/`))) return false;
    seen.add(key);
    if (!deletion) stored.push(e.path);
    if (!deletion && e.kind !== 'dir') nonDirs.push(e.path);
    return true;
  });
});

test('the same final filesystem as the analysis replay, on random layer stacks', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(layer, { minLength: 1, maxLength: 5 }), async (layers) => {
      const [got, want] = [await finalFs(layers), replayed(layers)];
      expect(new Map([...got].sort())).toEqual(new Map([...want].sort()));
    }),
    { numRuns: 500 },
  );
});

describe('worked by hand', () => {
  const f = (path: string, bytes: number, fingerprint?: string): StoredEntry => ({
    kind: 'file',
    path,
    bytes,
    fingerprint,
    mode: 0o644,
    uid: 0,
    gid: 0,
    linkTarget: undefined,
  });

  test("a hardlink shows its target's content and its own owner", async () => {
    const link: StoredEntry = {
      kind: 'hardlink',
      path: 'l',
      bytes: 0,
      fingerprint: undefined,
      mode: 0o600,
      uid: 7,
      gid: 7,
      linkTarget: 't',
    };
    const fs = await finalFs([[f('t', 5, 'crc-t'), link]]);
    expect(fs.get('l')).toEqual({ type: 'file', size: 5, mode: 0o600, uid: 7, gid: 7, fingerprint: 'crc-t', target: undefined });
  });

  test('an opaque marker after the files of its own layer hides only lower layers', async () => {
    const fs = await finalFs([[f('d/old', 1, 'o')], [f('d/new', 1, 'n'), { kind: 'opaque', path: 'd' }]]);
    expect([...fs.keys()].sort()).toEqual(['d', 'd/new']);
    // `d` was only made on the way to its files: root's, 0755.
    expect(fs.get('d')).toMatchObject({ type: 'dir', mode: 0o755, uid: 0 });
  });

  test('a file over a directory replaces its whole tree; a whiteout deletes a tree', async () => {
    const fs = await finalFs([
      [f('a/b/c', 1, 'c'), f('x/y', 1, 'y')],
      [f('a', 2, 'a'), { kind: 'whiteout', path: 'x' }],
    ]);
    expect([...fs.keys()]).toEqual(['a']);
  });
});
