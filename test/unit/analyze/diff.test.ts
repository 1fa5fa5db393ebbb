// diff's comparison and the source names, on hand-made layers: what the final filesystem holds
// after whiteouts, opaque directories and a file over a directory (Docker's layer rules), how
// two such filesystems differ, the order of the lines, and how IMAGE arguments are split into
// transports. Expectations are worked out by hand, not from the implementation.
import type { LayerEntry, StoredEntry } from '../../../src/analyze/entries.js';
import { comparePaths, diffImages, type ImageDiff } from '../../../src/analyze/diff.js';
import { parseSourceName, type SourceImage } from '../../../src/analyze/source.js';
import type { Digest } from '../../../src/digest.js';

function entry(kind: StoredEntry['kind'], path: string, opts: Partial<StoredEntry> = {}): StoredEntry {
  return {
    kind,
    path,
    bytes: 0,
    fingerprint: undefined,
    mode: kind === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    linkTarget: undefined,
    ...opts,
  };
}
const file = (path: string, content: string, opts: Partial<StoredEntry> = {}): StoredEntry =>
  entry('file', path, { bytes: content.length, fingerprint: content.length > 0 ? `${content.length}:${content}` : undefined, ...opts });
const symlink = (path: string, target: string): StoredEntry =>
  entry('symlink', path, { bytes: target.length, fingerprint: `->${target}`, linkTarget: target });

/** An image of hand-made layers, as a source gives it. */
function image(id: string, ...layers: LayerEntry[][]): SourceImage {
  return {
    name: { transport: 'store', target: id },
    id: `sha256:${id.padEnd(64, '0')}` as Digest,
    configBytes: Buffer.alloc(0),
    config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
    tags: [],
    digests: [],
    layers: layers.map((l) => ({
      diffId: 'sha256:0' as Digest,
      chainId: 'sha256:0' as Digest,
      size: async () => 0,
      entries: async function* () {
        yield* l;
      },
    })),
    provenance: undefined,
    close: async () => undefined,
  };
}
const lines = (d: ImageDiff): string[] => d.changes.map((c) => `${c.change[0]} ${c.path} ${c.what.join(',')}`.trimEnd());

describe('diff', () => {
  const base = [entry('dir', 'etc'), file('etc/a', 'aaaa'), entry('dir', 'opt'), file('opt/x', 'x'), file('opt/y', 'y'), file('empty', '')];

  test('a whiteout and an opaque directory delete what is below them; a file over a directory replaces the tree', async () => {
    const before = image('1', base);
    const after = image('2', base, [
      { kind: 'whiteout', path: 'etc' },
      { kind: 'opaque', path: 'opt' },
      entry('dir', 'opt'),
      file('opt/z', 'z'),
    ]);
    expect(lines(await diffImages(before, after))).toEqual(['r /etc', 'r /etc/a', 'r /opt/x', 'r /opt/y', 'a /opt/z']);
    const flat = image('3', base, [file('opt', 'now a file')]);
    expect(lines(await diffImages(before, flat))).toEqual(['c /opt type', 'r /opt/x', 'r /opt/y']);
  });

  test('content at the same size, mode, owner, target; empty files and re-stored ones are equal', async () => {
    const before = image('1', [...base, symlink('l', 'etc/a')]);
    const after = image('2', [
      entry('dir', 'etc'),
      file('etc/a', 'bbbb', { mode: 0o600, uid: 5 }),
      entry('dir', 'opt', { mode: 0o700 }),
      file('opt/x', 'x'),
      file('opt/y', 'y'),
      file('empty', ''),
      symlink('l', 'etc/b'),
    ]);
    const d = await diffImages(before, after);
    expect(lines(d)).toEqual(['c /etc/a content,mode,owner', 'c /l target', 'c /opt mode']);
    expect(d.summary).toEqual({ added: 0, removed: 0, changed: 3, addedBytes: 0, removedBytes: 0 });
    expect(await diffImages(before, image('3', [...base, symlink('l', 'etc/a')], [file('opt/x', 'x')]))).toMatchObject({ identical: true });
  });

  test('a hardlink compares as the content it shares; a directory made on the way is 0755 root', async () => {
    const a = image('1', [file('f', 'data'), entry('hardlink', 'h', { linkTarget: 'f' }), file('deep/er/g', 'g')]);
    const b = image('2', [file('f', 'data'), file('h', 'data'), entry('dir', 'deep'), entry('dir', 'deep/er'), file('deep/er/g', 'g')]);
    expect(await diffImages(a, b)).toMatchObject({ identical: true });
    const c = image('3', [file('f', 'datb'), entry('hardlink', 'h', { linkTarget: 'f' }), file('deep/er/g', 'g')]);
    expect(lines(await diffImages(a, c))).toEqual(['c /f content', 'c /h content']);
  });

  test('paths in tree order: a directory, then what is below it, then its siblings', () => {
    expect(['/a-b', '/a/b', '/a', '/a.c', '/b'].sort(comparePaths)).toEqual(['/a', '/a/b', '/a-b', '/a.c', '/b']);
  });
});

describe('image source names', () => {
  test('transports, and a store name otherwise', () => {
    expect(parseSourceName('busybox:latest')).toEqual({ transport: 'store', target: 'busybox:latest' });
    expect(parseSourceName('localhost:5000/app:1')).toEqual({ transport: 'store', target: 'localhost:5000/app:1' });
    expect(parseSourceName('docker://localhost:5000/app:1')).toEqual({ transport: 'docker', target: 'localhost:5000/app:1' });
    expect(parseSourceName('docker-archive:/tmp/a.tar')).toEqual({ transport: 'docker-archive', target: '/tmp/a.tar' });
    expect(parseSourceName('oci-archive:a.tar')).toEqual({ transport: 'oci-archive', target: 'a.tar' });
    expect(parseSourceName('oci:/tmp/layout')).toEqual({ transport: 'oci', target: '/tmp/layout' });
    expect(parseSourceName('oci:/tmp/layout:v1')).toEqual({ transport: 'oci', target: '/tmp/layout', tag: 'v1' });
    expect(parseSourceName('oci:/tmp/lay:out/dir')).toEqual({ transport: 'oci', target: '/tmp/lay:out/dir' });
  });

  test('unknown and unsupported transports, and empty targets, are refused', () => {
    expect(() => parseSourceName('https://example.com/x')).toThrow(/^unknown transport "https:\/\/"/);
    expect(() => parseSourceName('docker-daemon:busybox:latest')).toThrow(/^transport "docker-daemon:" is not supported/);
    expect(() => parseSourceName('dir:/tmp/image')).toThrow(/^transport "dir:" is not supported/);
    // An image of the store may be called dir (or sif, or tarball).
    expect(parseSourceName('dir:latest')).toEqual({ transport: 'store', target: 'dir:latest' });
    expect(() => parseSourceName('docker://')).toThrow(/^"docker:\/\/" names nothing: write docker:\/\/REF$/);
    expect(() => parseSourceName('oci:')).toThrow(/names nothing: write oci:DIR\[:TAG\]$/);
  });
});
