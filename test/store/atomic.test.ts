// Every store write appears whole or not at all.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/digest.js';
import { fsyncAll, linkOrCopy, sweepTemps, writeFileAtomic, writeFilesAtomic } from '../../src/fs/atomic.js';
import { chainIdOf } from '../../src/digest.js';
import { LayerDb } from '../../src/store/layerdb.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-atomic-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

test('writeFileAtomic replaces content and leaves no temp file', async () => {
  const f = join(dir, 'sub', 'repositories.json');
  await writeFileAtomic(f, '{"a":1}');
  await writeFileAtomic(f, '{"a":2}');
  expect(await readFile(f, 'utf8')).toBe('{"a":2}');
  expect(await readdir(join(dir, 'sub'))).toEqual(['repositories.json']);
});

test('writeFileAtomic without durability still replaces whole and leaves no temp file', async () => {
  const f = join(dir, 'buildcache', 'record');
  await writeFileAtomic(f, '{"a":1}', { durable: false });
  await writeFileAtomic(f, '{"a":2}', { durable: false, mode: 0o600 });
  expect(await readFile(f, 'utf8')).toBe('{"a":2}');
  expect((await stat(f)).mode & 0o777).toBe(0o600);
  expect(await readdir(join(dir, 'buildcache'))).toEqual(['record']);
});

test('writeFilesAtomic publishes every file of a batch and leaves no temp file', async () => {
  const meta = join(dir, 'metadata', 'sha256', 'abc');
  await writeFilesAtomic(meta, { parent: 'sha256:1', lastUpdated: '2026', 'tsbuild-build.json': '{}' });
  await writeFilesAtomic(meta, { lastUpdated: '2027' });
  expect((await readdir(meta)).sort()).toEqual(['lastUpdated', 'parent', 'tsbuild-build.json']);
  expect(await readFile(join(meta, 'lastUpdated'), 'utf8')).toBe('2027');
  expect(await readFile(join(meta, 'parent'), 'utf8')).toBe('sha256:1');
});

test('writeFilesAtomic that fails replaces nothing and removes its temp files', async () => {
  const d = join(dir, 'meta');
  await writeFilesAtomic(d, { keep: 'old' });
  // A name that is a non-empty directory cannot be renamed over: the batch fails at rename.
  await mkdir(join(d, 'blocked', 'inside'), { recursive: true });
  await expect(writeFilesAtomic(d, { keep: 'new', blocked: 'x' })).rejects.toThrow();
  expect(await readFile(join(d, 'keep'), 'utf8')).toMatch(/^(old|new)$/);
  expect((await readdir(d)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
});

test('linkOrCopy gives the destination the same bytes, as a hard link on one filesystem', async () => {
  const src = join(dir, 'tar-split.json.gz');
  await writeFile(src, 'split bytes');
  await mkdir(join(dir, 'ws'));
  await linkOrCopy(src, join(dir, 'ws', 'tar-split.json.gz'));
  expect((await stat(join(dir, 'ws', 'tar-split.json.gz'))).ino).toBe((await stat(src)).ino);
  await rm(src);
  expect(await readFile(join(dir, 'ws', 'tar-split.json.gz'), 'utf8')).toBe('split bytes');
  await expect(linkOrCopy(join(dir, 'missing'), join(dir, 'ws', 'x'))).rejects.toThrow(/ENOENT/);
});

test('fsyncAll syncs files and directories together, fails on a missing path, and closes every descriptor', async () => {
  const ws = join(dir, 'ws-sync');
  await mkdir(ws);
  const names = Array.from({ length: 200 }, (_, i) => `f${i}`);
  await Promise.all(names.map((n) => writeFile(join(ws, n), n)));
  const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
  const before = await openFds();
  await fsyncAll(names.map((n) => join(ws, n)).concat(ws, dir));
  // A failure is thrown once the batch's other fsyncs have finished: none is left open.
  await expect(fsyncAll([join(ws, 'f1'), join(ws, 'missing'), ws])).rejects.toThrow(/ENOENT.*missing/);
  expect(await openFds()).toBe(before);
});

test('sweepTemps removes what an interrupted write left, and only what the judge calls dead', async () => {
  await writeFile(join(dir, '.tmp-repositories.json-1-abc123abc123'), '{"half');
  await writeFile(join(dir, `.tmp-repositories.json-${process.pid}-abc123abc123`), '{"live');
  await writeFile(join(dir, 'keep.json'), '{}');
  const removed = await sweepTemps(dir, (name) => !name.includes(`-${process.pid}-`));
  expect(removed).toEqual([join(dir, '.tmp-repositories.json-1-abc123abc123')]);
  expect((await readdir(dir)).sort()).toEqual([`.tmp-repositories.json-${process.pid}-abc123abc123`, 'keep.json']);
});

describe('LayerDb', () => {
  const diffId = sha256('layer one');
  test('publishes a whole layer dir at its chainID, once', async () => {
    const db = new LayerDb(join(dir, 'layerdb'));
    const split = join(dir, 'split.json.gz');
    await writeFile(split, 'x');
    const first = await db.create({ diffId, size: 10, cacheId: 'c1', tarSplitFile: split });
    expect(first.created).toBe(true);
    expect(first.record.chainId).toBe(diffId);
    const second = await db.create({ diffId, size: 10, cacheId: 'c2', tarSplitFile: split });
    expect(second).toEqual({ record: first.record, created: false });
    const child = await db.create({ parent: diffId, diffId: sha256('two'), size: 1, cacheId: 'c3', tarSplitFile: split });
    expect(child.record.chainId).toBe(chainIdOf(diffId, sha256('two')));
    expect((await db.chain(child.record.chainId)).map((l) => l.cacheId)).toEqual(['c1', 'c3']);
    expect(await readdir(db.tmpDir)).toEqual([]);
  });

  test('a failed write publishes nothing and leaves no write-set', async () => {
    const db = new LayerDb(join(dir, 'layerdb'));
    await expect(db.create({ diffId, size: 1, cacheId: 'c', tarSplitFile: join(dir, 'missing.json.gz') })).rejects.toThrow(/ENOENT/);
    expect(await db.get(diffId)).toBeUndefined();
    expect(await readdir(db.tmpDir)).toEqual([]);
    expect(await db.list()).toEqual([]);
  });
});
