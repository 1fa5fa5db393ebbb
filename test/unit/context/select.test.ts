// COPY/ADD --exclude and COPY --parents (src/context/select.ts): which entries of a context a
// source brings, walked as the copy walks them. The cases are BuildKit's own integration tests
// (frontend/dockerfile/exclude_patterns_test.go, dockerfile_parents_test.go), whose expected
// trees were made by BuildKit.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openContext, resolveSelected, type SelectOptions } from '../../../src/context/index.js';
import type { TreeEntry, TreeSource } from '../../../src/fs/copytree.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsbuild-select-'));
  const files: Record<string, string> = {
    'dir1/file-101.png': '2',
    'dir1/file-102.txt': '3',
    'dir1/file-103.jpeg': '4',
    'dir2/file-201.pdf': '6',
    'dir2/file-202.jpeg': '7',
    'dir2/file-203.png': '8',
    'dir3/file-301.mp3': '9',
    'dir3/file-302.mpeg': '10',
    'dir4/file-401.txt': '11',
    'test/a/b/c/d/foo': '',
    'test/a/b/c/d/e/bay': '',
    'test/a/b2/c/d/e/bar': '',
    'test/a/b/c2/d/e/baz': '',
    'test/a/b/c2/d/e2/baz': '',
    'foo1/foo2/bar': 'testing',
    'foo1/foo2/baz': 'testing2',
    'keep/x.log': '',
    'keep/important.log': '',
    'keep/sub/y.log': '',
  };
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  symlinkSync('file-401.txt', join(dir, 'dir4/file-402.txt'));
  symlinkSync('file-404.txt', join(dir, 'dir4/file-403.txt'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a copy of `source` to a directory writes: paths under the destination, directories with a `/`. */
async function copied(source: string, opts: SelectOptions): Promise<string[]> {
  const ctx = await openContext(dir);
  const out: string[] = [];
  const walk = async (tree: TreeSource, e: TreeEntry, at: string): Promise<void> => {
    for (const child of await tree.readDir(e)) {
      const p = at === '' ? child.name : `${at}/${child.name}`;
      out.push(child.stats.isDirectory() ? `${p}/` : p);
      if (child.stats.isDirectory()) await walk(tree, child, p);
    }
  };
  for (const s of await resolveSelected(ctx, source, opts)) {
    if (s.source.stats.isDirectory()) await walk(s.tree, s.source, '');
    else out.push(s.source.name);
  }
  return out.sort();
}

describe('--exclude', () => {
  test('patterns are relative to the source, and leave out whole directories', async () => {
    expect(await copied('.', { exclude: ['*/*.png', '*/*.jpeg'] })).toEqual(
      expect.arrayContaining(['dir1/file-102.txt', 'dir2/file-201.pdf', 'dir3/file-301.mp3', 'dir4/file-402.txt']),
    );
    const imagesLeft = (await copied('.', { exclude: ['*/*.png', '*/*.jpeg'] })).filter((p) => /\.(png|jpeg)$/.test(p));
    expect(imagesLeft).toEqual([]);
    expect(await copied('dir3/', { exclude: ['*.mp3'] })).toEqual(['file-302.mpeg']);
    expect(await copied('.', { exclude: ['test', 'foo1', 'keep', 'dir1', 'dir2', 'dir3'] })).toEqual([
      'dir4/',
      'dir4/file-401.txt',
      'dir4/file-402.txt',
      'dir4/file-403.txt',
    ]);
  });

  test('each wildcard match is a source of its own; a matched file itself is never excluded', async () => {
    expect(await copied('dir*', { exclude: ['*.mp*', '*.jpeg', '*.png', '*.pdf'] })).toEqual([
      'file-102.txt',
      'file-401.txt',
      'file-402.txt',
      'file-403.txt',
    ]);
    expect(await copied('dir*', { exclude: ['*'] })).toEqual([]);
    expect(await copied('dir1/*.png', { exclude: ['*.png'] })).toEqual(['file-101.png']);
  });

  test('a `!` pattern re-includes, and the excluded directory holding it is copied with just that', async () => {
    expect(await copied('keep', { exclude: ['*.log', 'sub', '!important.log'] })).toEqual(['important.log']);
    expect(await copied('keep', { exclude: ['**/*.log', '!sub/y.log'] })).toEqual(['sub/', 'sub/y.log']);
  });
});

describe('COPY --parents', () => {
  test('keeps the path from the context root, with wildcards', async () => {
    expect(await copied('foo1/foo2/bar', { parents: true })).toEqual(['foo1/', 'foo1/foo2/', 'foo1/foo2/bar']);
    expect(await copied('foo1/foo2/ba*', { parents: true })).toEqual(['foo1/', 'foo1/foo2/', 'foo1/foo2/bar', 'foo1/foo2/baz']);
  });

  test('a /./ pivot keeps only what follows it', async () => {
    expect(await copied('/test/a/b/./c/d', { parents: true })).toEqual(['c/', 'c/d/', 'c/d/e/', 'c/d/e/bay', 'c/d/foo']);
    expect(await copied('/test/a/./b/./c', { parents: true })).toEqual(['b/', 'b/c/', 'b/c/d/', 'b/c/d/e/', 'b/c/d/e/bay', 'b/c/d/foo']);
    expect(await copied('/test/a/./*/c', { parents: true })).toEqual(expect.arrayContaining(['b/c/d/e/bay', 'b2/c/d/e/bar', 'b/c/d/foo']));
    // Wildcards before the pivot pick the directories copied; `**` crosses directories.
    expect(await copied('/test/a/b*/./c/**/e', { parents: true })).toEqual(expect.arrayContaining(['c/d/e/', 'c/d/e/bay', 'c/d/e/bar']));
    expect(await copied('/test/a/b/c*/./d/**/baz', { parents: true })).toEqual(['d/', 'd/e/', 'd/e/baz', 'd/e2/', 'd/e2/baz']);
  });

  test('without a pivot, a trailing /. or a leading ./ keeps the whole path', async () => {
    expect(await copied('/test/a/b/c/d/.', { parents: true })).toContain('test/a/b/c/d/e/bay');
    expect(await copied('./test/a/b/c/d', { parents: true })).toContain('test/a/b/c/d/foo');
  });

  test('a path without wildcards must exist; with wildcards, matching nothing is fine', async () => {
    await expect(copied('/test/nonexistent-file', { parents: true })).rejects.toThrow('"/test/nonexistent-file": not found');
    expect(await copied('/test/a/b3*/c', { parents: true })).toEqual([]);
    expect(await copied('/test/a/b/./c3*', { parents: true })).toEqual([]);
  });

  test('--exclude applies below the pivot', async () => {
    expect(await copied('/test/a/b/./c2', { parents: true, exclude: ['c2/d/e2'] })).toEqual(['c2/', 'c2/d/', 'c2/d/e/', 'c2/d/e/baz']);
  });
});
