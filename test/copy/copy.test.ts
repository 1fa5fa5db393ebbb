import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chown, link, lstat, mkdir, readFile, readdir, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { copyIntoRootfs, type CopyIntoRootfsOptions } from '../../src/builder/copy.js';
import { resolveChown } from '../../src/container/users.js';
import { openContext, type BuildContext } from '../../src/context/index.js';
import { InvalidInputError } from '../../src/errors.js';
import { removeTempDirs, setMtime, tempDir, writeTree, type Tree } from './tmp.js';

afterEach(removeTempDirs);

interface Setup {
  ctxDir: string;
  ctx: BuildContext;
  rootfs: string;
  copy(sources: string[], dest: string, more?: Partial<CopyIntoRootfsOptions>): Promise<void>;
}

async function setup(context: Tree, rootfs: Tree = {}): Promise<Setup> {
  const ctxDir = await tempDir('tsbuild-ctx-');
  await writeTree(ctxDir, context);
  const root = await tempDir('tsbuild-rootfs-');
  await writeTree(root, rootfs);
  const ctx = await openContext(ctxDir);
  return {
    ctxDir,
    ctx,
    rootfs: root,
    copy: (sources, dest, more = {}) => copyIntoRootfs({ context: ctx, sources, dest, workdir: '/', rootfs: root, isAdd: false, ...more }),
  };
}

const mode = async (p: string) => (await lstat(p)).mode & 0o7777;
const owner = async (p: string) => {
  const s = await lstat(p);
  return `${s.uid}:${s.gid}`;
};
const text = (p: string) => readFile(p, 'utf8');

/** Everything under a directory, as sorted relative paths (directories with a trailing /). */
async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, name));
    out.push(prefix + name + (st.isDirectory() ? '/' : ''));
    if (st.isDirectory()) out.push(...(await listTree(join(dir, name), `${prefix}${name}/`)));
  }
  return out;
}

