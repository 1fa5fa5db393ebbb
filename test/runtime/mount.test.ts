// mount/unmount through the helper: overlay stacks longer than one page of options, mountsUnder,
// volatile writable overlays.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HelperError,
  helperPath,
  mount,
  mountRootfs,
  mountsUnder,
  supportsDType,
  unmount,
  unmountRootfs,
} from '../../src/runtime/helper.js';
import { Overlay2Snapshotter } from '../../src/snapshot/overlay2.js';

let home: string;

beforeAll(() => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
});

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'tsbuild-mount-'));
});

afterEach(async () => {
  // Whatever a failed test left mounted, most recent first.
  for (const m of await mountsUnder(home)) await unmount(m, { detach: true });
  await rm(home, { recursive: true, force: true });
});

/** A 26-character short name, like Docker's overlay2/l/ links. */
function shortName(i: number): string {
  return `L${String(i).padStart(4, '0')}`.padEnd(26, 'X');
}

/**
 * COUNT layers laid out as Docker's overlay2 does: <home>/<id>/diff holding layer-<i> and a
 * shared file, and <home>/l/<short> -> ../<id>/diff. Returns the relative lower list, top first.
 */
async function makeLayers(count: number): Promise<{ relative: string[]; absolute: string[] }> {
  await mkdir(join(home, 'l'));
  const relative: string[] = [];
  const absolute: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${'0'.repeat(60)}${String(i).padStart(4, '0')}`; // 64 hex chars, like a cache id
    const diff = join(home, id, 'diff');
    await mkdir(diff, { recursive: true });
    await writeFile(join(diff, `layer-${i}`), `${i}\n`);
    await writeFile(join(diff, 'shared'), `from layer ${i}\n`);
    await symlink(`../${id}/diff`, join(home, 'l', shortName(i)));
    relative.push(`l/${shortName(i)}`);
    absolute.push(diff);
  }
  // Leftmost lowerdir is the top layer: the last one created.
  return { relative: relative.reverse(), absolute: absolute.reverse() };
}

async function makeUpper(): Promise<{ merged: string }> {
  for (const d of ['up/diff', 'up/work', 'up/merged']) await mkdir(join(home, d), { recursive: true });
  return { merged: join(home, 'up/merged') };
}

describe('overlay through mount', () => {
  test('128 layers with relative short links and cwd, where absolute paths would not fit in a page', async () => {
    const count = 128;
    const { relative, absolute } = await makeLayers(count);
    const { merged } = await makeUpper();
    const absoluteOptions = `lowerdir=${absolute.join(':')},upperdir=${join(home, 'up/diff')},workdir=${join(home, 'up/work')}`;
    expect(Buffer.byteLength(absoluteOptions)).toBeGreaterThan(4096);

    // Absolute: refused by the helper before the kernel could silently truncate the list.
    const err = await mount({ type: 'overlay', source: 'overlay', target: merged, options: absoluteOptions }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelperError);
    expect((err as HelperError).message).toMatch(/options are \d+ bytes, more than the kernel accepts \(4095\)/);

    const options = `lowerdir=${relative.join(':')},upperdir=up/diff,workdir=up/work`;
    expect(Buffer.byteLength(options)).toBeLessThan(4096);
    await mount({ type: 'overlay', source: 'overlay', target: merged, options, cwd: home });
    expect(await mountsUnder(home)).toEqual([merged]);

    const names = await readdir(merged);
    for (let i = 0; i < count; i++) expect(names).toContain(`layer-${i}`);
    expect(await readFile(join(merged, 'shared'), 'utf8')).toBe(`from layer ${count - 1}\n`);
    // Writes land in the upper layer only.
    await writeFile(join(merged, 'new'), 'new\n');
    expect(await readFile(join(home, 'up/diff/new'), 'utf8')).toBe('new\n');

    await unmount(merged);
    expect(await mountsUnder(home)).toEqual([]);
    expect(await readdir(merged)).toEqual([]);
  });

  test('200 layers passed one by one (lowerdirs), beyond what fits in a page even with short links', async () => {
    const count = 200;
    const { relative } = await makeLayers(count);
    const { merged } = await makeUpper();
    expect(Buffer.byteLength(`lowerdir=${relative.join(':')}`)).toBeGreaterThan(4096);
    await mount({
      type: 'overlay',
      source: 'overlay',
      target: merged,
      options: 'index=off',
      cwd: home,
      lowerdirs: relative,
      upperdir: 'up/diff',
      workdir: 'up/work',
    });
    expect(await mountsUnder(merged)).toEqual([merged]);
    expect(await readFile(join(merged, 'layer-0'), 'utf8')).toBe('0\n');
    expect(await readFile(join(merged, 'shared'), 'utf8')).toBe(`from layer ${count - 1}\n`);
    await unmount(merged);
    expect(await mountsUnder(home)).toEqual([]);
  });

  test('a failing overlay mount is a HelperError that says what failed', async () => {
    const { merged } = await makeUpper();
    await expect(
      mount({
        type: 'overlay',
        source: 'overlay',
        target: merged,
        options: 'lowerdir=missing,upperdir=up/diff,workdir=up/work',
        cwd: home,
      }),
    ).rejects.toThrow(/^tsbuild-helper: mount overlay on .*merged \(type overlay\): No such file or directory/);
  });
});

describe('other mounts', () => {
  test('tmpfs, a read-only bind on top of it, detach', async () => {
    const target = join(home, 'tmp');
    const view = join(home, 'view');
    await mkdir(target);
    await mkdir(view);
    await mount({ type: 'tmpfs', source: 'tmpfs', target, options: 'size=1m,mode=0755' });
    await writeFile(join(target, 'file'), 'x');
    await mount({ type: 'none', source: target, target: view, options: 'bind,ro' });
    expect(await readFile(join(view, 'file'), 'utf8')).toBe('x');
    await expect(writeFile(join(view, 'other'), 'y')).rejects.toMatchObject({ code: 'EROFS' });
    // Most recent first, the order to unmount in.
    expect(await mountsUnder(home)).toEqual([view, target]);
    await unmount(view);
    await unmount(target, { detach: true });
    expect(await mountsUnder(home)).toEqual([]);
    expect(existsSync(join(target, 'file'))).toBe(false);
  });

  test('unmounting something that is not mounted is a HelperError', async () => {
    await expect(unmount(home)).rejects.toThrow(/umount .*: Invalid argument/);
  });
});

describe('mountsUnder', () => {
  test('includes the directory itself, decodes escaped names and ignores look-alike siblings', async () => {
    const spaced = join(home, 'with space');
    const sibling = `${home}-sibling`;
    await mkdir(spaced);
    await mkdir(sibling);
    try {
      await mount({ type: 'tmpfs', source: 'tmpfs', target: spaced, options: 'size=1m' });
      await mount({ type: 'tmpfs', source: 'tmpfs', target: sibling, options: 'size=1m' });
      expect(await mountsUnder(home)).toEqual([spaced]);
      expect(await mountsUnder(spaced)).toEqual([spaced]);
      expect(await mountsUnder(join(home, 'missing'))).toEqual([]);
    } finally {
      await unmount(sibling).catch(() => undefined);
      await rm(sibling, { recursive: true, force: true });
    }
  });
});

describe('supportsDType', () => {
  test('is true on the test filesystem and leaves nothing behind', async () => {
    expect(await supportsDType(home)).toBe(true);
    expect(await readdir(home)).toEqual([]);
  });

  test('a directory that does not exist is a HelperError', async () => {
    await expect(supportsDType(join(home, 'missing'))).rejects.toThrow(
      /supports-dtype: create a file in .*missing: No such file or directory/,
    );
  });
});

// mount and unmount go through one long-lived `tsbuild-helper serve` (src/runtime/served.ts).
describe('mount and unmount through the serving helper', () => {
  test('requests made at once are each answered, a failure with the helper’s own words, and the next one still works', async () => {
    const targets = ['a', 'b', 'c'].map((n) => join(home, n));
    for (const t of targets) await mkdir(t);
    const missing = join(home, 'missing');
    const results = await Promise.allSettled([
      ...targets.map((t) => mount({ type: 'tmpfs', source: 'tmpfs', target: t, options: 'size=1m' })),
      mount({ type: 'tmpfs', source: 'tmpfs', target: missing, options: 'size=1m' }),
    ]);
    expect(results.slice(0, 3).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    const bad = results[3] as PromiseRejectedResult;
    expect(bad.reason).toBeInstanceOf(HelperError);
    expect((bad.reason as HelperError).message).toMatch(/^tsbuild-helper: mount .*missing.*: No such file or directory$/);
    expect((await mountsUnder(home)).sort()).toEqual(targets);
    await Promise.all(targets.map((t) => unmount(t)));
    expect(await mountsUnder(home)).toEqual([]);
    await expect(unmount(targets[0]!)).rejects.toThrow(/umount .*: Invalid argument/);
  });

  test('a path with a newline or a leading dash arrives as it was', async () => {
    const odd = join(home, '-odd\nname');
    await mkdir(odd);
    await mount({ type: 'tmpfs', source: 'tmpfs', target: odd, options: 'size=1m' });
    await writeFile(join(odd, 'f'), 'x');
    expect(await readdir(odd)).toEqual(['f']);
    await unmount(odd);
    expect(await readdir(odd)).toEqual([]);
  });
});

/** The superblock options of the mount at `target`, from /proc/self/mountinfo (after its " - "). */
async function superOptions(target: string): Promise<string[]> {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [mine, theirs] = line.split(' - ');
    if (mine?.split(' ')[4] === target) return (theirs?.split(' ')[2] ?? '').split(',');
  }
  throw new Error(`${target} is not mounted`);
}

describe('a snapshot’s writable overlay', () => {
  test('is volatile (its unmount syncs nothing), leaves no marker, and mounts again after a process killed before cleaning one', async () => {
    const snapshotter = new Overlay2Snapshotter(join(home, 'overlay2'));
    await snapshotter.prepare('base', undefined);
    await writeFile(join(snapshotter.fileRoot('base'), 'base.txt'), 'base\n');
    const mounts = await snapshotter.prepare('top', 'base');
    const marker = join(home, 'overlay2', 'top', 'work', 'work', 'incompat');

    const first = await mountRootfs(mounts, async () => join(home, 'first'));
    // Linux 6.x shows the option as `fsync=volatile`, 5.10 to 6.5 as `volatile`.
    expect((await superOptions(first.rootfs)).filter((o) => o === 'volatile' || o === 'fsync=volatile')).toHaveLength(1);
    await writeFile(join(first.rootfs, 'new.txt'), 'new\n');
    expect(existsSync(join(marker, 'volatile'))).toBe(true);
    await unmountRootfs(first);
    expect(existsSync(marker)).toBe(false);
    expect(await readdir(join(home, 'overlay2', 'top', 'work'))).toEqual(['work']);
    expect(await readFile(join(snapshotter.fileRoot('top'), 'new.txt'), 'utf8')).toBe('new\n');

    // A process killed between its unmount and the marker's removal: the kernel would refuse
    // this upper and work dir until the marker is gone.
    const killed = await mountRootfs(mounts, async () => join(home, 'killed'));
    await unmount(killed.rootfs);
    expect(existsSync(join(marker, 'volatile'))).toBe(true);
    const again = await mountRootfs(mounts, async () => join(home, 'again'));
    expect(await readFile(join(again.rootfs, 'new.txt'), 'utf8')).toBe('new\n');
    expect(await readFile(join(again.rootfs, 'base.txt'), 'utf8')).toBe('base\n');
    await unmountRootfs(again);
    expect(existsSync(marker)).toBe(false);
  });
});
