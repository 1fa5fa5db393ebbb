// The worker-thread crc64 of big files gives the bytes the in-thread code gives, and the layer
// tar-split a big file gets from it is the one the in-thread path would write.
import { randomBytes } from 'node:crypto';
import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc64OfFile } from '../../src/layer/crc64-file.js';
import { Crc64Js } from '../../src/layer/crc64.js';
import { readTarSplit, regenerateLayer, writeLayer } from '../../src/layer/index.js';
import { changesOf, cleanup, collector, sha256hex, streamBytes, tempDir } from './fixtures.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('tsbuild-crc64-file-');
});
afterAll(async () => cleanup(work));

test.each([0, 1, 7, (1 << 20) - 1, 1 << 20, (1 << 20) + 3, 3 * (1 << 20) + 11])(
  'a %i-byte file: the same crc64 as the JavaScript code',
  async (size) => {
    const data = randomBytes(size);
    const path = join(work, `f-${size}`);
    await writeFile(path, data);
    const r = await crc64OfFile(path)!;
    expect(r.bytes).toBe(size);
    expect(r.crc.toString('hex')).toBe(new Crc64Js().update(data).digest().toString('hex'));
  },
);

test('several files at once each get their own answer', async () => {
  const datas = [randomBytes(5000), randomBytes(1 << 21), randomBytes(17)];
  const paths = await Promise.all(
    datas.map(async (d, i) => {
      const p = join(work, `many-${i}`);
      await writeFile(p, d);
      return p;
    }),
  );
  const got = await Promise.all(paths.map((p) => crc64OfFile(p)!));
  expect(got.map((g) => g.crc.toString('hex'))).toEqual(datas.map((d) => new Crc64Js().update(d).digest().toString('hex')));
});

test('a missing file and a symlink are errors, and the worker keeps serving after them', async () => {
  await expect(crc64OfFile(join(work, 'missing'))!).rejects.toThrow(/ENOENT/);
  await writeFile(join(work, 'target'), 'x');
  await symlink(join(work, 'target'), join(work, 'link'));
  await expect(crc64OfFile(join(work, 'link'))!).rejects.toThrow(/ELOOP/);
  expect((await crc64OfFile(join(work, 'target'))!).bytes).toBe(1);
});

test('a layer with a file big enough for the worker: tar-split crc as computed here, and the tar regenerates', async () => {
  const tree = join(work, 'tree');
  await mkdir(tree);
  const big = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(33 << 20, 0x5a)]); // over write.ts's PARALLEL_CRC
  await writeFile(join(tree, 'big.bin'), big);
  await writeFile(join(tree, 'small.txt'), 'small');
  await writeFile(join(tree, 'sparse.bin'), '');
  await truncate(join(tree, 'sparse.bin'), 40 << 20); // a hole reads as zeros, on both threads
  const split = join(work, 'tar-split.json.gz');
  const c = collector();
  const desc = await writeLayer(changesOf(tree), { tarSplitPath: split, tarSink: c.sink });
  const tar = c.bytes();
  expect(desc.diffId).toBe(`sha256:${sha256hex(tar)}`);
  const crcs = new Map<string, string>();
  for await (const e of readTarSplit(split)) if (e.type === 'file' && e.crc) crcs.set(e.name.toString(), e.crc.toString('hex'));
  expect(crcs.get('big.bin')).toBe(new Crc64Js().update(big).digest().toString('hex'));
  expect(crcs.get('sparse.bin')).toBe(
    new Crc64Js()
      .update(Buffer.alloc(40 << 20))
      .digest()
      .toString('hex'),
  );
  expect(crcs.get('small.txt')).toBe(new Crc64Js().update(Buffer.from('small')).digest().toString('hex'));
  // Regeneration checks every crc64 against the files: a wrong one would fail here.
  expect(sha256hex(await streamBytes(regenerateLayer(split, tree)))).toBe(sha256hex(tar));
});
