// A store on a 24 MB tmpfs: a build whose layer does not fit, a RUN that fills the disk, and a
// load that does not fit each fail with one error line saying what was being written, exit
// non-zero, and leave the store as it was: earlier images and tags intact, no half layer, no
// temp dir, no mount.
import { execa } from 'execa';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountsBelow, ok, rootWithBusybox, tempDir, tsbuild, type CliResult } from '../helpers/tsbuild.js';
import { inconsistencies, leftovers, tags } from './store-check.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** The one `Error:` line of a failed command, which must also be its last line on stderr. */
function errorLine(r: CliResult): string {
  const lines = r.stderr.trim().split('\n');
  const errors = lines.filter((l) => l.startsWith('Error:'));
  expect({ errors: errors.length, last: lines.at(-1) }).toEqual({ errors: 1, last: errors[0] });
  return errors[0]!;
}

/** A 24 MB tmpfs: a store's disk that fills. */
async function smallDisk(): Promise<string> {
  const mnt = await mkdtemp(join(tmpdir(), 'tsbuild-diskfull-'));
  const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt], { reject: false });
  if (m.exitCode !== 0) throw new Error(`cannot mount a tmpfs at ${mnt} (this test runs as root): ${m.stderr}`);
  return mnt;
}

async function removeDisk(mnt: string): Promise<void> {
  for (const m of (await mountsBelow(mnt)).reverse()) await execa('umount', ['-l', m], { reject: false });
  await rm(mnt, { recursive: true, force: true });
}

