// Where Node's compile cache may live (cli/compile-cache.ts): only in a directory that nobody
// but us (and root) can write to, all the way up, since whoever can write there can put code
// in our process.
import { chmod, chown, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileCacheDir, isPrivateDir } from '../../../cli/compile-cache.js';

describe('compile cache directory', () => {
  let base: string;
  const uid = process.getuid!();
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'tsbuild-cc-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test('XDG_CACHE_HOME, else ~/.cache; never a relative path', () => {
    expect(compileCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/a' })).toBe('/x/cache/tsbuild/node-compile-cache');
    expect(compileCacheDir({ HOME: '/home/a' })).toBe('/home/a/.cache/tsbuild/node-compile-cache');
    expect(compileCacheDir({ XDG_CACHE_HOME: 'rel', HOME: '/home/a' })).toBe('/home/a/.cache/tsbuild/node-compile-cache');
  });

  test('a directory of our own below a sticky /tmp is private', async () => {
    const dir = join(base, 'cache');
    await mkdir(dir, { mode: 0o700 });
    expect(isPrivateDir(dir, uid)).toBe(true);
  });

  test('a directory others can write to is not, nor one below it', async () => {
    const open = join(base, 'open');
    await mkdir(join(open, 'cache'), { recursive: true, mode: 0o700 });
    await chmod(open, 0o777); // world-writable, not sticky: anyone can rename cache away
    expect(isPrivateDir(open, uid)).toBe(false);
    expect(isPrivateDir(join(open, 'cache'), uid)).toBe(false);
    await chmod(open, 0o1777); // sticky: only the owner of cache can move it
    expect(isPrivateDir(join(open, 'cache'), uid)).toBe(true);
    expect(isPrivateDir(open, uid)).toBe(false); // the cache directory itself is shared
  });

  test('a symlink or a missing directory is not used', async () => {
    const dir = join(base, 'cache');
    await mkdir(dir, { mode: 0o700 });
    await symlink(dir, join(base, 'link'));
    expect(isPrivateDir(join(base, 'link'), uid)).toBe(false);
    expect(isPrivateDir(join(base, 'missing'), uid)).toBe(false);
  });

  test("a directory of another user's is not", async () => {
    const dir = join(base, 'cache');
    await mkdir(dir, { mode: 0o700 });
    // As root, give it away; as a user, ask for someone else (root's directories are trusted by all).
    if (uid === 0) await chown(dir, 65534, 65534);
    expect(isPrivateDir(dir, uid === 0 ? 0 : uid + 1)).toBe(false);
  });
});
