// runInContainer on real namespaces: what a RUN step sees, checked from inside and from the host.
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { HelperError, helperPath, mount, runArgs, runInContainer, unmount } from '../../src/runtime/helper.js';
import type { BindMount, RunSpec } from '../../src/runtime/types.js';
import { APP_GID, APP_UID, makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { Collector, hostPids, uniqueSleep, waitFor } from '../helpers/steps.js';

let root: string;
let rootfs: string;

beforeAll(async () => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
  root = await mkdtemp(join(tmpdir(), 'tsbuild-run-'));
  rootfs = join(root, 'rootfs');
  await makeBusyboxRootfs(rootfs);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function spec(overrides: Partial<RunSpec>): RunSpec {
  return {
    rootfs,
    argv: ['true'],
    env: ['PATH=/usr/local/bin:/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    groups: [],
    hostname: 'tsbuild-test',
    network: 'host',
    binds: [],
    ...overrides,
  };
}

async function run(overrides: Partial<RunSpec>, signal?: AbortSignal) {
  const stdout = new Collector();
  const stderr = new Collector();
  const { exitCode } = await runInContainer(spec(overrides), { stdout, stderr, ...(signal ? { signal } : {}) });
  return { exitCode, stdout: stdout.text, stderr: stderr.text };
}

function sh(script: string, overrides: Partial<RunSpec> = {}) {
  return run({ argv: ['sh', '-c', script], ...overrides });
}

describe('exit status', () => {
  test('is the command exit code', async () => {
    expect((await sh('exit 0')).exitCode).toBe(0);
    expect((await sh('exit 3')).exitCode).toBe(3);
  });

  test('is 127 with a message when the command does not exist', async () => {
    const r = await run({ argv: ['no-such-command'] });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('tsbuild-helper: exec no-such-command: No such file or directory');
  });

  test('is 126 when the command is not executable', async () => {
    await writeFile(join(rootfs, 'usr/local/bin/not-executable'), '#!/bin/sh\necho never\n', { mode: 0o644 });
    const r = await run({ argv: ['not-executable'] });
    expect(r.exitCode).toBe(126);
    expect(r.stderr).toContain('Permission denied');
  });

  test('PID 1 survives its own kill -9, as in Docker (init ignores signals it does not handle)', async () => {
    const r = await sh('kill -9 $$; echo survived');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'survived\n' });
  });

  test('is 128+9 when the command is killed by SIGKILL from the host', async () => {
    const argv = uniqueSleep();
    const running = run({ argv });
    const [pid] = await waitFor('the sleep', async () => {
      const pids = await hostPids(argv);
      return pids.length ? pids : undefined;
    });
    process.kill(pid!, 'SIGKILL');
    expect((await running).exitCode).toBe(137);
  });

  test('a command that fails but prints is still a result, not an exception', async () => {
    const r = await sh('echo partial; exit 42');
    expect(r).toMatchObject({ exitCode: 42, stdout: 'partial\n' });
  });
});

describe('output', () => {
  test('stdout and stderr arrive separately', async () => {
    const r = await sh('echo to-out; echo to-err >&2; echo more-out');
    expect(r.stdout).toBe('to-out\nmore-out\n');
    expect(r.stderr).toBe('to-err\n');
  });

  test('is streamed while the step runs', async () => {
    const stdout = new Collector();
    let settled = false;
    const running = runInContainer(spec({ argv: ['sh', '-c', 'echo first; sleep 1; echo second'] }), { stdout }).finally(() => {
      settled = true;
    });
    await stdout.seen('first');
    expect(settled).toBe(false);
    expect(stdout.text).toBe('first\n');
    await running;
    expect(stdout.text).toBe('first\nsecond\n');
  });
});

describe('namespaces', () => {
  test('the command is PID 1 and /proc shows only the step', async () => {
    const r = await sh('echo $$; tr "\\0" " " < /proc/1/cmdline; echo; ls /proc | grep -c "^[0-9]"');
    const [pid, cmdline, count] = r.stdout.split('\n');
    expect(pid).toBe('1');
    expect(cmdline).toContain('sh -c');
    expect(Number(count)).toBeLessThan(6);
  });

  test('hostname is the one given', async () => {
    expect((await run({ argv: ['hostname'], hostname: 'step-host' })).stdout).toBe('step-host\n');
  });

  test('network none has only lo, and it is up', async () => {
    const r = await sh('cat /proc/net/dev; cat /sys/class/net/lo/flags', { network: 'none' });
    const names = r.stdout
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':')[0]!.trim());
    expect(names).toEqual(['lo']);
    // IFF_UP | IFF_LOOPBACK
    expect(r.stdout.trim().split('\n').pop()).toBe('0x9');
  });

  test('network host (the default) sees the host interfaces', async () => {
    const interfaces = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':')[0]!.trim())
        .sort();
    const r = await run({ argv: ['cat', '/proc/net/dev'] });
    expect(interfaces(r.stdout)).toEqual(interfaces(await readFile('/proc/net/dev', 'utf8')));
  });
});