describe('COPY: files and directories', () => {
  it('copies a file to a file name, keeping mode and mtime, owned by root', async () => {
    const s = await setup({ 'run.sh': { file: '#!/bin/sh\n', mode: 0o750 } });
    await setMtime(join(s.ctxDir, 'run.sh'), 1_000_000_000);
    await chown(join(s.ctxDir, 'run.sh'), 1234, 5678); // the context's owner is never kept
    await s.copy(['run.sh'], '/usr/bin/start');
    const p = join(s.rootfs, 'usr/bin/start');
    expect(await text(p)).toBe('#!/bin/sh\n');
    expect(await mode(p)).toBe(0o750);
    expect((await stat(p)).mtimeMs).toBe(1_000_000_000_000);
    expect(await owner(p)).toBe('0:0');
    // Parents created on the way: 0755, root.
    expect(await mode(join(s.rootfs, 'usr'))).toBe(0o755);
    expect(await owner(join(s.rootfs, 'usr/bin'))).toBe('0:0');
  });

  it('puts a file inside a destination ending in /, or one that is an existing directory', async () => {
    const s = await setup({ 'a.txt': 'A' }, { 'etc/': null });
    await s.copy(['a.txt'], '/app/');
    await s.copy(['a.txt'], '/etc');
    await s.copy(['a.txt'], '/data/.');
    expect(await text(join(s.rootfs, 'app/a.txt'))).toBe('A');
    expect(await text(join(s.rootfs, 'etc/a.txt'))).toBe('A');
    expect(await text(join(s.rootfs, 'data/a.txt'))).toBe('A');
  });

  it('copies a directory’s contents, not the directory, keeping modes and mtimes', async () => {
    const s = await setup({ 'src/main.c': 'int main;', 'src/lib/util.c': 'u', 'src/empty/': null });
    await setMtime(join(s.ctxDir, 'src/lib/util.c'), 1_500_000_000);
    await setMtime(join(s.ctxDir, 'src/lib'), 1_400_000_000);
    await setMtime(join(s.ctxDir, 'src'), 1_300_000_000);
    await execa('chmod', ['0701', join(s.ctxDir, 'src/lib')]);
    await s.copy(['src'], '/build');
    expect(await listTree(join(s.rootfs, 'build'))).toEqual(['empty/', 'lib/', 'lib/util.c', 'main.c']);
    expect(await mode(join(s.rootfs, 'build/lib'))).toBe(0o701);
    expect((await stat(join(s.rootfs, 'build/lib'))).mtimeMs).toBe(1_400_000_000_000);
    expect((await stat(join(s.rootfs, 'build/lib/util.c'))).mtimeMs).toBe(1_500_000_000_000);
    // The destination directory itself is created 0755 root, with the source directory's times.
    expect(await mode(join(s.rootfs, 'build'))).toBe(0o755);
    expect((await stat(join(s.rootfs, 'build'))).mtimeMs).toBe(1_300_000_000_000);
  });

  it('merges into an existing directory without touching its owner or mode', async () => {
    const s = await setup({ 'conf/a': 'a', 'conf/sub/b': 'b' }, { 'etc/app/old': 'old', 'etc/app/sub/': null });
    await chown(join(s.rootfs, 'etc/app'), 500, 600);
    await execa('chmod', ['0700', join(s.rootfs, 'etc/app')]);
    await chown(join(s.rootfs, 'etc/app/sub'), 501, 601);
    await s.copy(['conf/'], '/etc/app');
    expect(await listTree(join(s.rootfs, 'etc/app'))).toEqual(['a', 'old', 'sub/', 'sub/b']);
    expect(await owner(join(s.rootfs, 'etc/app'))).toBe('500:600');
    expect(await mode(join(s.rootfs, 'etc/app'))).toBe(0o700);
    // A directory inside the copy takes the source's metadata, existing or not (fsutil).
    expect(await owner(join(s.rootfs, 'etc/app/sub'))).toBe('0:0');
  });

  it('copies the whole context with `.`', async () => {
    const s = await setup({ Dockerfile: 'FROM x', 'a/b': 'b' });
    await s.copy(['.'], '/');
    expect(await text(join(s.rootfs, 'a/b'))).toBe('b');
    expect(await text(join(s.rootfs, 'Dockerfile'))).toBe('FROM x');
  });

  it('resolves a relative destination against WORKDIR', async () => {
    const s = await setup({ f: 'F' });
    await s.copy(['f'], 'sub/', { workdir: '/srv/app' });
    await s.copy(['f'], '.', { workdir: '/srv/app' });
    await s.copy(['f'], '', { workdir: '/work' });
    await s.copy(['f'], 'g', { workdir: '/srv/app' });
    expect(await text(join(s.rootfs, 'srv/app/sub/f'))).toBe('F');
    expect(await text(join(s.rootfs, 'srv/app/f'))).toBe('F');
    expect(await text(join(s.rootfs, 'work/f'))).toBe('F');
    expect(await text(join(s.rootfs, 'srv/app/g'))).toBe('F');
  });
});

