// Rootless tsbuild (docs/rootless.md): ordinary users that this file creates, one with a
// subordinate ID range and one without, bootstrap, build, run and list images with their own
// store, and get the same layers as root; an arm64 build's RUN runs under QEMU in the user
// namespace (scripts/setup.sh registers the aarch64 handler).
//
// Runs as root (it creates the users, test/rootless/users.ts) and needs `newuidmap`/`newgidmap`
// (Debian's uidmap) and fuse-overlayfs. A machine's /dev/fuse may be closed to ordinary users
// (mode 0600): the fuse-overlayfs tests run the user's tsbuild in a mount namespace of their own
// where a /dev/fuse of the mode they need is bound over it, so the machine's own is never changed.
import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { allPids, waitFor } from '../helpers/steps.js';
import { CLI, ok, tempRoot } from '../helpers/tsbuild.js';
import { asUser, context, createUsers, okAsUser, removeUsers, type User, type Users } from './users.js';

let users: Users | undefined;
let withRange: User;
let singleId: User;
let base: string;

function diffIds(inspectOutput: string): string[] {
  return (JSON.parse(inspectOutput) as { RootFS: { Layers: string[] } }[])[0]!.RootFS.Layers;
}

beforeAll(async () => {
  const found = await execa('sh', ['-c', 'command -v fuse-overlayfs'], { reject: false });
  if (found.exitCode !== 0)
    throw new Error('fuse-overlayfs is missing: install it with `apt-get install fuse-overlayfs` (scripts/setup.sh does)');
  users = await createUsers('rl');
  ({ withRange, singleId, base } = users);
});

afterAll(async () => {
  await removeUsers(users);
});

describe('rootless, with a subordinate ID range', () => {
  test('bootstrap, build with COPY and RUN, images and run, in ~/.local/share/tsbuild', async () => {
    await okAsUser(withRange, ['bootstrap', 'busybox']);
    const info = await okAsUser(withRange, ['info']);
    expect(info).toContain(`Store root: ${withRange.home}/.local/share/tsbuild`);
    expect(info).toContain('Storage driver: overlay2');
    expect(info).toMatch(/Rootless: yes, as root of a user namespace \(subordinate ID ranges\)/);
    expect(info).toMatch(/UID map: 0 -> \d+, 1 -> \d+ \(\d+\)/);
    await access(join(withRange.home, '.local/share/tsbuild'), constants.R_OK);

    const ctx = await context(withRange, 'FROM busybox\nCOPY a.txt /a.txt\nRUN id -u > /uid && touch /f && chown 1000:1000 /f\n');
    await okAsUser(withRange, ['build', '-t', 'rl:1', ctx]);
    expect(await okAsUser(withRange, ['images'])).toMatch(/^rl\s+1\s/m);
    const out = await okAsUser(withRange, ['run', 'rl:1', 'sh', '-c', 'cat /uid /a.txt; stat -c %u:%g /f']);
    expect(out).toBe('0\nhello\n1000:1000\n');
  });

  test('build --platform linux/arm64: RUN under QEMU in the user namespace (the handler has the F flag)', async () => {
    // The arm64 busybox-static package, downloaded by the user's own apt-get download.
    await okAsUser(withRange, ['bootstrap', 'busybox', '--platform', 'linux/arm64', '-t', 'busybox:arm64']);
    const ctx = await context(withRange, 'FROM busybox:arm64\nRUN uname -m > /arch && id -u > /uid && touch /f && chown 1000:1000 /f\n');
    await okAsUser(withRange, ['build', '--platform', 'linux/arm64', '-t', 'rl:arm64', ctx]);
    const out = await okAsUser(withRange, ['run', 'rl:arm64', 'sh', '-c', 'cat /arch /uid; stat -c %u:%g /f']);
    expect(out).toBe('aarch64\n0\n1000:1000\n');
  });

  test('a USER of the subordinate range runs its step', async () => {
    const ctx = await context(withRange, 'FROM busybox\nUSER 1000:1000\nRUN id -u > /tmp/who\n');
    await okAsUser(withRange, ['build', '-t', 'rl:user', ctx]);
    expect(await okAsUser(withRange, ['run', 'rl:user', 'cat', '/tmp/who'])).toBe('1000\n');
  });
});