describe('filesystem', () => {
  test('/dev has working null, zero and the usual nodes and links', async () => {
    const r = await sh(
      'echo discard > /dev/null && head -c 4 /dev/zero | od -An -tx1 && test -c /dev/urandom && test -c /dev/full ' +
        '&& test -c /dev/tty && test -d /dev/pts && test -d /dev/shm && readlink /dev/ptmx && readlink /dev/fd && echo via-link > /dev/stderr',
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')).toEqual([' 00 00 00 00', 'pts/ptmx', '/proc/self/fd', '']);
    expect(r.stderr).toBe('via-link\n');
  });

  test('/sys is read-only', async () => {
    const r = await sh('grep " /sys " /proc/mounts; touch /sys/x');
    expect(r.stdout).toMatch(/ \/sys sysfs ro,/);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('Read-only file system');
  });

  test('the host root is not reachable and nothing is mounted outside the container', async () => {
    const r = await sh('cat /proc/mounts');
    const mountPoints = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[1]);
    expect(mountPoints[0]).toBe('/');
    for (const m of mountPoints) expect(m).toMatch(/^\/((proc|dev|sys)(\/.*)?)?$/);
    // Nothing of the step's mounts is visible on the host.
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(rootfs);
  });

  test("capabilities are Docker's default set", async () => {
    const r = await run({ argv: ['grep', 'CapBnd', '/proc/self/status'] });
    expect(r.stdout.trim()).toBe('CapBnd:\t00000000a80425fb');
  });

  test('cwd is created with root-owned 0755 parents if missing', async () => {
    const r = await run({ argv: ['pwd'], cwd: '/work/deep/dir' });
    expect(r.stdout).toBe('/work/deep/dir\n');
    for (const dir of ['work', 'work/deep', 'work/deep/dir']) {
      const st = await stat(join(rootfs, dir));
      expect({ dir, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }).toEqual({ dir, mode: 0o755, uid: 0, gid: 0 });
    }
    await rm(join(rootfs, 'work'), { recursive: true });
  });
});

describe('process', () => {
  test('the environment is exactly the one given', async () => {
    const env = ['PATH=/bin', 'FOO=bar baz', 'EMPTY=', 'MULTI=a=b'];
    const r = await run({ argv: ['env'], env });
    expect(r.stdout.trim().split('\n').sort()).toEqual([...env].sort());
  });

  test('the command is found in the PATH of that environment', async () => {
    await writeFile(join(rootfs, 'usr/local/bin/hello'), '#!/bin/sh\necho from-local\n', { mode: 0o755 });
    expect((await run({ argv: ['hello'] })).stdout).toBe('from-local\n');
    expect((await run({ argv: ['hello'], env: ['PATH=/bin'] })).exitCode).toBe(127);
    expect((await run({ argv: ['true'], env: [] })).exitCode).toBe(127);
    expect((await run({ argv: ['/bin/true'], env: [] })).exitCode).toBe(0);
  });

  test('runs as the given uid, gid and supplementary groups', async () => {
    const r = await run({ argv: ['id'], uid: APP_UID, gid: APP_GID, groups: [10, 29] });
    expect(r.stdout.trim()).toBe('uid=1000(app) gid=1000(app) groups=10(wheel),29(audio)');
    const nobody = await sh('id; touch /not-allowed', { uid: 65534, gid: 65534 });
    expect(nobody.stdout.trim()).toBe('uid=65534(nobody) gid=65534(nogroup)');
    expect(nobody.stderr).toContain('Permission denied');
    expect(existsSync(join(rootfs, 'not-allowed'))).toBe(false);
  });

  test('root has umask 022', async () => {
    expect((await sh('umask')).stdout.trim()).toBe('0022');
  });
});