describe('COPY: several sources and wildcards', () => {
  it('copies wildcard matches into a directory', async () => {
    const s = await setup({ 'a.txt': 'a', 'b.txt': 'b', 'c.md': 'c', 'docs/d.txt': 'd' });
    await s.copy(['*.txt'], '/out/');
    expect(await listTree(join(s.rootfs, 'out'))).toEqual(['a.txt', 'b.txt']);
    await s.copy(['docs/*.txt', 'c.md'], '/more/');
    expect(await listTree(join(s.rootfs, 'more'))).toEqual(['c.md', 'd.txt']);
  });

  it('treats the destination as a directory when several sources remain', async () => {
    const s = await setup({ 'a.txt': 'a', 'b.txt': 'b', 'dir1/x': 'x', 'dir2/y': 'y' });
    await s.copy(['a.txt', 'b.txt'], '/multi');
    expect(await listTree(join(s.rootfs, 'multi'))).toEqual(['a.txt', 'b.txt']);
    await s.copy(['*.txt'], '/wild');
    expect(await listTree(join(s.rootfs, 'wild'))).toEqual(['a.txt', 'b.txt']);
    await s.copy(['dir1', 'dir2'], '/merged');
    expect(await listTree(join(s.rootfs, 'merged'))).toEqual(['x', 'y']);
  });

  it('keeps file semantics when a wildcard leaves one source', async () => {
    const s = await setup({ 'only.txt': 'o' });
    await s.copy(['*.txt', 'nomatch*'], '/single');
    expect(await text(join(s.rootfs, 'single'))).toBe('o');
  });

  it('refuses several sources onto an existing file, with Docker’s message', async () => {
    const s = await setup({ 'a.txt': 'a', 'b.txt': 'b' }, { 'etc/conf': 'keep' });
    await expect(s.copy(['a.txt', 'b.txt'], '/etc/conf')).rejects.toThrow(
      'When using COPY with more than one source file, the destination must be a directory and end with a /',
    );
    await expect(s.copy(['*.txt'], '/etc/conf', { isAdd: true })).rejects.toThrow('When using ADD with more than one source file');
    expect(await text(join(s.rootfs, 'etc/conf'))).toBe('keep');
  });

  it('accepts a wildcard that matches nothing, as BuildKit does', async () => {
    const s = await setup({ foo: 'f' });
    await s.copy(['foo', 'nomatch*'], '/');
    expect(await listTree(s.rootfs)).toEqual(['foo']);
  });

  it('fails on a missing source before writing anything', async () => {
    const s = await setup({ 'a.txt': 'a' });
    await expect(s.copy(['a.txt', 'missing.txt'], '/out/')).rejects.toThrow('"/missing.txt": not found');
    expect(await listTree(s.rootfs)).toEqual([]);
  });
});

describe('COPY: what the context may give', () => {
  it('refuses sources outside the context and symlinks leading out of it', async () => {
    const s = await setup({ a: 'a', out: { link: '../../../../etc/passwd' }, abs: { link: '/etc/passwd' } });
    await expect(s.copy(['../a'], '/x')).rejects.toThrow(InvalidInputError);
    await expect(s.copy(['out'], '/x')).rejects.toThrow('points outside the build context');
    await expect(s.copy(['abs'], '/x')).rejects.toThrow('points outside the build context');
    expect(await listTree(s.rootfs)).toEqual([]);
  });

  it('follows a symlink named as a source but copies symlinks inside directories as symlinks', async () => {
    const s = await setup({
      bar: 'bar-contents',
      foo: { link: 'bar' },
      'tree/rel': { link: '../bar' },
      'tree/abs': { link: '/usr/lib/libc.so' },
      'tree/far': { link: '../../../outside' },
    });
    await s.copy(['foo'], '/');
    const foo = join(s.rootfs, 'foo');
    expect((await lstat(foo)).isFile()).toBe(true);
    expect(await text(foo)).toBe('bar-contents');
    await s.copy(['tree'], '/t');
    expect(await readlink(join(s.rootfs, 't/rel'))).toBe('../bar');
    expect(await readlink(join(s.rootfs, 't/abs'))).toBe('/usr/lib/libc.so');
    expect(await readlink(join(s.rootfs, 't/far'))).toBe('../../../outside');
    expect(await owner(join(s.rootfs, 't/abs'))).toBe('0:0');
  });

  it('leaves out what .dockerignore excludes, also inside copied directories', async () => {
    const s = await setup({
      '.dockerignore': '**/*.log\nsecrets\n!secrets/public.pem\napp/tmp\n',
      'app/main.js': 'm',
      'app/debug.log': 'l',
      'app/tmp/cache': 'c',
      'app/lib/x.log': 'x',
      'secrets/private.key': 'k',
      'secrets/public.pem': 'p',
    });
    await s.copy(['.'], '/srv/');
    expect(await listTree(join(s.rootfs, 'srv'))).toEqual([
      '.dockerignore',
      'app/',
      'app/lib/',
      'app/main.js',
      'secrets/',
      'secrets/public.pem',
    ]);
    await expect(s.copy(['app/debug.log'], '/x')).rejects.toThrow('"/app/debug.log": not found');
  });

  it('keeps hardlinks between copied files', async () => {
    const s = await setup({ 'd/a': 'same', 'd/sub/': null });
    await link(join(s.ctxDir, 'd/a'), join(s.ctxDir, 'd/sub/b'));
    await s.copy(['d'], '/h');
    const a = await stat(join(s.rootfs, 'h/a'));
    const b = await stat(join(s.rootfs, 'h/sub/b'));
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
  });

  it('recreates fifos, and turns sockets into empty files as BuildKit’s context transfer does', async () => {
    const s = await setup({ 'sp/': null });
    await execa('mkfifo', ['-m', '0640', join(s.ctxDir, 'sp/fifo')]);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(s.ctxDir, 'sp/sock'), resolve));
    try {
      await s.copy(['sp'], '/sp');
    } finally {
      server.close();
    }
    const fifo = await lstat(join(s.rootfs, 'sp/fifo'));
    expect(fifo.isFIFO()).toBe(true);
    expect(fifo.mode & 0o7777).toBe(0o640);
    const sock = await lstat(join(s.rootfs, 'sp/sock'));
    expect(sock.isFile()).toBe(true);
    expect(sock.size).toBe(0);
  });
});

