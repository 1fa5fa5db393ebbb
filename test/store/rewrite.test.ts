// A cached rebuild gives the same image: the store then writes nothing it already holds (each
// atomic write is a new inode, so an unchanged inode means no rewrite and no fsync).
import { mkdtemp, rm, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/digest.js';
import { ImageDb } from '../../src/store/imagedb.js';
import { Repositories } from '../../src/store/repositories.js';
import { parseReference } from '../../src/image/reference.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-rewrite-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const ino = async (p: string): Promise<number> => (await stat(p)).ino;

test('ImageDb.put of stored bytes rewrites nothing but the notes that changed', async () => {
  const db = new ImageDb(join(dir, 'imagedb'));
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const parent = sha256('parent');
  const id = await db.put(config, parent, { 'tsbuild-build.json': '{"context":"/a"}' });
  const content = join(dir, 'imagedb', 'content', 'sha256', id.slice(7));
  const meta = join(dir, 'imagedb', 'metadata', 'sha256', id.slice(7));
  const before = {
    content: await ino(content),
    parent: await ino(join(meta, 'parent')),
    last: await readFile(join(meta, 'lastUpdated'), 'utf8'),
    prov: await ino(join(meta, 'tsbuild-build.json')),
  };

  expect(await db.put(config, parent, { 'tsbuild-build.json': '{"context":"/a"}' })).toBe(id);
  expect(await ino(content)).toBe(before.content);
  expect(await ino(join(meta, 'parent'))).toBe(before.parent);
  expect(await ino(join(meta, 'tsbuild-build.json'))).toBe(before.prov);
  expect(await readFile(join(meta, 'lastUpdated'), 'utf8')).toBe(before.last);

  // Built from another context: the same image, a new provenance note.
  await db.put(config, parent, { 'tsbuild-build.json': '{"context":"/b"}' });
  expect(await db.getMetadata(id, 'tsbuild-build.json')).toBe('{"context":"/b"}');
  expect(await ino(content)).toBe(before.content);
  expect(await readFile(join(meta, 'lastUpdated'), 'utf8')).toBe(before.last);
});

test('ImageDb.put of stored bytes whose notes were lost writes them again', async () => {
  const db = new ImageDb(join(dir, 'imagedb'));
  const config = Buffer.from('{"os":"linux"}');
  const id = await db.put(config);
  await rm(join(dir, 'imagedb', 'metadata'), { recursive: true });
  await db.put(config, sha256('p'));
  expect(await db.parent(id)).toBe(sha256('p'));
  expect(await db.getMetadata(id, 'lastUpdated')).toMatch(/^\d{4}-/);
});

test('Repositories.set to the image a tag already names leaves repositories.json alone', async () => {
  const file = join(dir, 'repositories.json');
  const repos = new Repositories(file);
  const ref = parseReference('app:1');
  await repos.set(ref, sha256('one'));
  const first = await ino(file);
  expect(await repos.set(ref, sha256('one'))).toBeUndefined();
  expect(await ino(file)).toBe(first);
  expect(await repos.set(ref, sha256('two'))).toBe(sha256('one'));
  expect(await ino(file)).not.toBe(first);
  expect(await repos.get(ref)).toBe(sha256('two'));
});
