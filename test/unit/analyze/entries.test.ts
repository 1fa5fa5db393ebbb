// Reading a layer's entries back from its tar-split, for tars GNU tar wrote in its own formats:
// long names (PAX records, GNU 'L' entries), owners, modes, links, whiteouts and opaque markers
// all come from the recorded header bytes, and must say what the test put in the tar.
import { createReadStream } from 'node:fs';
import { link, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { readLayerEntries, type LayerEntry } from '../../../src/analyze/entries.js';
import { ByteReader, readTar } from '../../../src/layer/index.js';
import { disassemble, readTarSplit, TarSplitWriter } from '../../../src/layer/tarsplit.js';
import { tempDir } from '../../helpers/tsbuild.js';

const LONG_DIR = `d/${'x'.repeat(120)}`;

async function tarSplitOf(tarFile: string, out: string): Promise<void> {
  const w = new TarSplitWriter(out);
  for await (const e of disassemble(readTar(new ByteReader(createReadStream(tarFile))), w)) for await (const _ of e.body);
  await w.commit();
}

async function entriesOf(path: string): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for await (const e of readLayerEntries(readTarSplit(path))) out.push(e);
  return out;
}

describe('layer entries from a tar-split', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('tsbuild-entries-');
    const root = join(work, 'root');
    await mkdir(join(root, LONG_DIR), { recursive: true });
    await mkdir(join(root, 'o'));
    await writeFile(join(root, 'd/a.txt'), Buffer.alloc(1000, 1), { mode: 0o640 });
    await writeFile(join(root, 'd/empty'), '');
    await writeFile(join(root, LONG_DIR, 'file'), Buffer.alloc(3000, 2));
    await symlink('a.txt', join(root, 'd/link'));
    await link(join(root, 'd/a.txt'), join(root, 'd/hard'));
    await writeFile(join(root, 'd/.wh.gone'), '');
    await writeFile(join(root, 'o/.wh..wh..opq'), '');
  });
  afterAll(async () => rm(work, { recursive: true, force: true }));

  for (const format of ['pax', 'gnu']) {
    test(`GNU tar --format=${format}`, async () => {
      const tar = join(work, `${format}.tar`);
      await execa('tar', [
        `--format=${format}`,
        '--owner=1234',
        '--group=99',
        '--numeric-owner',
        '--sort=name',
        '-C',
        join(work, 'root'),
        '-cf',
        tar,
        'd',
        'o',
      ]);
      await tarSplitOf(tar, join(work, `${format}.tar-split.json.gz`));
      const entries = await entriesOf(join(work, `${format}.tar-split.json.gz`));
      const by = new Map(entries.map((e) => [`${e.kind} ${e.path}`, e]));

      expect(by.get('file d/a.txt')).toMatchObject({ bytes: 1000, uid: 1234, gid: 99, mode: 0o640 });
      expect(by.get('file d/empty')).toMatchObject({ bytes: 0, fingerprint: undefined });
      expect(by.get(`file ${LONG_DIR}/file`)).toMatchObject({ bytes: 3000 });
      expect(by.get(`dir ${LONG_DIR}`)).toBeDefined();
      // Docker counts a symlink's target in the layer size.
      expect(by.get('symlink d/link')).toMatchObject({ bytes: 'a.txt'.length });
      // GNU tar stores the second name of an inode as a hardlink to the first it archived.
      const [first, second] = ['d/a.txt', 'd/hard'];
      expect(by.get(`hardlink ${second}`)).toMatchObject({ bytes: 0, linkTarget: first });
      expect(by.get('whiteout d/gone')).toEqual({ kind: 'whiteout', path: 'd/gone' });
      expect(by.get('opaque o')).toEqual({ kind: 'opaque', path: 'o' });
      // Same content, same fingerprint; the fingerprint is not just the size.
      const a = by.get('file d/a.txt') as { fingerprint: string };
      expect(a.fingerprint).toMatch(/^1000:[0-9a-f]{16}$/);
      expect(entries).toHaveLength(10);
    });
  }
});