describe('COPY: --chown and --chmod', () => {
  const PASSWD = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n';
  const GROUP = 'root:x:0:\nstaff:x:50:\napp:x:1001:\n';

  it('owns everything copied, and the parents it creates, by the --chown identity', async () => {
    const s = await setup({ 'd/f': 'f', 'd/sub/g': 'g', 'd/l': { link: 'f' } }, { 'etc/passwd': PASSWD, 'etc/group': GROUP });
    const chown = await resolveChown(s.rootfs, 'app');
    await s.copy(['d'], '/home/app/data', { chown });
    for (const p of ['home/app', 'home/app/data', 'home/app/data/f', 'home/app/data/sub', 'home/app/data/sub/g', 'home/app/data/l']) {
      expect([p, await owner(join(s.rootfs, p))]).toEqual([p, '1000:1001']);
    }
    await s.copy(['d/f'], '/numeric', { chown: await resolveChown(s.rootfs, '42:staff') });
    expect(await owner(join(s.rootfs, 'numeric'))).toBe('42:50');
  });

  it('applies --chmod to files and directories, and to the parents it creates (BuildKit)', async () => {
    const s = await setup({ 'd/f': { file: 'f', mode: 0o600 }, 'd/sub/g': 'g' });
    await s.copy(['d'], '/opt/x', { chmod: 0o751 });
    expect(await mode(join(s.rootfs, 'opt/x/f'))).toBe(0o751);
    expect(await mode(join(s.rootfs, 'opt/x/sub'))).toBe(0o751);
    expect(await mode(join(s.rootfs, 'opt/x/sub/g'))).toBe(0o751);
    expect(await mode(join(s.rootfs, 'opt'))).toBe(0o751);
    await s.copy(['d/f'], '/bin/su', { chmod: 0o4755, chown: { uid: 0, gid: 0 } });
    expect(await mode(join(s.rootfs, 'bin/su'))).toBe(0o4755);
  });

  it('keeps setuid, setgid and sticky bits of the sources, after chown', async () => {
    const s = await setup({ 'bin/sudo': { file: 'x', mode: 0o4755 }, 'bin/wall': { file: 'y', mode: 0o2755 }, 'tmp/': null });
    await execa('chmod', ['1777', join(s.ctxDir, 'tmp')]);
    await s.copy(['.'], '/', { chown: { uid: 7, gid: 8 } });
    expect(await mode(join(s.rootfs, 'bin/sudo'))).toBe(0o4755);
    expect(await mode(join(s.rootfs, 'bin/wall'))).toBe(0o2755);
    expect(await mode(join(s.rootfs, 'tmp'))).toBe(0o1777);
  });
});

