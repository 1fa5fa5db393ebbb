// tsbuild-helper reap (native/helper/reap.c, src/runtime/reap.ts): directory trees handed to a
// remover that outlives its caller, leased in the remover's own name so that a remover that does
// not finish is repaired by the next command, as a killed tsbuild is.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { reapLater } from '../../src/runtime/helper.js';
import { waitFor } from '../helpers/steps.js';
import { ok, tempRoot } from '../helpers/tsbuild.js';

let root: Awaited<ReturnType<typeof tempRoot>>;
let places: { into: string; leases: string };

beforeEach(async () => {
  root = await tempRoot();
  places = { into: join(root.root, 'tmp'), leases: join(root.root, 'leases') };
  await mkdir(places.into);
  await mkdir(places.leases);
});

afterEach(async () => {
  await execa('chattr', ['-R', '-i', root.root], { reject: false });
  await root.cleanup();
});

/** `dirs` directories of `files` small files each below `dir`. */
async function tree(dir: string, dirs: number, files: number): Promise<void> {
  for (let d = 0; d < dirs; d++) {
    await mkdir(join(dir, `d${d}`, 'sub'), { recursive: true });
    await Promise.all(Array.from({ length: files }, (_, f) => writeFile(join(dir, `d${d}`, 'sub', `f${f}`), `${d}/${f}`)));
  }
}

const empty = async (dir: string): Promise<true | undefined> => ((await readdir(dir)).length === 0 ? true : undefined);

test('the trees are gone from where they were when reapLater returns, and are removed after, lease and all', async () => {
  const a = join(root.root, 'snapshot-a');
  const b = join(root.root, 'snapshot-b');
  await tree(a, 20, 500);
  await tree(b, 1, 1);
  await reapLater([a, b], places);
  expect([existsSync(a), existsSync(b)]).toEqual([false, false]);
  await waitFor('the remover to finish', () => empty(places.into), 30_000);
  await waitFor('the remover to drop its lease', () => empty(places.leases), 30_000);
});

test('a remover that cannot finish keeps its lease; the next command repairs what it left', async () => {
  const a = join(root.root, 'snapshot-a');
  await tree(a, 3, 10);
  // An immutable file: unlink fails with EPERM, as it would for a remover killed half-way.
  await execa('chattr', ['+i', join(a, 'd1', 'sub', 'f3')]);
  await reapLater([a], places);
  expect(existsSync(a)).toBe(false);
  // Everything else goes; the remover exits leaving its tree, named by its PID, and its lease.
  const held = await waitFor(
    'the remover to give up',
    async () => {
      const [left] = await readdir(places.into);
      const [lease] = await readdir(places.leases);
      if (left === undefined || lease === undefined) throw new Error('the remover left no tree or no lease');
      const pid = /^removing-(\d+)-000000$/.exec(left)?.[1];
      expect(lease).toMatch(new RegExp(`^${pid}-\\d+$`));
      return existsSync(`/proc/${pid}`) ? undefined : left;
    },
    30_000,
  );
  expect(await readdir(join(places.into, held, 'd1', 'sub'))).toEqual(['f3']);
  await execa('chattr', ['-i', join(places.into, held, 'd1', 'sub', 'f3')]);
  // Its dead lease makes the next command repair, and the repair removes what it held.
  await ok(root.root, ['images']);
  expect(await readdir(places.into)).toEqual([]);
  expect(await readdir(places.leases)).toEqual([]);
});

test('trees it cannot move (another filesystem) stay where they were, and it holds nothing', async () => {
  const other = await mkdtemp('/dev/shm/tsbuild-reap-');
  try {
    const a = join(root.root, 'snapshot-a');
    const b = join(other, 'snapshot-b');
    await tree(a, 1, 3);
    await tree(b, 1, 3);
    await expect(reapLater([a, b], places)).rejects.toThrow(/reap: rename .*snapshot-b .*Invalid cross-device link/);
    // The first was moved before the second failed: it is back.
    expect([existsSync(join(a, 'd0', 'sub', 'f2')), existsSync(join(b, 'd0', 'sub', 'f2'))]).toEqual([true, true]);
    expect(await readdir(places.into)).toEqual([]);
    expect(await readdir(places.leases)).toEqual([]);
  } finally {
    await rm(other, { recursive: true, force: true });
  }
});
