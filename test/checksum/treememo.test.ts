// The memo of a whole source directory (src/context/treememo.ts, used by sourcesChecksum): an
// unchanged tree takes its text from the memo, any change makes the walk run again, and the
// checksum is always the one a full walk gives.
import { chmod, readdir, readFile, rm, utimes, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { sourcesChecksum } from '../../src/builder/checksum.js';
import { openContext, RACY_MARGIN_MS, TreeMemos, type TreeMemoKey } from '../../src/context/index.js';
import { removeTempDirs, tempDir, writeTree, type Tree } from '../copy/tmp.js';

afterEach(removeTempDirs);

/** Let files written by the test become older than the racy margin, as real contexts are. */
const settle = () => new Promise((r) => setTimeout(r, RACY_MARGIN_MS + 200));

interface Caches {
  cacheDir: string;
  memoDir: string;
}

async function caches(): Promise<Caches> {
  const cacheDir = await tempDir('tsbuild-cache-');
  return { cacheDir, memoDir: join(cacheDir, 'trees') };
}

/** The checksum as a new build computes it: a fresh BuildContext each time. */
async function checksum(dir: string, sources: string[], c?: Caches): Promise<string> {
  return sourcesChecksum(await openContext(dir), sources, c ?? {});
}

async function keyOf(dir: string, path: string): Promise<TreeMemoKey> {
  const context = await openContext(dir);
  return { root: context.root, path, name: path, ignore: context.ignore.text, owners: false };
}

/**
 * Rewrites the memo of `path`, intact, with other bytes and the same stamp: a checksum that
 * follows it took the memo instead of walking (only a forged memo can show this).
 */
async function forge(dir: string, path: string, c: Caches): Promise<void> {
  const memos = new TreeMemos(c.memoDir);
  const key = await keyOf(dir, path);
  const memo = await memos.read(key);
  expect(memo?.stamp).toMatch(/^sha256:/);
  await memos.write(key, { ...memo!, bytes: [...memo!.bytes, Buffer.from('forged\n')] });
}

const TREE: Tree = {
  'app/a.txt': 'alpha',
  'app/bin/run.sh': { file: '#!/bin/sh\n', mode: 0o755 },
  'app/lib/deep/c.txt': 'charlie',
  'app/lib/link': { link: '../a.txt' },
  'app/odd/with\nnewline "quoted" é': 'odd',
  'other.txt': 'other',
};

describe('the memo of a whole directory', () => {
  it('stands for the walk while the tree is unchanged; any change makes it walk again', async () => {
    const dir = await tempDir('tsbuild-ctx-');
    await writeTree(dir, TREE);
    const c = await caches();
    await settle();
    const plain = await checksum(dir, ['app', 'other.txt']);
    expect(await checksum(dir, ['app', 'other.txt'], c)).toBe(plain); // walks, records the memo
    expect(await readdir(c.memoDir)).toHaveLength(1); // the directory's; a file source has none
    expect(await checksum(dir, ['app', 'other.txt'], c)).toBe(plain); // from the memo
    await forge(dir, 'app', c);
    const forged = await checksum(dir, ['app', 'other.txt'], c);
    expect(forged).not.toBe(plain);

    // Each change below makes the stamp differ: the walk runs and the checksum is right again.
    const changes: [string, () => Promise<unknown>][] = [
      [
        'same-size rewrite, mtime put back',
        async () => {
          const st = await lstat(join(dir, 'app/lib/deep/c.txt'));
          await writeFile(join(dir, 'app/lib/deep/c.txt'), 'CHARLIE');
          await utimes(join(dir, 'app/lib/deep/c.txt'), st.atime, st.mtime);
        },
      ],
      ['chmod', () => chmod(join(dir, 'app/a.txt'), 0o600)],
      ['a new file', () => writeFile(join(dir, 'app/lib/new.txt'), 'new')],
      ['a removed file', () => rm(join(dir, 'app/bin/run.sh'))],
    ];
    for (const [what, change] of changes) {
      await change();
      const truth = await checksum(dir, ['app', 'other.txt']);
      expect({ what, sum: await checksum(dir, ['app', 'other.txt'], c) }).toEqual({ what, sum: truth });
    }
    // The change was recent: no stamp recorded (racily clean), so the next build walks too.
    expect((await new TreeMemos(c.memoDir).read(await keyOf(dir, 'app')))?.stamp).toBeNull();
    // A change outside the directory is none of its memo's business.
    await writeFile(join(dir, 'other.txt'), 'OTHER');
    await settle();
    const now = await checksum(dir, ['app', 'other.txt']);
    expect(await checksum(dir, ['app', 'other.txt'], c)).toBe(now); // records a stamp
    expect(await checksum(dir, ['app', 'other.txt'], c)).toBe(now); // from the memo
    await forge(dir, 'app', c);
    expect(await checksum(dir, ['app', 'other.txt'], c)).not.toBe(now);
  }, 30_000);

  it('leaves hidden directories out of the stamp, and keys on the .dockerignore rules', async () => {
    const dir = await tempDir('tsbuild-ctx-');
    await writeTree(dir, { ...TREE, 'app/cache/big.bin': 'ignored', '.dockerignore': 'app/cache\n' });
    const c = await caches();
    await settle();
    const plain = await checksum(dir, ['app']);
    expect(await checksum(dir, ['app'], c)).toBe(plain); // no memo yet: no stamp (rules could hide a big tree)
    expect(await checksum(dir, ['app'], c)).toBe(plain); // a stamp without app/cache
    const memo = await new TreeMemos(c.memoDir).read(await keyOf(dir, 'app'));
    expect(memo).toMatchObject({ prune: ['cache'], stamp: expect.stringMatching(/^sha256:/) as unknown });
    await forge(dir, 'app', c);
    // A change in the hidden directory does not make the memo stale: the checksum cannot see it.
    await writeFile(join(dir, 'app/cache/more.bin'), 'more');
    expect(await checksum(dir, ['app'], c)).not.toBe(plain);
    // Other rules, another memo: app/cache is seen now.
    await writeFile(join(dir, '.dockerignore'), 'nothing-here\n');
    const seen = await checksum(dir, ['app']);
    expect(seen).not.toBe(plain);
    expect(await checksum(dir, ['app'], c)).toBe(seen);
    expect(await readdir(c.memoDir)).toHaveLength(2);
  }, 30_000);

  it('prunes nothing when a rule re-includes (hiding then depends on what a directory holds)', async () => {
    const dir = await tempDir('tsbuild-ctx-');
    await writeTree(dir, {
      ...TREE,
      'app/cache/big.bin': 'ignored',
      'app/logs/x.log': 'log',
      '.dockerignore': 'app/cache\napp/logs\n!app/logs/keep.log\n',
    });
    const c = await caches();
    await settle();
    const plain = await checksum(dir, ['app']);
    expect(await checksum(dir, ['app'], c)).toBe(plain);
    expect(await checksum(dir, ['app'], c)).toBe(plain);
    expect((await new TreeMemos(c.memoDir).read(await keyOf(dir, 'app')))?.prune).toEqual([]);
    // A re-included file appearing in a hidden directory is seen.
    await writeFile(join(dir, 'app/logs/keep.log'), 'keep');
    const truth = await checksum(dir, ['app']);
    expect(truth).not.toBe(plain);
    expect(await checksum(dir, ['app'], c)).toBe(truth);
  }, 30_000);

  it('ignores a damaged memo, keeps names that are not UTF-8, and gives the same checksum', async () => {
    const dir = await tempDir('tsbuild-ctx-');
    await writeTree(dir, TREE);
    await writeFile(Buffer.concat([Buffer.from(join(dir, 'app/bad')), Buffer.of(0xff)]), 'not UTF-8');
    const c = await caches();
    await settle();
    const plain = await checksum(dir, ['app']);
    expect(await checksum(dir, ['app'], c)).toBe(plain);
    expect(await checksum(dir, ['app'], c)).toBe(plain);
    const [name] = await readdir(c.memoDir);
    const file = join(c.memoDir, name!);
    const good = await readFile(file);
    expect(good.includes(Buffer.from('app/bad\xff\0', 'latin1'))).toBe(true); // the name's own bytes
    await forge(dir, 'app', c);
    expect(await checksum(dir, ['app'], c)).not.toBe(plain); // the memo was read
    const forged = await readFile(file);
    const damages: Record<string, Buffer> = {
      'a flipped byte in the text': Buffer.from(forged.toString('latin1').replace('forged', 'forgeD'), 'latin1'),
      'a cut': forged.subarray(0, forged.length - 20),
      garbage: Buffer.from('\u0000junk'),
      nothing: Buffer.alloc(0),
    };
    for (const [what, bytes] of Object.entries(damages)) {
      await writeFile(file, bytes);
      expect({ what, sum: await checksum(dir, ['app'], c) }).toEqual({ what, sum: plain });
    }
    expect(await readFile(file)).toEqual(good); // written again by the last walk
  }, 30_000);
});