describe('COPY: the rootfs’s own symlinks stay inside it', () => {
  it('resolves the destination through the image’s symlinks as if the rootfs were /', async () => {
    const marker = `tsbuild-escape-${randomBytes(6).toString('hex')}`;
    const s = await setup(
      { tool: 'T', 'd/x': 'X' },
      { 'opt/': null, 'usr/local': { link: '/opt' }, evil: { link: '/' }, up: { link: '../../../../../../tmp' } },
    );
    await s.copy(['tool'], '/usr/local/bin/');
    expect(await text(join(s.rootfs, 'opt/bin/tool'))).toBe('T');
    await s.copy(['tool'], `/evil/tmp/${marker}`);
    expect(await text(join(s.rootfs, 'tmp', marker))).toBe('T');
    await s.copy(['d'], `/up/${marker}-dir`);
    expect(await text(join(s.rootfs, 'tmp', `${marker}-dir`, 'x'))).toBe('X');
    // Nothing reached the host's /tmp.
    expect(existsSync(join('/tmp', marker))).toBe(false);
    expect(existsSync(join('/tmp', `${marker}-dir`))).toBe(false);
    // The symlinks themselves are untouched.
    expect(await readlink(join(s.rootfs, 'usr/local'))).toBe('/opt');
  });

  it('replaces a file or a symlink at the target, never writing through the symlink', async () => {
    const s = await setup({ f: 'new', 'd/link': 'file-now' }, { old: 'old', 'dst/link': { link: '/etc/shadow' }, 'etc/shadow': 'secret' });
    await s.copy(['f'], '/old');
    expect(await text(join(s.rootfs, 'old'))).toBe('new');
    await s.copy(['d'], '/dst');
    expect((await lstat(join(s.rootfs, 'dst/link'))).isFile()).toBe(true);
    expect(await text(join(s.rootfs, 'etc/shadow'))).toBe('secret');
  });

  it('refuses a file over a directory and a directory over a file, as fsutil does', async () => {
    const s = await setup({ foo: 'f', 'd/sub': 'file', 'e/etc/': null }, { 'foo/': null, 'x/sub/': null, 'y/etc': 'file' });
    await expect(s.copy(['foo'], '/')).rejects.toThrow('cannot replace to directory /foo with file');
    await expect(s.copy(['d'], '/x')).rejects.toThrow('cannot replace to directory /x/sub with file');
    await expect(s.copy(['e'], '/y')).rejects.toThrow('cannot copy to non-directory: /y/etc');
  });

  it('refuses to merge a directory into a symlink inside the target, even one to a directory', async () => {
    const s = await setup({ 'root/lib/x.so': 'so' }, { 'usr/lib/': null, lib: { link: 'usr/lib' } });
    await expect(s.copy(['root'], '/')).rejects.toThrow('cannot copy to non-directory: /lib');
  });
});

