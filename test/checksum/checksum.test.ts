// The COPY/ADD cache key (sourcesChecksum) and its per-context metadata cache.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, readFile, readdir, rename, rm, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sourcesChecksum, type SourcesChecksumOptions } from '../../src/builder/checksum.js';
import { copyIntoRootfs } from '../../src/builder/copy.js';
import { Downloads } from '../../src/builder/remote.js';
import { ContextHashCache, openContext } from '../../src/context/index.js';
import { RACY_MARGIN_MS } from '../../src/context/hashcache.js';
import { removeTempDirs, tempDir, writeTree, type Tree } from '../copy/tmp.js';
import { serve, startServer, type TestServer } from '../copy/httpserver.js';

afterEach(removeTempDirs);

/** Let files written by the test become older than the racy margin, as real contexts are. */
const settle = () => new Promise((r) => setTimeout(r, RACY_MARGIN_MS + 200));

async function contextDir(tree: Tree): Promise<string> {
  const dir = await tempDir('tsbuild-ctx-');
  await writeTree(dir, tree);
  return dir;
}

/** The checksum as a new build computes it: a fresh BuildContext each time. */
async function checksum(dir: string, sources: string[] = ['.'], opts: SourcesChecksumOptions = {}): Promise<string> {
  return sourcesChecksum(await openContext(dir), sources, opts);
}

/** The lines of a cache file before its end line (the header, then one per file). */
async function cacheLines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').slice(0, -2);
}

/** Writes `lines` back as an intact cache file: its end line counts them and hashes the body. */
async function writeIntactCache(file: string, lines: readonly string[]): Promise<void> {
  const body = lines.map((l) => `${l}\n`).join('');
  await writeFile(file, `${body}end ${lines.length - 1} ${createHash('sha256').update(body).digest('hex')}\n`);
}

async function cacheFileOf(cacheDir: string): Promise<string> {
  const files = await readdir(cacheDir);
  expect(files).toHaveLength(1);
  return join(cacheDir, files[0]!);
}

const TREE: Tree = {
  'a.txt': 'alpha',
  empty: '',
  'bin/run.sh': { file: '#!/bin/sh\n', mode: 0o755 },
  'dir/sub/deep.txt': 'deep',
  'dir/link': { link: '../a.txt' },
  'odd/with\nnewline "quoted" back\\slash é': 'odd name',
};

describe('what the checksum sees', () => {
  it('ignores mtimes and owners', async () => {
    const dir = await contextDir(TREE);
    const before = await checksum(dir);
    await utimes(join(dir, 'a.txt'), 1000, 1000);
    await utimes(join(dir, 'dir'), 2000, 2000);
    await chown(join(dir, 'a.txt'), 123, 456);
    expect(await checksum(dir)).toBe(before);
  });

  it('sees names, permission bits, content, sizes, link targets, types and new files', async () => {
    const dir = await contextDir(TREE);
    const seen = new Set([await checksum(dir)]);
    const changed = async (what: string, change: () => Promise<void>) => {
      await change();
      const c = await checksum(dir);
      expect({ what, repeated: seen.has(c) }).toEqual({ what, repeated: false });
      seen.add(c);
    };
    await changed('content', () => writeFile(join(dir, 'a.txt'), 'alphA'));
    await changed('size', () => writeFile(join(dir, 'a.txt'), 'alphA!'));
    await changed('mode', () => chmod(join(dir, 'a.txt'), 0o600));
    await changed('name', () => rename(join(dir, 'a.txt'), join(dir, 'b.txt')));
    await changed('link target', async () => {
      await unlink(join(dir, 'dir/link'));
      await symlink('../b.txt', join(dir, 'dir/link'));
    });
    await changed('type', async () => {
      await unlink(join(dir, 'dir/link'));
      await writeFile(join(dir, 'dir/link'), '../b.txt');
    });
    await changed('new empty file', () => writeFile(join(dir, 'dir/sub/new'), ''));
    await changed('new empty directory', () => writeTree(dir, { 'dir/sub/newdir/': null }));
  });

  it('keeps files in order across many reads (swapping two contents changes it)', async () => {
    const tree: Tree = {};
    for (let i = 0; i < 300; i++) tree[`d${i % 3}/f${String(i).padStart(3, '0')}`] = `content ${String(i).padStart(3, '0')}`;
    const dir = await contextDir(tree);
    const before = await checksum(dir);
    await writeFile(join(dir, 'd1/f100'), 'content 200');
    await writeFile(join(dir, 'd2/f200'), 'content 100');
    expect(await checksum(dir)).not.toBe(before);
    await writeFile(join(dir, 'd1/f100'), 'content 100');
    await writeFile(join(dir, 'd2/f200'), 'content 200');
    expect(await checksum(dir)).toBe(before);
  });

  it('tells a fifo from an empty file, without opening it', async () => {
    const dir = await contextDir({ p: '' });
    const file = await checksum(dir);
    await rm(join(dir, 'p'));
    await execa('mkfifo', [join(dir, 'p')]);
    expect(await checksum(dir)).not.toBe(file);
  });

  it('is the sha256 of its listing as UTF-8, names beyond ASCII and a symlink (reads queued) included', async () => {
    const dir = await contextDir({ 'café/é.txt': 'é', 'z/日本.txt': 'x', 'plain.txt': 'p' });
    await symlink('café/é.txt', join(dir, 'link'));
    let listing = '';
    const digest = await checksum(dir, ['.'], { onListing: (text) => (listing = text) });
    expect(listing).toContain('café/é.txt');
    expect(listing).toContain('日本.txt');
    // The digest is that of the listing's hex digest (checksum.ts).
    const listed = createHash('sha256').update(Buffer.from(listing, 'utf8')).digest('hex');
    expect(digest).toBe(`sha256:${createHash('sha256').update(listed).digest('hex')}`);
    // Not captured, the text queued behind the symlink's read is kept as bytes: the same ones.
    expect(await checksum(dir)).toBe(digest);
  });

  it('leaves out what .dockerignore excludes', async () => {
    const dir = await contextDir({ ...TREE, '.dockerignore': 'secret\n' });
    const before = await checksum(dir);
    await writeFile(join(dir, 'secret'), 'changes all the time');
    expect(await checksum(dir)).toBe(before);
  });
});

