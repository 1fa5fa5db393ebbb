import { execa } from 'execa';
import { lstat, mkdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InvalidInputError, TsbuildError } from '../../src/errors.js';
import { applyLayer, regenerateLayer, writeLayer } from '../../src/layer/index.js';
import { walk } from '../../src/runtime/helper.js';
import type { WalkRecord } from '../../src/runtime/types.js';
import {
  LONG_PATH,
  buildTar,
  changesOf,
  cleanup,
  collector,
  header,
  listTree,
  makeTree,
  sha256hex,
  streamBytes,
  tempDir,
} from './fixtures.js';

async function records(dir: string): Promise<Map<string, WalkRecord>> {
  const out = new Map<string, WalkRecord>();
  for await (const r of walk(dir)) out.set(r.path, r);
  return out;
}

/** What must survive a round trip through a layer tar (inode numbers and ctime excepted). */
function comparable(r: WalkRecord): unknown {
  const { ino: _ino, mtimeNs: _ns, xattrs, ...rest } = r;
  const kept = Object.fromEntries(
    Object.entries(xattrs ?? {})
      .filter(([k]) => !k.startsWith('trusted.overlay.'))
      .map(([k, v]) => [k, v.toString('hex')]),
  );
  return { ...rest, xattrs: kept };
}