describe('ADD: local archives', () => {
  async function archiveFixture(dir: string): Promise<void> {
    await writeTree(dir, { 'pkg/bin/tool': { file: 'tool', mode: 0o4755 }, 'pkg/etc/conf': 'conf', 'pkg/link': { link: '/etc/conf' } });
    await utimes(join(dir, 'pkg/etc'), 1_200_000_000, 1_200_000_000);
    await utimes(join(dir, 'pkg/etc/conf'), 1_100_000_000, 1_100_000_000);
  }

  for (const [ext, flag] of [
    ['tar', ''],
    ['tar.gz', '-z'],
    ['tar.bz2', '-j'],
    ['tar.xz', '-J'],
    ['tar.zst', '--zstd'],
  ] as const) {
    it(`unpacks ${ext} into the destination, keeping the archive's owners, modes and times`, async () => {
      const s = await setup({});
      const work = await tempDir();
      await archiveFixture(work);
      const args = [
        '-c',
        ...(flag ? [flag] : []),
        '-f',
        join(s.ctxDir, `a.${ext}`),
        '--numeric-owner',
        '--owner=1234',
        '--group=2345',
        '-C',
        work,
        'pkg',
      ];
      await execa('tar', args);
      await s.copy([`a.${ext}`], '/opt', { isAdd: true });
      expect(await listTree(join(s.rootfs, 'opt'))).toEqual(['pkg/', 'pkg/bin/', 'pkg/bin/tool', 'pkg/etc/', 'pkg/etc/conf', 'pkg/link']);
      expect(await owner(join(s.rootfs, 'opt/pkg/bin/tool'))).toBe('1234:2345');
      expect(await mode(join(s.rootfs, 'opt/pkg/bin/tool'))).toBe(0o4755);
      expect(await readlink(join(s.rootfs, 'opt/pkg/link'))).toBe('/etc/conf');
      expect((await stat(join(s.rootfs, 'opt/pkg/etc/conf'))).mtimeMs).toBe(1_100_000_000_000);
      expect((await stat(join(s.rootfs, 'opt/pkg/etc'))).mtimeMs).toBe(1_200_000_000_000);
      // The destination itself: created 0755 root.
      expect(await mode(join(s.rootfs, 'opt'))).toBe(0o755);
    });
  }

  it('recognizes archives by content, not by name, and copies other files as they are', async () => {
    const s = await setup({ 'fake.tar.gz': 'not an archive', 'empty.tar': '' });
    const work = await tempDir();
    await writeTree(work, { x: 'x' });
    await execa('tar', ['-czf', join(s.ctxDir, 'real.txt'), '-C', work, 'x']);
    await s.copy(['fake.tar.gz', 'empty.tar', 'real.txt'], '/d/', { isAdd: true });
    expect(await listTree(join(s.rootfs, 'd'))).toEqual(['empty.tar', 'fake.tar.gz', 'x']);
    // COPY never unpacks.
    await s.copy(['real.txt'], '/c/');
    expect(await listTree(join(s.rootfs, 'c'))).toEqual(['real.txt']);
  });

  it('gives every entry the --chown owner, and lets --chmod alone', async () => {
    const s = await setup({});
    const work = await tempDir();
    await archiveFixture(work);
    await execa('tar', ['-czf', join(s.ctxDir, 'a.tgz'), '-C', work, 'pkg']);
    await s.copy(['a.tgz'], '/srv/', { isAdd: true, chown: { uid: 77, gid: 88 }, chmod: 0o600 });
    for (const p of ['srv', 'srv/pkg', 'srv/pkg/bin/tool', 'srv/pkg/link']) expect(await owner(join(s.rootfs, p))).toBe('77:88');
    expect(await mode(join(s.rootfs, 'srv/pkg/bin/tool'))).toBe(0o4755);
  });

  it('replaces what is in the way, and merges directories', async () => {
    const s = await setup({}, { 'opt/pkg/etc/': null, 'opt/pkg/etc/keep': 'k', 'opt/pkg/bin': 'a file where a dir goes' });
    const work = await tempDir();
    await archiveFixture(work);
    await execa('tar', ['-cf', join(s.ctxDir, 'a.tar'), '-C', work, 'pkg']);
    await s.copy(['a.tar'], '/opt/', { isAdd: true });
    expect(await listTree(join(s.rootfs, 'opt/pkg/etc'))).toEqual(['conf', 'keep']);
    expect((await lstat(join(s.rootfs, 'opt/pkg/bin'))).isDirectory()).toBe(true);
  });

  it('refuses archives whose entries would land outside the destination, writing nothing outside', async () => {
    const marker = `tsbuild-evil-${randomBytes(6).toString('hex')}`;
    const s = await setup({});
    const work = await tempDir();
    await writeTree(work, { x: 'evil' });
    // An entry named ../../<marker>
    await execa('tar', ['-cf', join(s.ctxDir, 'dotdot.tar'), '-P', '--transform', `s,^x$,../../${marker},`, '-C', work, 'x']);
    await expect(s.copy(['dotdot.tar'], '/dest/', { isAdd: true })).rejects.toThrow("climbs out of the destination with '..'");
    // A symlink climbing out, then an entry written through it: `..` stops at the destination,
    // as in Docker's chroot.
    await writeTree(work, { esc: { link: '../../..' }, 'esc2/': null });
    await execa('tar', ['-cf', join(s.ctxDir, 'link.tar'), '-C', work, 'esc']);
    await execa('tar', ['-rf', join(s.ctxDir, 'link.tar'), '-P', '--transform', `s,^x$,esc/${marker},`, '-C', work, 'x']);
    await s.copy(['link.tar'], '/dest2/', { isAdd: true });
    expect(await text(join(s.rootfs, 'dest2', marker))).toBe('evil');
    for (const dir of [s.rootfs, join(s.rootfs, '..'), '/tmp', '/']) expect(existsSync(join(dir, marker))).toBe(false);
    // Absolute names stay inside the destination.
    await execa('tar', ['-cf', join(s.ctxDir, 'abs.tar'), '-P', '--transform', `s,^x$,/${marker},`, '-C', work, 'x']);
    await s.copy(['abs.tar'], '/dest3/', { isAdd: true });
    expect(await text(join(s.rootfs, 'dest3', marker))).toBe('evil');
    expect(existsSync(join('/', marker))).toBe(false);
  });

  it('refuses URLs and git repositories for COPY (ADD of URLs: add-url.test.ts, of git: add-git.test.ts)', async () => {
    const s = await setup({});
    await expect(s.copy(['http://example.com/a'], '/')).rejects.toThrow("source can't be a URL for COPY");
    await expect(s.copy(['https://example.com/repo.git'], '/')).rejects.toThrow("source can't be a git ref for COPY");
    await expect(s.copy(['git@example.com:o/r.git'], '/')).rejects.toThrow("source can't be a git ref for COPY");
  });
});