describe('binds', () => {
  test('hosts, resolv.conf and hostname come from the caller, and leave no trace in the rootfs', async () => {
    const files = join(root, 'files');
    await rm(files, { recursive: true, force: true });
    await execa('mkdir', ['-p', files]);
    await writeFile(join(files, 'hosts'), '127.0.0.1 localhost\n');
    await writeFile(join(files, 'resolv.conf'), 'nameserver 192.0.2.53\n');
    await writeFile(join(files, 'hostname'), 'bound-host\n');
    const binds: BindMount[] = [
      { type: 'bind', source: join(files, 'hosts'), target: '/etc/hosts' },
      { type: 'bind', source: join(files, 'resolv.conf'), target: '/etc/resolv.conf' },
      { type: 'bind', source: join(files, 'hostname'), target: '/etc/hostname', readonly: true },
    ];
    const r = await sh('cat /etc/hosts /etc/resolv.conf /etc/hostname; echo "192.0.2.1 added" >> /etc/hosts; echo nope > /etc/hostname', {
      binds,
    });
    expect(r.stdout).toBe('127.0.0.1 localhost\nnameserver 192.0.2.53\nbound-host\n');
    expect(r.stderr).toContain('Read-only file system');
    expect(await readFile(join(files, 'hosts'), 'utf8')).toBe('127.0.0.1 localhost\n192.0.2.1 added\n');
    expect(await readFile(join(files, 'hostname'), 'utf8')).toBe('bound-host\n');
    // The mount points made for the binds are gone: the step's layer will not contain them.
    for (const f of ['hosts', 'resolv.conf', 'hostname']) expect(existsSync(join(rootfs, 'etc', f))).toBe(false);
  });

  test('a bind target under a missing directory is created and removed again', async () => {
    const source = join(root, 'data.txt');
    await writeFile(source, 'data\n');
    const r = await run({ argv: ['cat', '/srv/deep/data.txt'], binds: [{ type: 'bind', source, target: '/srv/deep/data.txt' }] });
    expect(r.stdout).toBe('data\n');
    expect(existsSync(join(rootfs, 'srv'))).toBe(false);
  });

  test('a symlink in the rootfs cannot redirect a bind target to the host', async () => {
    const source = join(root, 'evil.txt');
    const outside = join(root, 'outside');
    await writeFile(source, 'evil\n');
    await execa('ln', ['-s', outside, join(rootfs, 'escape')]);
    try {
      const r = await run({ argv: ['cat', '/escape/file'], binds: [{ type: 'bind', source, target: '/escape/file' }] });
      expect(r.stdout).toBe('evil\n');
      // The link was resolved inside the rootfs (its target became rootfs/<root>/outside), never on the host.
      expect(existsSync(outside)).toBe(false);
    } finally {
      await rm(join(rootfs, 'escape'));
      await rm(join(rootfs, root), { recursive: true, force: true });
    }
  });
});