describe('rootless, with a single ID', () => {
  test('builds and runs, and tsbuild info says how to add a range', async () => {
    await okAsUser(singleId, ['bootstrap', 'busybox']);
    const info = await okAsUser(singleId, ['info']);
    expect(info).toContain('a single ID');
    expect(info).toContain(`Missing: ${singleId.name} has no range in /etc/subuid and /etc/subgid; as root: usermod --add-subuids`);

    const ctx = await context(singleId, 'FROM busybox\nCOPY a.txt /a.txt\nRUN id -u > /uid && touch /f\n');
    await okAsUser(singleId, ['build', '-t', 'one', ctx]);
    expect(await okAsUser(singleId, ['images'])).toMatch(/^one\s+latest\s/m);
    expect(await okAsUser(singleId, ['run', 'one', 'cat', '/uid'])).toBe('0\n');
  });

  test('a USER outside the map fails with one line naming the step and the cause', async () => {
    const ctx = await context(singleId, 'FROM busybox\nUSER 1000\nRUN true\n');
    const r = await asUser(singleId, ['build', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:3: .*setuid 1000: the user is not mapped in tsbuild's user namespace/);
  });
});

describe('rootless layers are root layers', () => {
  // COPY, a RUN that deletes a file (a whiteout) and one that replaces a directory (an opaque
  // directory, user.overlay.opaque in the rootless upper dir): the same tars as root's.
  const dockerfile =
    'FROM busybox\nCOPY a.txt /a.txt\nCOPY d /d\nRUN mkdir /o && touch /o/a /o/c\nRUN rm -rf /o && mkdir /o && touch /o/b && rm /bin/zcat\n';

  test('--reproducible gives the same diff_ids rootless and as root', async () => {
    const ctx = await context(withRange, dockerfile);
    await okAsUser(withRange, ['build', '--reproducible', '-t', 'same', ctx]);
    const rootless = diffIds(await okAsUser(withRange, ['inspect', 'same']));

    const t = await tempRoot();
    try {
      await ok(t.root, ['bootstrap', 'busybox']);
      await ok(t.root, ['build', '--reproducible', '-t', 'same', ctx]);
      const asRoot = diffIds(await ok(t.root, ['inspect', 'same']));
      expect(rootless).toEqual(asRoot);
      expect(rootless).toHaveLength(5);
    } finally {
      await t.cleanup();
    }
    expect(await okAsUser(withRange, ['run', 'same', 'sh', '-c', 'ls /o; test -e /bin/zcat || echo gone'])).toBe('b\ngone\n');
  });
});

describe('rootless storage through fuse-overlayfs', () => {
  // The kernel here mounts overlayfs in a user namespace, so fuse-overlayfs is forced: the same
  // overlay2 layout, mounted by the FUSE program, whose whiteouts and opaque marks differ.
  const dockerfile =
    'FROM busybox\nCOPY a.txt /a.txt\nCOPY d /d\nRUN mkdir /o && touch /o/a /o/c\nRUN rm -rf /o && mkdir /o && touch /o/b && rm /bin/zcat\n';
  /** /dev/fuse as most distributions make it (0666), and as this machine may (0600). */
  let fuseOpen: string;
  let fuseClosed: string;

  beforeAll(async () => {
    fuseOpen = join(base, 'fuse-open');
    fuseClosed = join(base, 'fuse-closed');
    await execa('mknod', ['-m', '666', fuseOpen, 'c', '10', '229']);
    await execa('mknod', ['-m', '600', fuseClosed, 'c', '10', '229']);
  });

  test('--reproducible gives the same diff_ids as the kernel overlayfs, whiteout and opaque directory included', async () => {
    const ctx = await context(withRange, dockerfile);
    const fuseRoot = join(withRange.home, 'store-fuse');
    const kernelRoot = join(withRange.home, 'store-kernel');
    const fuse = (args: string[]) =>
      okAsUser(withRange, ['--root', fuseRoot, '--storage-driver', 'fuse-overlayfs', ...args], undefined, fuseOpen);
    await fuse(['bootstrap', 'busybox']);
    const info = await fuse(['info']);
    expect(info).toContain('Storage driver: overlay2');
    expect(info).toMatch(/Why: chosen with --storage-driver fuse-overlayfs: fuse-overlayfs mounts the overlay2 layout/);
    await fuse(['build', '--reproducible', '-t', 'same', ctx]);
    const viaFuse = diffIds(await fuse(['inspect', 'same']));
    expect(await fuse(['run', 'same', 'sh', '-c', 'ls /o; test -e /bin/zcat || echo gone'])).toBe('b\ngone\n');

    await okAsUser(withRange, ['--root', kernelRoot, 'bootstrap', 'busybox']);
    await okAsUser(withRange, ['--root', kernelRoot, 'build', '--reproducible', '-t', 'same', ctx]);
    const viaKernel = diffIds(await okAsUser(withRange, ['--root', kernelRoot, 'inspect', 'same']));
    expect(viaFuse).toEqual(viaKernel);
    expect(viaFuse).toHaveLength(5);

    // The store remembers its mounter: the kernel's overlayfs cannot read fuse-overlayfs's marks.
    const again = await asUser(withRange, ['--root', fuseRoot, '--storage-driver', 'overlay2', 'info']);
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr).toContain('was written through fuse-overlayfs');
  });

  test('RUN --mount=type=bind,rw writes through fuse-overlayfs too, and the writes vanish', async () => {
    const ctx = await context(
      withRange,
      'FROM busybox\nRUN --mount=type=bind,target=/ctx,rw grep " /ctx " /proc/self/mountinfo | sed "s/.* - //" | cut -d" " -f1 > /ctx-fs && echo changed > /ctx/a.txt && cat /ctx/a.txt > /seen\n',
    );
    const root = join(withRange.home, 'store-fuse-rw');
    const fuse = (args: string[]) =>
      okAsUser(withRange, ['--root', root, '--storage-driver', 'fuse-overlayfs', ...args], undefined, fuseOpen);
    await fuse(['bootstrap', 'busybox']);
    await fuse(['build', '-t', 'rw', ctx]);
    // The scratch overlay is mounted as the store's are (it was the kernel's overlayfs).
    expect(await fuse(['run', 'rw', 'cat', '/ctx-fs', '/seen'])).toBe('fuse.fuse-overlayfs\nchanged\n');
    expect(await readFile(join(ctx, 'a.txt'), 'utf8')).toBe('hello\n');
  });

  test('kill -9 of tsbuild mid-RUN ends the whole build: the step, the FUSE daemon, the namespace', async () => {
    const root = join(withRange.home, 'store-fuse-kill');
    const args = ['--root', root, '--storage-driver', 'fuse-overlayfs'];
    await okAsUser(withRange, [...args, 'bootstrap', 'busybox'], undefined, fuseOpen);
    const marker = `1000${process.pid % 100000}`;
    const ctx = await context(withRange, `FROM busybox\nRUN sleep ${marker}\n`);
    const build = asUser(withRange, [...args, 'build', ctx], withRange.home, fuseOpen);
    // This build's processes, found by what they run (and killed only by PID).
    const running = async () => {
      const found: { pid: number; ppid: number; cmd: string }[] = [];
      for (const pid of await allPids()) {
        const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (cmd.includes(root) || cmd.startsWith(`sleep ${marker}`)) found.push({ pid, ppid, cmd });
      }
      return found;
    };
    const procs = await waitFor(
      'the step and its FUSE daemon',
      async () => {
        const p = await running();
        const ready = p.some((x) => x.cmd.startsWith(`sleep ${marker}`)) && p.some((x) => x.cmd.startsWith('fuse-overlayfs -f'));
        return ready ? p : undefined;
      },
      60_000,
    );
    // The tsbuild the user started (runuser's child), not the one it runs in its namespace.
    const outer = procs.find(
      (x) => x.cmd.startsWith(`${process.execPath} ${CLI}`) && procs.find((y) => y.pid === x.ppid)?.cmd.startsWith('runuser'),
    );
    if (!outer) throw new Error(`no outer tsbuild among ${JSON.stringify(procs)}`);
    process.kill(outer.pid, 'SIGKILL');
    // Everything goes with it: the helper that made the namespace, the tsbuild inside, the
    // step, and the FUSE daemon, whose mounts then go with the namespace.
    await waitFor('the build to end', async () => ((await running()).length === 0 ? true : undefined), 30_000);
    expect((await build).exitCode).toBe(137);
    // The next command repairs what the killed one left in the store, and works.
    expect(await okAsUser(withRange, [...args, 'images'], undefined, fuseOpen)).toMatch(/^busybox\s+latest/m);
  });

  test('a /dev/fuse closed to the user fails a forced fuse-overlayfs with one line saying why', async () => {
    const r = await asUser(
      withRange,
      ['--root', join(withRange.home, 'store-closed'), '--storage-driver', 'fuse-overlayfs', 'info'],
      undefined,
      fuseClosed,
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(
      /storage driver fuse-overlayfs is not usable here: a test fuse-overlayfs mount failed: .*\/dev\/fuse: Permission denied/,
    );
  });
});