describe('the metadata cache', () => {
  it('gives the same checksum as reading everything, cold and warm, small files and large', async () => {
    const dir = await contextDir({ ...TREE, 'large.bin': createHash('sha512').update('x').digest('hex').repeat(3000) });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    const plain = await checksum(dir);
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    expect(cache.discarded).toBeUndefined();
    expect(cache.size).toBe(6); // every regular file, the odd name included
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
    expect(await checksum(dir, ['dir', 'a.txt'], { cacheDir })).toBe(await checksum(dir, ['dir', 'a.txt']));
  });

  it('takes the digest of an unchanged file from the cache instead of reading it', async () => {
    const dir = await contextDir({ f1: 'one', 'sub/f2': 'two' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    const truth = await checksum(dir, ['.'], { cacheDir });
    // Rewrite the cache, intact, to claim other contents for f1: the checksum follows the claim,
    // so the file was not read. (Only a forged cache can do this; the file's lstat is unchanged.)
    const file = await cacheFileOf(cacheDir);
    const hexOne = createHash('sha256').update('one').digest('hex');
    await writeIntactCache(
      file,
      (await cacheLines(file)).map((l) => l.replace(hexOne, 'f'.repeat(64))),
    );
    const claimed = await checksum(dir, ['.'], { cacheDir });
    expect(claimed).not.toBe(truth);
    // Any change to the file's lstat (here a chmod back and forth: ctime) makes it read again.
    await chmod(join(dir, 'f1'), 0o600);
    await chmod(join(dir, 'f1'), 0o644);
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(truth);
  });

  it('sees a same-size change whose mtime was put back (ctime moves)', async () => {
    const dir = await contextDir({ f: 'aaaa', g: 'g' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await utimes(join(dir, 'f'), 1_500_000_000, 1_500_000_000);
    await settle();
    const before = await checksum(dir, ['.'], { cacheDir });
    await writeFile(join(dir, 'f'), 'aaab');
    await utimes(join(dir, 'f'), 1_500_000_000, 1_500_000_000);
    const after = await checksum(dir, ['.'], { cacheDir });
    expect(after).not.toBe(before);
    expect(after).toBe(await checksum(dir));
  });

  it('does not remember files changed within the racy margin', async () => {
    const dir = await contextDir({ old: 'o' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    await writeFile(join(dir, 'fresh'), 'just written');
    await checksum(dir, ['.'], { cacheDir });
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    expect(cache.size).toBe(1);
    const st = await lstat(join(dir, 'old'));
    expect(cache.lookup('old', st)).toBe(createHash('sha256').update('o').digest('hex'));
    expect(cache.lookup('fresh', await lstat(join(dir, 'fresh')))).toBeUndefined();
  });

  it('forgets files that are gone, and keeps those it did not look at', async () => {
    const dir = await contextDir({ 'keep/a': 'a', 'other/b': 'b', 'other/c': 'c', 'other/sub/d': 'd' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    await checksum(dir, ['.'], { cacheDir });
    expect((await ContextHashCache.load(cacheDir, await realRoot(dir))).size).toBe(4);
    await rm(join(dir, 'other/c'));
    await rm(join(dir, 'other/sub'), { recursive: true });
    await checksum(dir, ['other'], { cacheDir }); // walks other/ only
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    expect(cache.size).toBe(2);
    expect(cache.lookup('keep/a', await lstat(join(dir, 'keep/a')))).toBeDefined();
    expect(cache.lookup('other/b', await lstat(join(dir, 'other/b')))).toBeDefined();
  });

  it('ignores a damaged cache file and writes a good one', async () => {
    const dir = await contextDir(TREE);
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    const plain = await checksum(dir);
    await checksum(dir, ['.'], { cacheDir });
    const file = await cacheFileOf(cacheDir);
    const good = await readFile(file, 'utf8');
    const damages: Record<string, string> = {
      'a flipped digit': good.replace(/\n([0-9a-f])/, (_m, c: string) => `\n${c === '0' ? '1' : '0'}`),
      'a cut': good.slice(0, good.length - 30),
      'no end line': good.split('\n').slice(0, -2).join('\n') + '\n',
      'another root': good.replace(/^(\S+ \S+) "/, '$1 "/elsewhere'),
      garbage: '\u0000\u0001binary junk',
      nothing: '',
    };
    for (const [what, text] of Object.entries(damages)) {
      await writeFile(file, text);
      const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
      expect({ what, discarded: cache.discarded !== undefined, size: cache.size }).toEqual({ what, discarded: true, size: 0 });
      expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
      expect(await readFile(file, 'utf8')).toBe(good);
    }
    // A damaged entry that still parses is caught by the end line's digest, not trusted.
    await writeFile(file, good.replace(createHash('sha256').update('alpha').digest('hex'), '0'.repeat(64)));
    expect((await ContextHashCache.load(cacheDir, await realRoot(dir))).discarded).toBe('checksum does not match');
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
  });

  it('reads a cache bigger than one read, with names of several UTF-8 bytes across the pieces', async () => {
    const dir = await contextDir({ 'real/é.txt': 'é' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    const truth = await checksum(dir, ['.'], { cacheDir });
    // Entries for files the walk never reaches are kept as they are: add 13,000 of them (about
    // 2 MiB, so lines and multi-byte characters straddle the 1 MiB pieces the file is read in).
    const file = await cacheFileOf(cacheDir);
    const lines = await cacheLines(file);
    const hex = createHash('sha256').update('x').digest('hex');
    for (let i = 0; i < 13_000; i++)
      lines.push(`${hex} 1 1577836800000 1795449879664.1406 ${1000 + i} 33188 ${JSON.stringify(`elsewhere/€ ${i} ${'ü'.repeat(i % 40)}`)}`);
    await writeIntactCache(file, lines);
    expect((await lstat(file)).size).toBeGreaterThan(2 * (1 << 20));
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    expect(cache.discarded).toBeUndefined();
    expect(cache.size).toBe(13_001);
    expect(cache.lookup('real/é.txt', await lstat(join(dir, 'real/é.txt')))).toBe(createHash('sha256').update('é').digest('hex'));
    expect(await checksum(dir, ['real'], { cacheDir })).toBe(await checksum(dir, ['real']));
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(truth);
  });

  it('writes nothing when nothing changed', async () => {
    const dir = await contextDir(TREE);
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    await checksum(dir, ['.'], { cacheDir });
    const file = await cacheFileOf(cacheDir);
    const written = (await lstat(file)).ino;
    await checksum(dir, ['.'], { cacheDir });
    expect((await lstat(file)).ino).toBe(written); // not replaced
  });

  it('keeps one file per context root', async () => {
    const a = await contextDir({ x: 'same' });
    const b = await contextDir({ x: 'same' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    expect(await checksum(a, ['.'], { cacheDir })).toBe(await checksum(b, ['.'], { cacheDir }));
    expect(await readdir(cacheDir)).toHaveLength(2);
  });

  it('reads a file again after it was truncated and refilled to the same size', async () => {
    const dir = await contextDir({ f: 'xxxx' });
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    const before = await checksum(dir, ['.'], { cacheDir });
    await truncate(join(dir, 'f'), 0);
    await writeFile(join(dir, 'f'), 'yyyy', { flag: 'r+' });
    expect(await checksum(dir, ['.'], { cacheDir })).not.toBe(before);
  });

  it('lists an unchanged directory from the cache, and reads it again once an entry is added, removed or renamed', async () => {
    const dirs = ['added', 'removed', 'renamed'];
    const tree: Tree = {};
    for (const d of dirs) Object.assign(tree, { [`${d}/a`]: 'a', [`${d}/b`]: 'b' });
    const dir = await contextDir(tree);
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    await checksum(dir, ['.'], { cacheDir });
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    expect(cache.listings).toBe(4); // the root and the three directories
    expect(cache.listing('added', await lstat(join(dir, 'added')))).toEqual(['a', 'b']);
    // Rewrite the cache, intact, to claim that each directory holds `a` alone: the checksum
    // follows the claim, so the directories were not read.
    const file = await cacheFileOf(cacheDir);
    await writeIntactCache(
      file,
      (await cacheLines(file)).map((l) => l.replace(/^(dir .* "(?:added|removed|renamed)") "a\/b"$/, '$1 "a"')),
    );
    for (const d of dirs) expect(await checksum(dir, [d], { cacheDir })).not.toBe(await checksum(dir, [d]));
    // Each change moves its directory's mtime and ctime: that one is read again, and right.
    await writeFile(join(dir, 'added/c'), 'c');
    await rm(join(dir, 'removed/b'));
    await rename(join(dir, 'renamed/b'), join(dir, 'renamed/c'));
    for (const d of dirs) expect(await checksum(dir, [d], { cacheDir })).toBe(await checksum(dir, [d]));
  });

  it('does not remember directories changed within the racy margin; keeps odd names whole', async () => {
    const odd = 'with\nnewline "quoted" back\\slash é';
    const dir = await contextDir({ [`old/${odd}`]: 'x', 'old/y': 'y' });
    await writeFile(Buffer.concat([Buffer.from(join(dir, 'old/bad')), Buffer.of(0xff)]), 'not UTF-8');
    const cacheDir = await tempDir('tsbuild-cache-');
    await settle();
    await writeTree(dir, { 'fresh/z': 'z' });
    const plain = await checksum(dir);
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
    const cache = await ContextHashCache.load(cacheDir, await realRoot(dir));
    // Byte order: `bad\xff` (0x62) before `w...` (0x77) before `y`.
    expect(cache.listing('old', await lstat(join(dir, 'old')))).toEqual(['bad\udcff', odd, 'y']);
    expect(cache.listing('fresh', await lstat(join(dir, 'fresh')))).toBeUndefined();
    expect(cache.listing('', await lstat(dir))).toBeUndefined(); // `fresh` was just made in it
    expect(await checksum(dir, ['.'], { cacheDir })).toBe(plain);
  });
});

describe('URL sources', () => {
  let server: TestServer;
  let body = 'v1\n';
  let lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';
  beforeAll(async () => {
    server = await startServer({
      '/file.txt': (req, res) => serve(body, { 'last-modified': lastModified })(req, res),
      '/pinned.txt': serve('pinned\n'),
    });
  });
  afterAll(() => server.close());

  it('hashes the content and Last-Modified, downloading once for checksum and copy', async () => {
    const dir = await contextDir({});
    const url = `${server.base}/file.txt`;
    const rootfs = await tempDir('tsbuild-rootfs-');
    const downloads = new Downloads();
    const before = server.hits.get('/file.txt') ?? 0;
    let first: string;
    try {
      const ctx = await openContext(dir);
      first = await sourcesChecksum(ctx, [url], { isAdd: true, downloads });
      await copyIntoRootfs({ context: ctx, sources: [url], dest: '/', workdir: '/', rootfs, isAdd: true, downloads });
    } finally {
      await downloads.close();
    }
    expect(server.hits.get('/file.txt')! - before).toBe(1);
    expect(await readFile(join(rootfs, 'file.txt'), 'utf8')).toBe('v1\n');
    expect(await checksum(dir, [url], { isAdd: true })).toBe(first);
    lastModified = 'Thu, 22 Oct 2015 07:28:00 GMT';
    const touched = await checksum(dir, [url], { isAdd: true });
    expect(touched).not.toBe(first);
    body = 'v2\n';
    expect(await checksum(dir, [url], { isAdd: true })).not.toBe(touched);
  });

  it('with --checksum, keys on the pin and downloads nothing', async () => {
    const dir = await contextDir({});
    const url = `${server.base}/pinned.txt`;
    const pin = `sha256:${createHash('sha256').update('pinned\n').digest('hex')}`;
    const a = await checksum(dir, [url], { isAdd: true, checksum: pin });
    expect(await checksum(dir, [url], { isAdd: true, checksum: pin })).toBe(a);
    expect(server.hits.get('/pinned.txt') ?? 0).toBe(0);
    const other = `sha256:${'0'.repeat(64)}`;
    expect(await checksum(dir, [url], { isAdd: true, checksum: other })).not.toBe(a);
  });

  it('refuses URLs for COPY and --checksum on context files', async () => {
    const dir = await contextDir({ f: 'f' });
    await expect(checksum(dir, [`${server.base}/file.txt`], { isAdd: false })).rejects.toThrow("source can't be a URL for COPY");
    await expect(checksum(dir, ['f'], { isAdd: true, checksum: `sha256:${'0'.repeat(64)}` })).rejects.toThrow(
      'checksum requires HTTP(S) or Git sources',
    );
  });
});

async function realRoot(dir: string): Promise<string> {
  return (await openContext(dir)).root;
}
