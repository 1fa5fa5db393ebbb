// stampTree through the helper: an unchanged tree keeps its stamp, every change a checksum can
// see moves it, pruned paths are left out, and the digest does not depend on the number of threads.
import { existsSync } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelperError, helperPath, stampTree } from '../../src/runtime/helper.js';

let dir: string;

beforeAll(() => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-stamp-'));
  await mkdir(join(dir, 'sub/deep'), { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'alpha');
  await writeFile(join(dir, 'sub/b.txt'), 'bravo');
  await writeFile(join(dir, 'sub/deep/c.txt'), 'charlie');
  await symlink('../a.txt', join(dir, 'sub/link'));
  await mkdir(join(dir, 'hidden/more'), { recursive: true });
  await writeFile(join(dir, 'hidden/more/h.txt'), 'hidden');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const digest = async (prune: string[] = []): Promise<string> => (await stampTree(dir, { prune })).digest;

describe('stampTree', () => {
  it('counts every entry, the top included, and is the same on any number of threads', async () => {
    // Many directories, so that several threads do take jobs.
    for (let i = 0; i < 40; i++) await writeFile(join(dir, `f${i}`), String(i));
    for (let i = 0; i < 40; i++) await mkdir(join(dir, `d${i}/e`), { recursive: true });
    const one = await stampTree(dir, { threads: 1 });
    expect(one.entries).toBe(1 + 9 + 40 + 80); // the top, the nine of beforeEach, the files and directories
    expect(one.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const threads of [2, 4, 8]) expect(await stampTree(dir, { threads })).toEqual(one);
  });

  it('reports the newest ctime of the tree', async () => {
    await utimes(join(dir, 'sub/b.txt'), 1_500_000_000, 1_500_000_000); // mtime back, ctime now
    const paths = ['', 'a.txt', 'sub', 'sub/b.txt', 'sub/deep', 'sub/deep/c.txt', 'sub/link', 'hidden', 'hidden/more', 'hidden/more/h.txt'];
    const newest = Math.max(...(await Promise.all(paths.map(async (p) => (await lstat(join(dir, p))).ctimeMs))));
    expect((await stampTree(dir)).newestCtimeMs).toBeCloseTo(newest, 3);
  });

  it('is the same for an unchanged tree and moves with every change a checksum could see', async () => {
    const changes: [string, () => Promise<unknown>][] = [
      [
        'same-size rewrite with the mtime put back',
        async () => {
          const st = await lstat(join(dir, 'sub/deep/c.txt'));
          await writeFile(join(dir, 'sub/deep/c.txt'), 'CHARLIE');
          await utimes(join(dir, 'sub/deep/c.txt'), st.atime, st.mtime);
        },
      ],
      ['chmod', () => chmod(join(dir, 'sub/b.txt'), 0o600)],
      ['chown', () => chown(join(dir, 'a.txt'), 1234, 1234)],
      ['a new empty file deep down', () => writeFile(join(dir, 'sub/deep/new'), '')],
      ['a removed file', () => rm(join(dir, 'sub/b.txt'))],
      ['a rename', () => rename(join(dir, 'a.txt'), join(dir, 'z.txt'))],
      [
        'a symlink pointed elsewhere',
        async () => {
          await rm(join(dir, 'sub/link'));
          await symlink('../z.txt', join(dir, 'sub/link'));
        },
      ],
      ['a hard link to a file (its ctime)', () => link(join(dir, 'sub/deep/c.txt'), join(dir, 'c-again'))],
      ['an empty directory', () => mkdir(join(dir, 'sub/empty'))],
    ];
    let before = await digest();
    expect(await digest()).toBe(before);
    for (const [what, change] of changes) {
      await change();
      const after = await digest();
      expect({ what, moved: after !== before }).toEqual({ what, moved: true });
      before = after;
    }
  });

  it('leaves out pruned paths and everything below them', async () => {
    const full = await stampTree(dir);
    const pruned = await stampTree(dir, { prune: ['hidden', 'sub/deep'] });
    expect(pruned.entries).toBe(full.entries - 5); // hidden, more, h.txt, deep, c.txt
    expect(pruned.digest).not.toBe(full.digest);
    await writeFile(join(dir, 'hidden/more/h.txt'), 'changed');
    await writeFile(join(dir, 'sub/deep/new'), 'new');
    expect(await digest(['hidden', 'sub/deep'])).toBe(pruned.digest);
    expect(await digest(['sub/deep', 'hidden'])).toBe(pruned.digest); // in any order
    expect(await digest()).not.toBe(full.digest);
    // A prune names a path, not a name: `more` alone is nothing at the top.
    expect(await digest(['more'])).toBe(await digest());
  });

  it('takes names that are not UTF-8 or hold newlines, and fails with the helper error on a missing directory', async () => {
    await writeFile(Buffer.concat([Buffer.from(join(dir, 'bad')), Buffer.of(0xff)]), 'x');
    await writeFile(join(dir, 'new\nline'), 'y');
    expect((await stampTree(dir)).entries).toBe(12);
    await expect(stampTree(join(dir, 'nope'))).rejects.toThrow(HelperError);
    await expect(stampTree(join(dir, 'nope'))).rejects.toThrow(/stamp: open .*nope: No such file or directory/);
  });
});