describe('applyLayer', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(async () => cleanup(work));

  let n = 0;
  /** A fresh parent dir holding an empty target/ and a bait outside/ dir. */
  async function arena(): Promise<{ parent: string; target: string; split: string }> {
    const parent = join(work, `arena-${n++}`);
    await mkdir(join(parent, 'target'), { recursive: true });
    await mkdir(join(parent, 'outside'));
    return { parent, target: join(parent, 'target'), split: join(parent, 'tar-split.json.gz') };
  }

  test('round trip: a layer written by writeLayer unpacks to the same tree, diffID and tar', async () => {
    const tree = join(work, 'tree');
    await mkdir(tree);
    await makeTree(tree);
    const c = collector();
    const written = await writeLayer(changesOf(tree), { tarSplitPath: join(work, 'w.json.gz'), tarSink: c.sink });
    const tar = c.bytes();

    const a = await arena();
    const applied = await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    expect(applied).toEqual(written);

    const [before, after] = await Promise.all([records(tree), records(a.target)]);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [path, r] of before) expect([path, comparable(after.get(path)!)]).toEqual([path, comparable(r)]);
    expect(after.get('hard1')!.ino).toBe(after.get('hard2')!.ino);
    // Overlay bookkeeping never travels in a tar.
    expect(after.get('shared')!.xattrs?.['trusted.overlay.opaque']).toBeUndefined();

    expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(tar)).toBe(true);
  });

  describe('foreign tars (GNU tar), compressed or not, reproduce their exact bytes', () => {
    let src: string;
    beforeAll(async () => {
      src = join(work, 'foreign-src');
      await mkdir(join(src, 'd', 'sub'), { recursive: true });
      await writeFile(join(src, 'd', 'a.txt'), 'a\n');
      await writeFile(join(src, 'd', 'sub', 'b.txt'), 'b'.repeat(5000));
      await mkdir(join(src, LONG_PATH, '..'), { recursive: true });
      await writeFile(join(src, LONG_PATH), 'deep\n');
      await symlink('d/a.txt', join(src, 'ln'));
    });

    const cases: [string, string[], string | undefined][] = [
      ['gnu', ['--format=gnu'], undefined],
      ['pax', ['--format=pax'], undefined],
      ['ustar', ['--format=ustar', '--exclude=deep'], undefined],
      ['gnu+gzip', ['--format=gnu'], 'gzip'],
      ['pax+xz', ['--format=pax'], 'xz'],
      ['gnu+bzip2', ['--format=gnu'], 'bzip2'],
      ['pax+zstd', ['--format=pax'], 'zstd'],
    ];
    test.each(cases)('%s', async (_name, args, compressor) => {
      const { stdout } = await execa('tar', [...args, '-C', src, '-cf', '-', '.'], { encoding: 'buffer' });
      const tar = Buffer.from(stdout);
      const input = compressor ? Buffer.from((await execa(compressor, ['-c'], { input: tar, encoding: 'buffer' })).stdout) : tar;
      const a = await arena();
      const desc = await applyLayer(Readable.from([input]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
      expect(desc.diffId).toBe(`sha256:${sha256hex(tar)}`);
      expect(desc.tarSize).toBe(tar.length); // GNU tar's 10 KiB record padding included
      expect(await readFile(join(a.target, 'd/sub/b.txt'), 'utf8')).toBe('b'.repeat(5000));
      expect(await readlink(join(a.target, 'ln'))).toBe('d/a.txt');
      if (!args.includes('--exclude=deep')) expect(await readFile(join(a.target, LONG_PATH), 'utf8')).toBe('deep\n');
      expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(tar)).toBe(true);
    });
  });

  test("a zstd layer may open with a skippable frame, as moby's compression.Detect allows", async () => {
    const tar = buildTar([{ h: header('z'), content: Buffer.from('zstd') }]);
    const zst = Buffer.from((await execa('zstd', ['-c'], { input: tar, encoding: 'buffer' })).stdout);
    const skippable = Buffer.alloc(12);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(4, 4);
    const a = await arena();
    const desc = await applyLayer(Readable.from([skippable, zst]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    expect(desc.diffId).toBe(`sha256:${sha256hex(tar)}`);
    expect(await readFile(join(a.target, 'z'), 'utf8')).toBe('zstd');
  });

  const whiteoutTar = (): Buffer =>
    buildTar([
      { h: header('.wh.gone') },
      { h: header('dir/', { type: 'dir', mode: 0o755 }) },
      { h: header('dir/.wh..wh..opq') },
      { h: header('dir/new'), content: Buffer.from('new\n') },
      { h: header('keepdir/', { type: 'dir', mode: 0o755 }) },
      { h: header('keepdir/.wh.old') },
    ]);

  test('overlay mode: whiteouts become 0/0 char devices, opaque markers the opaque xattr', async () => {
    const a = await arena();
    const tar = whiteoutTar();
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    const r = await records(a.target);
    expect(r.get('gone')).toMatchObject({ type: 'c', devMajor: 0, devMinor: 0 });
    expect(r.get('keepdir/old')).toMatchObject({ type: 'c', devMajor: 0, devMinor: 0 });
    expect(r.get('dir')!.xattrs?.['trusted.overlay.opaque']?.toString()).toBe('y');
    expect([...r.keys()].filter((p) => p.includes('.wh.'))).toEqual([]);
    expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(tar)).toBe(true);
  });

  test('names that are not UTF-8: whiteouts, fifos and xattrs are made with their bytes, and the tar comes back', async () => {
    // The helper's apply-ops takes paths as bytes; such a layer was refused ("its name is not UTF-8").
    const a = await arena();
    const bad = (s: string, byte: number) => Buffer.concat([Buffer.from(s), Buffer.of(byte)]);
    const tar = buildTar([
      {
        h: {
          ...header('d/', { type: 'dir' }),
          name: bad('d', 0xff),
          // An xattr name is bytes too (the walk refused such a name before).
          xattrs: new Map([
            ['user.k', Buffer.from('v')],
            ['user.k\udcfe', Buffer.from('w')],
          ]),
        },
      },
      { h: { ...header('w'), name: Buffer.concat([bad('d', 0xff), Buffer.from('/.wh.'), bad('gone', 0xfe)]) } },
      { h: { ...header('f', { type: 'fifo' }), name: Buffer.concat([bad('d', 0xff), Buffer.from('/'), bad('fifo', 0xfd)]) } },
    ]);
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    const r = await records(a.target);
    expect(r.get('d\udcff')!.xattrs?.['user.k']?.toString()).toBe('v');
    expect(r.get('d\udcff')!.xattrs?.['user.k\udcfe']?.toString()).toBe('w');
    // Go's tar writer keeps the name's bytes in the PAX record; so do we.
    expect(tar.includes(Buffer.concat([Buffer.from('SCHILY.xattr.user.k'), Buffer.of(0xfe), Buffer.from('=w\n')]))).toBe(true);
    expect(r.get('d\udcff/gone\udcfe')).toMatchObject({ type: 'c', devMajor: 0, devMinor: 0 });
    expect(r.get('d\udcff/fifo\udcfd')).toMatchObject({ type: 'p' });
    expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(tar)).toBe(true);
  });

  test('delete mode: whiteouts delete, opaque markers empty the directory of lower content', async () => {
    const a = await arena();
    // The parent layer's files.
    await writeFile(join(a.target, 'gone'), 'x');
    await mkdir(join(a.target, 'dir/sub'), { recursive: true });
    await writeFile(join(a.target, 'dir/old'), 'x');
    await writeFile(join(a.target, 'dir/sub/deeper'), 'x');
    await mkdir(join(a.target, 'keepdir'));
    await writeFile(join(a.target, 'keepdir/old'), 'x');
    await writeFile(join(a.target, 'keepdir/kept'), 'x');
    await writeFile(join(a.target, 'untouched'), 'x');
    const tar = whiteoutTar();
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'delete', tarSplitPath: a.split });
    expect(await listTree(a.target)).toEqual(['dir/', 'dir/new', 'keepdir/', 'keepdir/kept', 'untouched']);
    expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(tar)).toBe(true);
  });

  test('delete mode: a lower layer symlink on the way is replaced by a directory, as overlay would show it', async () => {
    const a = await arena();
    await mkdir(join(a.target, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', join(a.target, 'lib'));
    const tar = buildTar([{ h: header('lib/x'), content: Buffer.from('x') }]);
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'delete', tarSplitPath: a.split });
    expect((await lstat(join(a.target, 'lib'))).isDirectory()).toBe(true);
    expect(await listTree(join(a.target, 'usr'))).toEqual(['lib/']);
  });

  test('ownership, modes and times are applied; directory times after their contents', async () => {
    const a = await arena();
    const tar = buildTar([
      { h: header('d/', { type: 'dir', mode: 0o2750, uid: 7, gid: 8, mtime: 1_000_000_000 }) },
      { h: header('d/s', { mode: 0o4711, uid: 7, gid: 8, mtime: 1_100_000_000 }), content: Buffer.from('s') },
      { h: header('d/f', { type: 'fifo', mode: 0o600, uid: 9, gid: 9, mtime: 1_200_000_000 }) },
      { h: header('t/', { type: 'dir', mode: 0o1777 }) },
    ]);
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    const r = await records(a.target);
    expect(r.get('d')).toMatchObject({ type: 'd', mode: 0o2750, uid: 7, gid: 8, mtime: 1_000_000_000 });
    expect(r.get('d/s')).toMatchObject({ type: 'f', mode: 0o4711, uid: 7, gid: 8, mtime: 1_100_000_000 });
    expect(r.get('d/f')).toMatchObject({ type: 'p', mode: 0o600, uid: 9, gid: 9, mtime: 1_200_000_000 });
    expect(r.get('t')).toMatchObject({ mode: 0o1777 });
  });

  test('AUFS metadata at the root is skipped, as moby skips it', async () => {
    const a = await arena();
    const tar = buildTar([
      { h: header('.wh..wh.plnk/', { type: 'dir' }) },
      { h: header('.wh..wh.plnk/123.456'), content: Buffer.from('aufs') },
      { h: header('kept'), content: Buffer.from('k') },
    ]);
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    expect(await listTree(a.target)).toEqual(['kept']);
  });

  test('hardlinks to fifos and devices; nanosecond PAX mtimes', async () => {
    const a = await arena();
    const tar = buildTar([
      { h: header('p', { type: 'fifo' }) },
      { h: header('q', { type: 'hardlink', linkname: Buffer.from('p') }) },
      { h: header('zero', { type: 'char', mode: 0o666, devMajor: 1, devMinor: 5 }) },
    ]);
    // A PAX mtime with a fraction, as GNU tar --format=pax writes it.
    const src = join(work, 'ns-src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'f');
    await execa('touch', ['-d', '2021-01-01 00:00:00.123456789', join(src, 'f')]);
    const pax = Buffer.from((await execa('tar', ['--format=pax', '-C', src, '-cf', '-', 'f'], { encoding: 'buffer' })).stdout);
    await applyLayer(Readable.from([tar.subarray(0, tar.length - 1024), pax]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    const r = await records(a.target);
    expect([...r.keys()].sort()).toEqual(['f', 'p', 'q', 'zero']);
    expect(r.get('q')!.ino).toBe(r.get('p')!.ino);
    expect(r.get('zero')).toMatchObject({ type: 'c', devMajor: 1, devMinor: 5, mode: 0o666 });
    expect(r.get('f')).toMatchObject({ mtime: 1_609_459_200 });
    expect(Math.abs(r.get('f')!.mtimeNs - 123_456_789)).toBeLessThan(1000);
    expect((await streamBytes(regenerateLayer(a.split, a.target))).equals(Buffer.concat([tar.subarray(0, tar.length - 1024), pax]))).toBe(
      true,
    );
  });

  test('times as go-archive sets them: atime is the later of PAX atime and mtime; a hardlink to a symlink leaves its times alone', async () => {
    const src = join(work, 'atime-src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'f');
    await utimes(join(src, 'f'), 1_640_995_200, 1_577_836_800);
    const pax = Buffer.from((await execa('tar', ['--format=posix', '-C', src, '-cf', '-', 'f'], { encoding: 'buffer' })).stdout);
    const links = buildTar([
      { h: header('s', { type: 'symlink', linkname: Buffer.from('f'), mtime: 1_600_000_000 }) },
      { h: header('h', { type: 'hardlink', linkname: Buffer.from('s'), mtime: 1_650_000_000 }) },
    ]);
    const a = await arena();
    await applyLayer(Readable.from([pax.subarray(0, 2048), links]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    const f = await stat(join(a.target, 'f'));
    expect([f.atimeMs, f.mtimeMs]).toEqual([1_640_995_200_000, 1_577_836_800_000]);
    expect((await lstat(join(a.target, 'h'))).mtimeMs).toBe(1_600_000_000_000);
  });

  test('delete mode: directories merge with the lower ones, other types replace them', async () => {
    const a = await arena();
    await mkdir(join(a.target, 'merged'));
    await writeFile(join(a.target, 'merged/lower'), 'x');
    await mkdir(join(a.target, 'replaced'));
    await writeFile(join(a.target, 'replaced/lower'), 'x');
    const tar = buildTar([
      { h: header('merged/', { type: 'dir', mode: 0o711 }) },
      { h: header('merged/upper'), content: Buffer.from('u') },
      { h: header('replaced', { type: 'symlink', linkname: Buffer.from('merged') }) },
    ]);
    await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'delete', tarSplitPath: a.split });
    expect(await listTree(a.target)).toEqual(['merged/', 'merged/lower', 'merged/upper', 'replaced']);
    expect((await lstat(join(a.target, 'merged'))).mode & 0o777).toBe(0o711);
    expect(await readlink(join(a.target, 'replaced'))).toBe('merged');
  });

  test('an empty input is an empty layer, as in Docker', async () => {
    const a = await arena();
    const desc = await applyLayer(Readable.from([Buffer.alloc(0)]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    expect(desc).toEqual({ diffId: `sha256:${sha256hex(Buffer.alloc(0))}`, size: 0, tarSize: 0 });
    expect((await streamBytes(regenerateLayer(a.split, a.target))).length).toBe(0);
  });

  describe('hostile and broken archives are refused without writing outside the target', () => {
    async function refused(
      tar: Buffer,
      message: RegExp,
      prepare?: (target: string) => Promise<void>,
      errorClass: new (...args: never[]) => Error = InvalidInputError,
    ): Promise<void> {
      const a = await arena();
      await prepare?.(a.target);
      const before = (await listTree(a.parent)).filter((p) => !p.startsWith('target/'));
      const err = await applyLayer(Readable.from([tar]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(errorClass);
      expect((err as Error).message).toMatch(message);
      // Nothing new next to the target: no escaped file, no tar-split (not even a temporary one).
      expect((await listTree(a.parent)).filter((p) => !p.startsWith('target/'))).toEqual(before);
      expect(await listTree(join(a.parent, 'outside'))).toEqual([]);
    }

    test('../ climbing out', () =>
      refused(buildTar([{ h: header('../outside/x'), content: Buffer.from('pwned') }]), /"\.\.\/outside\/x" name climbs out of the layer/));

    test('.. hidden in the middle', () =>
      refused(buildTar([{ h: header('a/../../outside/x'), content: Buffer.from('pwned') }]), /climbs out of the layer/));

    test('absolute names', () =>
      refused(buildTar([{ h: header('/abs'), content: Buffer.from('pwned') }]), /"\/abs" name is an absolute path/));

    test('a symlink planted, then written through', () =>
      refused(
        buildTar([
          { h: header('a', { type: 'symlink', linkname: Buffer.from('../outside') }) },
          { h: header('a/passwd'), content: Buffer.from('pwned') },
        ]),
        /"a\/passwd" would be written through "a", which this layer made a symlink/,
      ));

    test('a symlink to / planted, then a directory below it', () =>
      refused(
        buildTar([{ h: header('etc', { type: 'symlink', linkname: Buffer.from('/etc') }) }, { h: header('etc/cron.d/', { type: 'dir' }) }]),
        /written through "etc"/,
      ));

    test('a hardlink to a path outside', () =>
      refused(
        buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('../outside/secret') }) }]),
        /hardlink target climbs out/,
      ));

    test('a hardlink to an absolute path', () =>
      refused(
        buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('/etc/shadow') }) }]),
        /hardlink target is an absolute path/,
      ));

    test('a hardlink to something the layer did not write', () =>
      refused(
        buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('lower') }) }]),
        /hardlink to "lower", which is not an earlier entry/,
        (t) => writeFile(join(t, 'lower'), 'x'),
      ));

    test('a hardlink through a planted symlink', () =>
      refused(
        buildTar([
          { h: header('s', { type: 'symlink', linkname: Buffer.from('../outside') }) },
          { h: header('h', { type: 'hardlink', linkname: Buffer.from('s/x') }) },
        ]),
        /not an earlier entry/,
      ));

    test('duplicate paths (tar-split cannot represent them, Docker refuses them too)', () =>
      refused(
        buildTar([
          { h: header('f'), content: Buffer.from('1') },
          { h: header('./f'), content: Buffer.from('2') },
        ]),
        /more than one entry for "\.\/f"/,
      ));

    test('a whiteout with content', () =>
      refused(buildTar([{ h: header('.wh.x'), content: Buffer.from('?') }]), /is a whiteout with content/));

    test('a whiteout of ".."', () => refused(buildTar([{ h: header('d/.wh...') }]), /is not a valid whiteout/));

    test('an entry below a fifo of the same layer', () =>
      refused(
        buildTar([{ h: header('p', { type: 'fifo' }) }, { h: header('p/x'), content: Buffer.from('x') }]),
        /below "p", which this layer made a device/,
      ));

    test('a file, then a write through it as if it were a directory', () =>
      refused(
        buildTar([
          { h: header('f'), content: Buffer.from('x') },
          { h: header('f/x'), content: Buffer.from('x') },
        ]),
        /"f\/x" would be written through "f", which this layer made a non-directory/,
      ));

    test('a sparse file (unsupported)', () => {
      const tar = buildTar([{ h: header('s'), content: Buffer.from('x') }]);
      tar[156] = 0x53; // 'S'
      // fix the checksum for the changed type flag
      tar.fill(0x20, 148, 156);
      const sum = tar.subarray(0, 512).reduce((acc, c) => acc + c, 0);
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      return refused(tar, /sparse file "s" is not supported/);
    });

    test('truncated in the middle of a file', async () => {
      const tar = buildTar([{ h: header('f'), content: Buffer.alloc(4000, 1) }]);
      await refused(tar.subarray(0, 2000), /truncated: unexpected end of data in the content of "f"/);
    });

    test('truncated in the middle of a header', async () => {
      const tar = buildTar([
        { h: header('f'), content: Buffer.alloc(10, 1) },
        { h: header('g'), content: Buffer.alloc(10, 1) },
      ]);
      await refused(tar.subarray(0, 1024 + 100), /truncated/);
    });

    test('random bytes', () =>
      refused(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)), /invalid layer tar: not a tar header/));

    test('a few bytes of text', () => refused(Buffer.from('hello\n'), /not a layer tar/));

    test('corrupt gzip', async () => {
      const { stdout } = await execa('gzip', ['-c'], {
        input: buildTar([{ h: header('f'), content: Buffer.alloc(100000, 3) }]),
        encoding: 'buffer',
      });
      const gz = Buffer.from(stdout);
      gz.fill(0x55, 40, 80);
      await refused(gz, /cannot decompress the layer \(gzip\)|invalid layer tar|truncated/);
    });

    test('corrupt xz reports the tool', async () => {
      const { stdout } = await execa('xz', ['-c'], {
        input: buildTar([{ h: header('f'), content: Buffer.alloc(100000, 3) }]),
        encoding: 'buffer',
      });
      const xz = Buffer.from(stdout);
      xz.fill(0x55, 40, 80);
      await refused(xz, /cannot decompress the layer \(xz\)/);
    });

    test('a missing decompressor names its package', async () => {
      const { stdout } = await execa('zstd', ['-c'], { input: buildTar([{ h: header('f') }]), encoding: 'buffer' });
      const path = process.env.PATH;
      process.env.PATH = join(work, 'no-such-bin');
      try {
        await refused(Buffer.from(stdout), /zstd is not installed \(apt-get install zstd\)/, undefined, TsbuildError);
      } finally {
        process.env.PATH = path;
      }
    });
  });

  test('a refused archive stops reading its input', async () => {
    const a = await arena();
    let pulled = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        yield buildTar([{ h: header('../x') }], false);
        for (;;) {
          pulled++;
          yield Buffer.alloc(65536);
        }
      } finally {
        closed = true;
      }
    }
    const input = Readable.from(endless());
    await expect(applyLayer(input, a.target, { whiteouts: 'overlay', tarSplitPath: a.split })).rejects.toThrow(/climbs out/);
    expect(closed).toBe(true);
    expect(input.destroyed).toBe(true);
    expect(pulled).toBeLessThan(100);
  });

  test.each([
    ['plain', undefined],
    ['xz', 'xz'],
    ['gzip', 'gzip'],
  ] as const)('a %s input that fails midway reports its own error', async (_n, compressor) => {
    const a = await arena();
    const tar = buildTar([{ h: header('f'), content: Buffer.alloc(300000, 7) }]);
    const data = compressor ? Buffer.from((await execa(compressor, ['-c'], { input: tar, encoding: 'buffer' })).stdout) : tar;
    async function* cut(): AsyncGenerator<Buffer> {
      yield data.subarray(0, Math.floor(data.length / 2));
      throw new Error('connection reset by peer');
    }
    const err = await applyLayer(Readable.from(cut()), a.target, { whiteouts: 'overlay', tarSplitPath: a.split }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('connection reset by peer');
  });

  test('the tar-split is only left behind on success', async () => {
    const a = await arena();
    await applyLayer(Readable.from([buildTar([{ h: header('ok') }])]), a.target, { whiteouts: 'overlay', tarSplitPath: a.split });
    expect((await stat(a.split)).isFile()).toBe(true);
    await rm(a.split);
  });
});
