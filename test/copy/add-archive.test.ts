// ADD of local archives: what lands in the image for the parts of Docker's Untar rules that
// copy.test.ts does not show (whiteout-looking names, duplicates, links into what the
// destination already held, symlinks followed inside the destination, device nodes, times,
// xattrs). Archives are made with GNU tar where it can make them, by hand where it cannot.
import { execa } from 'execa';
import { lstat, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyIntoRootfs } from '../../src/builder/copy.js';
import { openContext } from '../../src/context/index.js';
import { walk } from '../../src/runtime/helper.js';
import type { WalkRecord } from '../../src/runtime/types.js';
import { encodeHeader } from '../../src/layer/tarheader.js';
import { buildTar, header, listTree } from '../layer/fixtures.js';
import { removeTempDirs, tempDir, writeTree, type Tree } from './tmp.js';

afterEach(removeTempDirs);

/** ADD <archive> <dest> into a fresh rootfs holding `rootfs`; returns the rootfs. */
async function add(archive: Buffer, dest: string, rootfs: Tree = {}, chown?: { uid: number; gid: number }): Promise<string> {
  const ctx = await tempDir('tsbuild-ctx-');
  await writeFile(join(ctx, 'a.tar'), archive);
  const root = await tempDir('tsbuild-rootfs-');
  await writeTree(root, rootfs);
  await copyIntoRootfs({
    context: await openContext(ctx),
    sources: ['a.tar'],
    dest,
    workdir: '/',
    rootfs: root,
    isAdd: true,
    ...(chown ? { chown } : {}),
  });
  return root;
}

/** GNU tar of `names` under `dir`, with extra flags. */
async function gnuTar(dir: string, names: string[], flags: string[] = []): Promise<Buffer> {
  return Buffer.from((await execa('tar', [...flags, '-C', dir, '-cf', '-', ...names], { encoding: 'buffer' })).stdout);
}

async function records(dir: string): Promise<Map<string, WalkRecord>> {
  const out = new Map<string, WalkRecord>();
  for await (const r of walk(dir)) out.set(r.path, r);
  return out;
}

describe('ADD of a local archive: Docker’s Untar rules', () => {
  it('writes whiteout-looking names as the plain files they are: only layers have whiteouts', async () => {
    const root = await add(
      buildTar([
        { h: header('.wh.gone'), content: Buffer.from('w') },
        { h: header('d/.wh..wh..opq') },
        { h: header('.wh..wh.plnk/1.2'), content: Buffer.from('aufs') },
      ]),
      '/x/',
      { 'x/gone': 'kept', 'x/d/lower': 'kept' },
    );
    expect(await listTree(join(root, 'x'))).toEqual([
      '.wh..wh.plnk/',
      '.wh..wh.plnk/1.2',
      '.wh.gone',
      'd/',
      'd/.wh..wh..opq',
      'd/lower',
      'gone',
    ]);
    expect(await readFile(join(root, 'x/.wh.gone'), 'utf8')).toBe('w');
  });

  it('lets a later entry for the same path replace an earlier one', async () => {
    const root = await add(
      buildTar([
        { h: header('f'), content: Buffer.from('first') },
        { h: header('f'), content: Buffer.from('second') },
        { h: header('d/', { type: 'dir' }) },
        { h: header('d/in'), content: Buffer.from('in') },
        { h: header('d'), content: Buffer.from('now a file') },
      ]),
      '/x/',
    );
    expect(await readFile(join(root, 'x/f'), 'utf8')).toBe('second');
    expect(await readFile(join(root, 'x/d'), 'utf8')).toBe('now a file');
  });

  it('links to a file the destination already held, not only to earlier entries', async () => {
    const root = await add(buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('old') }) }]), '/x/', {
      'x/old': 'before',
    });
    expect((await stat(join(root, 'x/h'))).ino).toBe((await stat(join(root, 'x/old'))).ino);
  });

  it('follows symlinks on the way inside the destination, the archive’s own and the image’s', async () => {
    const root = await add(
      buildTar([
        { h: header('abs', { type: 'symlink', linkname: Buffer.from('/real') }) },
        { h: header('abs/sub/f'), content: Buffer.from('through abs') },
        { h: header('lib/g'), content: Buffer.from('through lib') },
      ]),
      '/x/',
      { 'x/real/': null, 'x/usr/lib/': null, 'x/lib': { link: 'usr/lib' } },
    );
    // `/real` is read inside the destination, as if it were `/`; what is missing below it is made.
    expect(await readFile(join(root, 'x/real/sub/f'), 'utf8')).toBe('through abs');
    expect(await readFile(join(root, 'x/usr/lib/g'), 'utf8')).toBe('through lib');
    expect(await readlink(join(root, 'x/lib'))).toBe('usr/lib');
    expect((await lstat(join(root, 'x/real/sub'))).mode & 0o777).toBe(0o755);
  });

  it('makes device nodes and fifos, owned by --chown when given', async () => {
    const tar = buildTar([
      { h: header('null', { type: 'char', devMajor: 1, devMinor: 3, mode: 0o666, uid: 5, gid: 6 }) },
      { h: header('p', { type: 'fifo', mode: 0o4640, mtime: 1_500_000_000 }) },
    ]);
    const r = await records(await add(tar, '/x/'));
    expect(r.get('x/null')).toMatchObject({ type: 'c', devMajor: 1, devMinor: 3, mode: 0o666, uid: 5, gid: 6 });
    expect(r.get('x/p')).toMatchObject({ type: 'p', mode: 0o4640, mtime: 1_500_000_000 });
    const owned = await records(await add(tar, '/x/', {}, { uid: 70, gid: 80 }));
    expect(owned.get('x/null')).toMatchObject({ uid: 70, gid: 80 });
  });

  it('sets the archive’s access time when it is later than the modification time (PAX records)', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'f'), 'f');
    await utimes(join(src, 'f'), 1_640_995_200, 1_577_836_800);
    const root = await add(await gnuTar(src, ['f'], ['--format=posix']), '/x/');
    const st = await stat(join(root, 'x/f'));
    expect(st.mtimeMs).toBe(1_577_836_800_000);
    expect(st.atimeMs).toBe(1_640_995_200_000);
  });

  it('does not restore extended attributes', async () => {
    const tar = buildTar([{ h: header('f', { xattrs: new Map([['user.k', Buffer.from('v')]]) }), content: Buffer.from('f') }]);
    const r = await records(await add(tar, '/x/'));
    expect(r.get('x/f')!.xattrs ?? {}).toEqual({});
  });

  it('unpacks a zstd archive that opens with a skippable frame', async () => {
    const src = await tempDir();
    await writeTree(src, { 'in/z': 'zstd' });
    const zst = Buffer.from((await execa('zstd', ['-c'], { input: await gnuTar(src, ['in']), encoding: 'buffer' })).stdout);
    const skippable = Buffer.alloc(12);
    skippable.writeUInt32LE(0x184d2a5e, 0);
    skippable.writeUInt32LE(4, 4);
    const root = await add(Buffer.concat([skippable, zst]), '/x/');
    expect(await readFile(join(root, 'x/in/z'), 'utf8')).toBe('zstd');
  });

  it('follows a symlink that climbs out no higher than the destination, as Docker’s chroot does', async () => {
    const tar = buildTar([
      { h: header('up', { type: 'symlink', linkname: Buffer.from('../../..') }) },
      { h: header('up/x'), content: Buffer.from('x') },
    ]);
    const root = await add(tar, '/x/');
    expect(await listTree(root)).toEqual(['x/', 'x/up', 'x/x']);
  });

  it('refuses hardlinks to the destination itself; one through a symlink that climbs out stays inside', async () => {
    await expect(add(buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('./') }) }]), '/x/')).rejects.toThrow(
      /\/a\.tar: entry "h" is a hardlink to the destination itself/,
    );
    const tar = buildTar([
      { h: header('up', { type: 'symlink', linkname: Buffer.from('../../..') }) },
      { h: header('h', { type: 'hardlink', linkname: Buffer.from('up/etc/passwd') }) },
    ]);
    await expect(add(tar, '/x/')).rejects.toThrow(/entry "h" is a hardlink to "up\/etc\/passwd", which is not in the destination/);
    const root = await add(tar, '/x/', { 'x/etc/passwd': 'inside' });
    expect((await stat(join(root, 'x/h'))).ino).toBe((await stat(join(root, 'x/etc/passwd'))).ino);
  });
});

