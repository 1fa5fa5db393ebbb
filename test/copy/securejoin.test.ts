import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lookupInRoot, resolveInRoot, SymlinkLoopError, MAX_SYMLINKS } from '../../src/fs/securejoin.js';
import { InvalidInputError } from '../../src/errors.js';
import { removeTempDirs, tempDir, writeTree } from './tmp.js';

afterEach(removeTempDirs);

describe('resolveInRoot', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempDir();
    await writeTree(root, {
      'usr/local': null,
      'opt/bin/tool': 'x',
      'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
      'run/': null,
      'var/run': { link: '/run' },
      'var/rel': { link: '../opt' },
      evil: { link: '/' },
      up: { link: '../../../../..' },
      hostetc: { link: '/host/etc' },
      dangling: { link: '/nowhere/file' },
      self: { link: 'self' },
      a: { link: 'b' },
      b: { link: 'a' },
    });
  });

  it('joins plain paths and cleans the input lexically', async () => {
    expect(await resolveInRoot(root, '/etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, 'etc/./passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/../../etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/')).toBe(root);
    expect(await resolveInRoot(root, '')).toBe(root);
  });

  it('reads absolute symlink targets relative to the root', async () => {
    expect(await resolveInRoot(root, '/var/run/x.pid')).toBe(join(root, 'run/x.pid'));
    expect(await resolveInRoot(root, '/evil/etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/hostetc/shadow')).toBe(join(root, 'host/etc/shadow'));
  });

  it('resolves `..` in targets against the resolved parent and never above the root', async () => {
    expect(await resolveInRoot(root, '/var/rel/bin/tool')).toBe(join(root, 'opt/bin/tool'));
    expect(await resolveInRoot(root, '/up/etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/up')).toBe(root);
  });

  it('follows the final symlink only when asked', async () => {
    expect(await resolveInRoot(root, '/var/run')).toBe(join(root, 'run'));
    expect(await resolveInRoot(root, '/var/run', { followFinal: false })).toBe(join(root, 'var/run'));
    expect(await resolveInRoot(root, '/dangling')).toBe(join(root, 'nowhere/file'));
  });

  it('keeps missing components as they are', async () => {
    expect(await resolveInRoot(root, '/new/dir/file')).toBe(join(root, 'new/dir/file'));
    expect(await resolveInRoot(root, '/etc/passwd/below')).toBe(join(root, 'etc/passwd/below'));
  });

  it('fails with ELOOP on symlink loops', async () => {
    await expect(resolveInRoot(root, '/self')).rejects.toBeInstanceOf(SymlinkLoopError);
    await expect(resolveInRoot(root, '/a/x')).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(resolveInRoot(root, '/a')).rejects.toThrow('too many levels of symbolic links');
    // Not following the final link is no loop.
    expect(await resolveInRoot(root, '/self', { followFinal: false })).toBe(join(root, 'self'));
  });

  it('allows exactly MAX_SYMLINKS links in a chain', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'l0'), 'end');
    for (let i = 1; i <= MAX_SYMLINKS + 1; i++) await symlink(`l${i - 1}`, join(dir, `l${i}`));
    expect(await resolveInRoot(dir, `l${MAX_SYMLINKS}`)).toBe(join(dir, 'l0'));
    await expect(resolveInRoot(dir, `l${MAX_SYMLINKS + 1}`)).rejects.toBeInstanceOf(SymlinkLoopError);
  });

  it('lets a caller refuse escapes and hide entries', async () => {
    const refuse = {
      onEscape: () => {
        throw new InvalidInputError('escape');
      },
    };
    await expect(resolveInRoot(root, '/evil/etc', refuse)).rejects.toThrow('escape');
    await expect(resolveInRoot(root, '/up/etc', refuse)).rejects.toThrow('escape');
    expect(await resolveInRoot(root, '/var/rel/bin', refuse)).toBe(join(root, 'opt/bin'));
    const hidden = await lookupInRoot(root, '/opt/bin/tool', { isHidden: (p) => p === 'opt/bin' });
    expect(hidden.stats).toBeUndefined();
  });

  it('reports the final entry and its root-relative path', async () => {
    await mkdir(join(root, 'run/lock'));
    const l = await lookupInRoot(root, '/var/run/lock');
    expect(l.path).toBe('run/lock');
    expect(l.stats?.isDirectory()).toBe(true);
    const top = await lookupInRoot(root, '/up');
    expect(top.path).toBe('');
    expect(top.stats?.isDirectory()).toBe(true);
  });
});