describe('COPY: scale', () => {
  it('copies 20,000 small files quickly', async () => {
    const s = await setup({});
    const src = join(s.ctxDir, 'many');
    for (let d = 0; d < 20; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(src, `d${d}`, `f${i}`), `${d}/${i}`)));
    }
    const started = Date.now();
    await s.copy(['many'], '/many');
    const elapsed = Date.now() - started;
    let count = 0;
    for (let d = 0; d < 20; d++) count += (await readdir(join(s.rootfs, 'many', `d${d}`))).length;
    expect(count).toBe(20_000);
    expect(await text(join(s.rootfs, 'many/d7/f123'))).toBe('7/123');
    expect(elapsed).toBeLessThan(60_000);
  });
});

describe('ADD: damaged archives', () => {
  it('fails on a truncated archive and on a corrupt compressed stream, without hanging', async () => {
    const s = await setup({});
    const work = await tempDir();
    await writeTree(work, { big: randomBytes(50_000).toString('base64'), small: 's' });
    await execa('tar', ['-cf', join(work, 'full.tar'), '-C', work, 'big', 'small']);
    const full = await readFile(join(work, 'full.tar'));
    await writeFile(join(s.ctxDir, 'cut.tar'), full.subarray(0, 2048));
    await expect(s.copy(['cut.tar'], '/x/', { isAdd: true })).rejects.toThrow('the tar archive /cut.tar is truncated');
    await execa('xz', ['-k', join(work, 'full.tar')]);
    const xz = await readFile(join(work, 'full.tar.xz'));
    await writeFile(join(s.ctxDir, 'cut.tar.xz'), xz.subarray(0, Math.floor(xz.length / 2)));
    await expect(s.copy(['cut.tar.xz'], '/y/', { isAdd: true })).rejects.toThrow(/cannot decompress xz archive|cut\.tar\.xz/);
    await execa('gzip', ['-k', join(work, 'full.tar')]);
    const gz = await readFile(join(work, 'full.tar.gz'));
    gz.fill(0x55, gz.length >> 1, (gz.length >> 1) + 100); // damage the deflate stream past the first block
    await writeFile(join(s.ctxDir, 'bad.tar.gz'), gz);
    await expect(s.copy(['bad.tar.gz'], '/z/', { isAdd: true })).rejects.toThrow(InvalidInputError);
  });

  it('names the archive and entry, never a host path, when a hardlink’s target is missing', async () => {
    const s = await setup({});
    const work = await tempDir();
    await writeTree(work, { x: 'x' });
    await link(join(work, 'x'), join(work, 'y'));
    const tar = join(s.ctxDir, 'orphan.tar');
    await execa('tar', ['-cf', tar, '-C', work, 'x', 'y']);
    await execa('tar', ['--delete', '-f', tar, 'x']); // y is now a hardlink to nothing
    const err = await s.copy(['orphan.tar'], '/dest/', { isAdd: true }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe('/orphan.tar: entry "y" is a hardlink to "x", which is not in the destination');
  });
});