// Where ADD's archive reader (node-tar, before the extractors became one) read archives
// differently from Go's archive/tar, which Docker reads them with.
describe('ADD of a local archive: read as Docker reads it', () => {
  it('keeps the device numbers of a GNU-format archive', async () => {
    const src = await tempDir();
    await execa('mknod', [join(src, 'null'), 'c', '1', '3']);
    await execa('mknod', [join(src, 'loop9'), 'b', '7', '9']);
    const r = await records(await add(await gnuTar(src, ['null', 'loop9'], ['--format=gnu']), '/x/'));
    expect(r.get('x/null')).toMatchObject({ type: 'c', devMajor: 1, devMinor: 3 });
    expect(r.get('x/loop9')).toMatchObject({ type: 'b', devMajor: 7, devMinor: 9 });
  });

  it('does not apply a global PAX header to the entries after it', async () => {
    // A 'g' header whose one record would set every later entry's mtime, were it applied.
    const body = Buffer.from('20 mtime=1000000000\n');
    const global = encodeHeader(header('pax_global_header', { size: body.length }));
    global[156] = 0x67; // 'g'
    global.fill(0x20, 148, 156);
    global.write(
      `${global
        .reduce((sum, c) => sum + c, 0)
        .toString(8)
        .padStart(6, '0')}\0 `,
      148,
      'latin1',
    );
    const tar = Buffer.concat([
      global,
      body,
      Buffer.alloc(512 - body.length),
      buildTar([{ h: header('f', { mtime: 1_700_000_000 }), content: Buffer.from('f') }]),
    ]);
    const root = await add(tar, '/x/');
    expect((await stat(join(root, 'x/f'))).mtimeMs).toBe(1_700_000_000_000);
  });

  it('keeps PAX modification times to the nanosecond', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'f'), 'f');
    await execa('touch', ['-m', '-d', '2021-01-01 00:00:00.123456789', join(src, 'f')]);
    const root = await add(await gnuTar(src, ['f'], ['--format=posix']), '/x/');
    const st = await stat(join(root, 'x/f'), { bigint: true });
    expect(st.mtimeNs / 1_000_000_000n).toBe(1_609_459_200n);
    expect(Math.abs(Number(st.mtimeNs % 1_000_000_000n) - 123_456_789)).toBeLessThan(1000);
  });
});