describe('overlay rootfs', () => {
  test('a step on an overlay mount writes only to the upper layer', async () => {
    const layer = join(root, 'overlay');
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(layer, d), { recursive: true });
    const merged = join(layer, 'merged');
    await mount({
      type: 'overlay',
      source: 'overlay',
      target: merged,
      options: 'lowerdir=../rootfs,upperdir=upper,workdir=work',
      cwd: layer,
    });
    try {
      const hosts = join(root, 'overlay-hosts');
      await writeFile(hosts, '127.0.0.1 localhost\n');
      const r = await sh('echo built > /tmp/out && cat /etc/hosts && rm /bin/vi', {
        rootfs: merged,
        binds: [{ type: 'bind', source: hosts, target: '/etc/hosts' }],
      });
      expect(r).toMatchObject({ exitCode: 0, stdout: '127.0.0.1 localhost\n' });
      expect(await readFile(join(layer, 'upper/tmp/out'), 'utf8')).toBe('built\n');
      // The deletion is a whiteout in the upper layer; the lower layer is untouched.
      expect((await lstat(join(layer, 'upper/bin/vi'))).isCharacterDevice()).toBe(true);
      expect(existsSync(join(rootfs, 'bin/vi'))).toBe(true);
      // No stub for the bind target is left in the layer.
      expect(existsSync(join(layer, 'upper/etc/hosts'))).toBe(false);
    } finally {
      await unmount(merged);
      await rm(layer, { recursive: true, force: true });
    }
  });
});

describe('lifetime', () => {
  test('abort kills the step and every process it started', async () => {
    const argv = uniqueSleep();
    const stdout = new Collector();
    const controller = new AbortController();
    const running = runInContainer(spec({ argv: ['sh', '-c', `${argv.join(' ')} & ${argv.join(' ')} & echo ready; wait`] }), {
      stdout,
      signal: controller.signal,
    });
    await stdout.seen('ready');
    await waitFor('both sleeps', async () => ((await hostPids(argv)).length === 2 ? true : undefined));
    controller.abort();
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(await hostPids(argv)).toEqual([]);
  });

  test('an already aborted signal does not start anything', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(runInContainer(spec({}), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  test('the step dies with tsbuild even on kill -9 (parent-death signal)', async () => {
    const argv = uniqueSleep();
    // A host shell stands in for tsbuild: it starts the helper and is then killed with SIGKILL.
    const parent = execa('/bin/sh', ['-c', '"$0" "$@" & wait', helperPath(), ...runArgs(spec({ argv }))], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      reject: false,
    });
    await waitFor('the sleep', async () => ((await hostPids(argv)).length === 1 ? true : undefined));
    parent.kill('SIGKILL');
    await parent;
    await waitFor('the step to die', async () => ((await hostPids(argv)).length === 0 ? true : undefined), 5000);
  });
});

describe('setup failures', () => {
  test('a missing rootfs is a HelperError, not an exit code', async () => {
    const err = await runInContainer(spec({ rootfs: join(root, 'missing') })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelperError);
    expect((err as HelperError).message).toMatch(/^tsbuild-helper: rootfs .*missing: No such file or directory$/);
    expect((err as HelperError).exitCode).toBe(125);
  });

  test('a missing bind source is a HelperError naming it', async () => {
    const source = join(root, 'no-such-file');
    await expect(runInContainer(spec({ binds: [{ type: 'bind', source, target: '/etc/hosts' }] }))).rejects.toThrow(
      new RegExp(`bind source ${source}: No such file or directory`),
    );
  });

  test('a relative working directory is refused before anything runs', () => {
    expect(() => runArgs(spec({ cwd: 'relative' }))).toThrow(/not absolute/);
  });
});

describe('helper binary', () => {
  test('a missing helper names the fix', async () => {
    const saved = process.env.TSBUILD_HELPER;
    process.env.TSBUILD_HELPER = join(root, 'no-helper');
    try {
      await expect(runInContainer(spec({}))).rejects.toThrow(/npm run build:helper/);
    } finally {
      if (saved === undefined) delete process.env.TSBUILD_HELPER;
      else process.env.TSBUILD_HELPER = saved;
    }
  });

  test('helperPath points into the package by default', () => {
    if (process.env.TSBUILD_HELPER) return;
    expect(helperPath()).toMatch(/\/native\/out\/tsbuild-helper$/);
  });
});