describe('disk full', () => {
  let mnt: string;
  let root: string;
  const dirs: string[] = [];
  let before: Record<string, string>;

  const context = async (files: Record<string, string | Buffer>): Promise<string> => {
    const d = await tempDir();
    dirs.push(d);
    for (const [name, content] of Object.entries(files)) await writeFile(join(d, name), content);
    return d;
  };

  /** Nothing half-done, nothing temporary, and the images from before still there. */
  const expectIntact = async (): Promise<void> => {
    expect(await inconsistencies(root)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
    expect(await tags(root)).toEqual(before);
    expect(await ok(root, ['run', 'small:1', 'cat', '/small'])).toBe('small\n');
  };

  beforeAll(async () => {
    mnt = await smallDisk();
    root = join(mnt, 'store');
    await ok(root, ['bootstrap', 'busybox']);
    await ok(root, [
      'build',
      '-t',
      'small:1',
      await context({ Dockerfile: 'FROM busybox\nCOPY small /small\nRUN echo ok > /ok\n', small: 'small\n' }),
    ]);
    before = await tags(root);
  });

  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    if (mnt) await removeDisk(mnt);
  });

  test('a COPY whose layer does not fit: one clear error, the store as it was', async () => {
    const ctx = await context({ Dockerfile: 'FROM small:1\nCOPY big /big\n', big: Buffer.alloc(40 << 20, 1) });
    const r = await tsbuild(root, ['build', '-t', 'big:1', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(errorLine(r)).toMatch(
      new RegExp(
        `^Error: Dockerfile:2: no space left on device while writing this step's files into its layer: the filesystem holding the store ${root} is full`,
      ),
    );
    await expectIntact();
  });

  test('a RUN that fills the disk fails as the command failed, and the store is as it was', async () => {
    const ctx = await context({ Dockerfile: 'FROM small:1\nRUN dd if=/dev/zero of=/fill bs=1M count=40\n' });
    const r = await tsbuild(root, ['build', '-t', 'fill:1', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('No space left on device');
    expect(errorLine(r)).toMatch(/^Error: Dockerfile:2: RUN dd .* exited with code 1$/);
    await expectIntact();
  });

  test('a load that does not fit: one clear error naming the layer, the store as it was', async () => {
    const other = await rootWithBusybox();
    try {
      await ok(other.root, [
        'build',
        '-t',
        'huge:1',
        await context({ Dockerfile: 'FROM busybox\nCOPY huge /huge\n', huge: Buffer.alloc(30 << 20, 2) }),
      ]);
      const archive = join(dirs[dirs.length - 1]!, 'huge.tar');
      await ok(other.root, ['save', '-o', archive, 'huge:1']);
      const r = await tsbuild(root, ['load', '-i', archive]);
      expect(r.exitCode).not.toBe(0);
      expect(errorLine(r)).toMatch(
        new RegExp(
          `^Error: no space left on device while unpacking layer 2 of 2 \\(sha256:[0-9a-f]{64}\\): the filesystem holding the store ${root} is full`,
        ),
      );
      await expectIntact();
    } finally {
      await other.cleanup();
    }
  });

  test('save to a full disk: one error line, the store as it was', async () => {
    const fill = join(mnt, 'fill');
    try {
      // Whatever room is left, taken (dd stops at ENOSPC).
      await execa('dd', ['if=/dev/zero', `of=${fill}`, 'bs=1M'], { reject: false });
      const r = await tsbuild(root, ['save', '-o', join(mnt, 'out.tar'), 'small:1']);
      expect(r.exitCode).toBe(1);
      expect(errorLine(r)).toMatch(/^Error: no space left on device.*: a disk this command writes to is full$/);
    } finally {
      await rm(fill, { force: true });
      await rm(join(mnt, 'out.tar'), { force: true });
    }
    await expectIntact();
  });

  test('once there is room again, the same store builds', async () => {
    const ctx = await context({ Dockerfile: 'FROM small:1\nCOPY fits /fits\n', fits: Buffer.alloc(1 << 20, 3) });
    await ok(root, ['build', '-t', 'fits:1', ctx]);
    expect(await inconsistencies(root)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
  });
});

// A disk with 0 bytes free: the store can still shrink (rmi, prune), and what cannot be written
// (a build's step, a pull's layer) says what and, for a build, at which line.
describe('a full disk', () => {
  let mnt: string;
  let root: string;
  let registry: TestRegistry | undefined;
  const fill = (): string => join(mnt, 'fill');

  beforeAll(async () => {
    mnt = await smallDisk();
    root = join(mnt, 'store');
    await ok(root, ['bootstrap', 'busybox']);
    for (const n of [1, 2]) {
      const ctx = await tempDir();
      await writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nRUN head -c 1000000 /dev/urandom > /r${n}\n`);
      await ok(root, ['build', '-t', `img:${n}`, ctx]);
    }
    // Every byte left, taken (dd stops at ENOSPC).
    await execa('dd', ['if=/dev/zero', `of=${fill()}`, 'bs=64k'], { reject: false });
    const { stdout } = await execa('df', ['--output=avail', '-B1', mnt]);
    expect(Number(stdout.split('\n')[1])).toBe(0);
  });

  afterAll(async () => {
    await registry?.stop();
    if (mnt) await removeDisk(mnt);
  });

  test('a build says what it could not write, at its line', async () => {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM img:1\nCOPY data /data\n');
    await writeFile(join(ctx, 'data'), Buffer.alloc(2 << 20, 5));
    const r = await tsbuild(root, ['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(errorLine(r)).toMatch(/^Error: Dockerfile:2: no space left on device while .*: the filesystem holding the store .* is full/);
  });

  test('a pull says which layer it could not write', async () => {
    registry = await startRegistry();
    const other = await rootWithBusybox();
    try {
      const ctx = await tempDir();
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN head -c 2000000 /dev/urandom > /big\n');
      await ok(other.root, ['build', '-t', `${registry.host}/big:1`, '--push', ctx]);
    } finally {
      await other.cleanup();
    }
    const r = await tsbuild(root, ['pull', `${registry.host}/big:1`]);
    expect(r.exitCode).toBe(1);
    expect(errorLine(r)).toMatch(
      /^Error: no space left on device while downloading layer sha256:[0-9a-f]{64} \(\d+ bytes\): the filesystem holding the store/,
    );
  });

  test('rmi and prune still free space, and the store stays consistent', async () => {
    const r = await tsbuild(root, ['rmi', 'img:2']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Untagged: img:2\nDeleted: sha256:/);
    await ok(root, ['tag', 'img:1', 'img:spare']);
    expect((await tsbuild(root, ['rmi', 'img:1'])).exitCode).toBe(0);
    expect((await tsbuild(root, ['rmi', 'img:spare'])).exitCode).toBe(0);
    const p = await tsbuild(root, ['prune', '-a', '-f']);
    expect(p.exitCode).toBe(0);
    expect((await ok(root, ['images'])).split('\n').filter((l) => l.startsWith('img '))).toEqual([]);
    expect(await inconsistencies(root)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
    // With room again, the reserve is made by the next command and the store builds.
    await rm(fill(), { force: true });
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo ok > /ok\n');
    await ok(root, ['build', '-t', 'again:1', ctx]);
    expect((await stat(join(root, 'reserve'))).size).toBe(1 << 20);
  });
});
