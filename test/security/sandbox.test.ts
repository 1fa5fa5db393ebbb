// What a RUN step can and cannot reach, checked from inside the step (docs/security.md cites
// each test here). The steps run on a busybox rootfs through the same helper a build uses;
// the last test goes through `tsbuild build` to show a Dockerfile's RUN gets the same sandbox.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { helperPath, runInContainer } from '../../src/runtime/helper.js';
import type { RunSpec } from '../../src/runtime/types.js';
import { APP_GID, APP_UID, makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { allPids, hostPids, stepsIn, uniqueSleep, waitFor } from '../helpers/steps.js';
import { CLI, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

let root: string;
let rootfs: string;

beforeAll(async () => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
  root = await mkdtemp(join(tmpdir(), 'tsbuild-sandbox-'));
  rootfs = join(root, 'rootfs');
  await makeBusyboxRootfs(rootfs);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const { spec: stepSpec, sh } = stepsIn(() => rootfs, { hostname: 'sandbox' });

/** The fields of /proc/self/status that describe privileges, as the step sees them. */
async function privileges(overrides: Partial<RunSpec> = {}): Promise<Record<string, string>> {
  const r = await sh('grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status', overrides);
  expect(r.exitCode).toBe(0);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/:\s+/) as [string, string]),
  );
}

/**
 * Docker's default capabilities (moby oci/caps/defaults.go): CHOWN DAC_OVERRIDE FSETID FOWNER
 * MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
 */
const DOCKER_DEFAULT_CAPS = [0, 1, 3, 4, 27, 13, 6, 7, 31, 8, 10, 18, 5, 29].reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);
const hex = (mask: bigint) => mask.toString(16).padStart(16, '0');

/** This test process's own capability sets (as root: everything the host grants, which may be less than every capability). */
async function ownCapabilities(): Promise<Record<string, string>> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Object.fromEntries(status.split('\n').flatMap((l) => (/^Cap\w+:/.test(l) ? [l.split(/:\s+/) as [string, string]] : [])));
}

/** The host's mounts that a leak from a step would add: any under the test's root, any tmpfs. */
async function hostMountsOfInterest(): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8'))
    .trim()
    .split('\n')
    .filter((l) => l.includes(root) || l.split(' - ')[1]?.startsWith('tmpfs '));
}

describe('processes', () => {
  test('the step sees only its own processes and cannot signal the host’s', async () => {
    // Our own PID on the host: a number the step must not be able to reach.
    const r = await sh(`ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; kill -0 ${process.pid} && echo reached`);
    const pids = r.stdout.split('\n')[0]!.trim().split(' ').map(Number);
    // sh (PID 1), and at most the pipeline's own children.
    expect(pids[0]).toBe(1);
    expect(pids.every((p) => p < 20)).toBe(true);
    expect(r.stdout).not.toContain('reached');
    expect(r.stderr).toMatch(/No such process/);
  });
});

describe('mounts', () => {
  test('the step sees its root, /proc, /dev, /sys and the init files, nothing of the host', async () => {
    const files = join(root, 'hosts');
    await writeFile(files, '127.0.0.1 localhost\n');
    const r = await sh('cat /proc/self/mountinfo', { binds: [{ type: 'bind', source: files, target: '/etc/hosts' }] });
    const points = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[4]!);
    expect(points[0]).toBe('/');
    for (const p of points) expect(p).toMatch(/^\/(|(proc|dev|sys)(\/.*)?|etc\/hosts)$/);
    expect(points).toEqual(expect.arrayContaining(['/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/etc/hosts']));
    // The host's own mount points (other than /) do not appear, not even as paths.
    const hostPoints = (await readFile('/proc/self/mountinfo', 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[4]!);
    for (const p of hostPoints.filter((h) => !/^\/(proc|dev|sys)?(\/|$)/.test(h))) expect(points).not.toContain(p);
  });

  test('the step can neither unmount, remount nor mount anything', async () => {
    // Other processes mount and unmount meanwhile: compare the host's system mounts, and ours.
    const hostMounts = async () =>
      (await readFile('/proc/self/mountinfo', 'utf8'))
        .split('\n')
        .filter((l) => /^\/(proc|sys|dev)?$/.test(l.split(' ')[4] ?? '') || l.includes(root));
    const hostBefore = await hostMounts();
    const r = await sh(
      [
        'umount /proc && echo unmounted-proc',
        'umount -l / && echo unmounted-root',
        'mount -o remount,rw /sys && echo remounted-sys',
        'mount -o remount,ro / && echo remounted-root',
        'mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted-tmpfs',
        'mount --bind /bin /mnt && echo bound',
        'mount -t proc proc /mnt && echo mounted-proc',
        'echo done',
      ].join('; '),
    );
    expect(r.stdout).toBe('done\n');
    expect(r.stderr.match(/Operation not permitted|permission denied/gi)?.length).toBe(7);
    expect(await hostMounts()).toEqual(hostBefore);
  });

  test('/sys, /proc/sys and the other kernel files Docker protects are read-only or hidden', async () => {
    const r = await sh(
      'echo 1 > /proc/sys/fs/file-max && echo wrote-sysctl; touch /sys/x && echo wrote-sys; ' +
        'wc -c < /proc/keys; wc -c < /proc/timer_list; ls -A /proc/acpi /sys/firmware | grep -v : | grep -c .; ' +
        'grep -E " /(proc/(sys|bus|fs|irq)|sys) " /proc/self/mountinfo | cut -d" " -f5,6',
    );
    // Both files exist and are not empty on the host (checked so that this test can fail).
    expect((await readFile('/proc/keys', 'utf8')).length + (await readFile('/proc/timer_list', 'utf8')).length).toBeGreaterThan(0);
    expect(r.stdout).toBe(
      '0\n0\n0\n/sys ro,nosuid,nodev,noexec,relatime\n/proc/bus ro,nosuid,nodev,noexec,relatime\n/proc/fs ro,nosuid,nodev,noexec,relatime\n/proc/irq ro,nosuid,nodev,noexec,relatime\n/proc/sys ro,nosuid,nodev,noexec,relatime\n',
    );
    expect(r.stderr.match(/Read-only file system/g)?.length).toBe(2);
  });
});

describe('devices', () => {
  test('the step may create device nodes (they go into the layer, as in Docker) but cannot open them', async () => {
    // Devices the host's root can open and Docker's device cgroup keeps from a container.
    for (const dev of ['/dev/loop-control', '/dev/loop0']) await (await open(dev, 'r')).close();
    const opens = (path: string) => `(exec 3< ${path}) 2>/dev/null && echo opened ${path}`;
    const r = await sh(
      [
        'mknod /tmp/loop-control c 10 237 && echo made',
        'mknod /tmp/loop0 b 7 0 && echo made',
        'mknod /dev/loop0 b 7 0 && echo made',
        'mknod /dev/shm/loop0 b 7 0 && echo made',
        opens('/tmp/loop-control'),
        opens('/tmp/loop0'),
        opens('/dev/loop0'),
        opens('/dev/shm/loop0'),
        // The devices every container gets still work.
        'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && (echo x > /dev/full || echo full)',
        'ls -l /dev/null /dev/tty | cut -c1',
      ].join('; '),
    );
    expect(r.stdout).toBe('made\nmade\nmade\nmade\n4\n4\nfull\nc\nc\n');
    for (const f of ['loop0', 'loop-control']) await rm(join(rootfs, 'tmp', f));
  });

  test('nor a device node in a bind-mounted directory or a tmpfs the step asked for (every mount is nodev)', async () => {
    const dir = join(root, 'with-device');
    await mkdir(dir, { recursive: true });
    await execa('mknod', [join(dir, 'loop-control'), 'c', '10', '237']);
    try {
      const r = await sh(
        '(exec 3< /mnt/loop-control) || echo refused; mknod /scratch/loop-control c 10 237 && (exec 3< /scratch/loop-control) || echo refused',
        {
          mounts: [
            { type: 'bind', source: dir, target: '/mnt', readonly: false },
            { type: 'tmpfs', target: '/scratch' },
          ],
        },
      );
      expect(r.stdout).toBe('refused\nrefused\n');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test('a device node in the image cannot be opened either', async () => {
    await execa('mknod', [join(rootfs, 'loop-control'), 'c', '10', '237']);
    try {
      const r = await sh('ls -l /loop-control | cut -c1; (exec 3< /loop-control) || echo refused');
      expect(r.stdout).toBe('c\nrefused\n');
      expect(r.stderr).toMatch(/Permission denied/);
    } finally {
      await rm(join(rootfs, 'loop-control'));
    }
  });
});

describe('privileges', () => {
  test('root in a step has exactly Docker’s default capabilities, nothing inheritable or ambient', async () => {
    const p = await privileges();
    expect(p).toMatchObject({
      CapInh: hex(0n),
      CapPrm: hex(DOCKER_DEFAULT_CAPS),
      CapEff: hex(DOCKER_DEFAULT_CAPS),
      CapBnd: hex(DOCKER_DEFAULT_CAPS),
      CapAmb: hex(0n),
    });
  });

  test('a USER step has no capabilities, and the bounding set keeps setuid programs to Docker’s set', async () => {
    const p = await privileges({ uid: APP_UID, gid: APP_GID });
    expect(p).toMatchObject({ CapInh: hex(0n), CapPrm: hex(0n), CapEff: hex(0n), CapBnd: hex(DOCKER_DEFAULT_CAPS), CapAmb: hex(0n) });
  });

  test('privileged (RUN --security=insecure): root and a USER step get every capability tsbuild has, ambient included, as in BuildKit', async () => {
    const own = await ownCapabilities();
    for (const [uid, gid] of [
      [0, 0],
      [APP_UID, APP_GID],
    ] as const) {
      const all = own.CapPrm;
      expect({ uid, ...(await privileges({ privileged: true, uid, gid })) }).toMatchObject({
        uid,
        CapInh: all,
        CapPrm: all,
        CapEff: all,
        CapBnd: own.CapBnd,
        CapAmb: all,
      });
    }
  });

  test('privileged: no masked or read-only kernel files, /sys writable, device nodes open, BuildKit’s extra devices', async () => {
    const script = [
      'stat -c %F /proc/keys /proc/timer_list',
      'grep -E " /(sys|proc/(sys|bus|fs|irq)) " /proc/self/mountinfo | cut -d" " -f5,6',
      'mknod /tmp/null2 c 1 3 && (echo x > /tmp/null2) 2>/dev/null && echo opened',
      'rm -f /tmp/null2',
      'ls /dev /dev/net | grep -xE "fuse|kvm|kmsg|cuse|tun|loop-control|loop0" | tr "\\n" " "',
    ].join('; ');
    const normal = await sh(script);
    expect(normal.stdout).toBe(
      'character special file\ncharacter special file\n/sys ro,nosuid,nodev,noexec,relatime\n/proc/bus ro,nosuid,nodev,noexec,relatime\n' +
        '/proc/fs ro,nosuid,nodev,noexec,relatime\n/proc/irq ro,nosuid,nodev,noexec,relatime\n/proc/sys ro,nosuid,nodev,noexec,relatime\n',
    );
    const privileged = await sh(script, { privileged: true });
    expect(privileged.stdout).toBe(
      'regular empty file\nregular empty file\n/sys rw,nosuid,nodev,noexec,relatime\nopened\ncuse fuse kmsg kvm loop-control loop0 tun ',
    );
  });

  test('no_new_privs stays off, as in Docker (a RUN step may use sudo or su)', async () => {
    expect((await privileges()).NoNewPrivs).toBe('0');
  });

  test('what the sandbox lacks: no seccomp filter (Docker has one)', async () => {
    // Recorded, not wished away: docs/security.md lists this difference.
    expect((await privileges()).Seccomp).toBe('0');
  });
});

describe('secrets', () => {
  test('leave no trace: in no argv or environment while the step runs (the step’s own environment aside), not in the rootfs, /tmp or /dev/shm, no pipe left open, no mount on the host', async () => {
    // Random, so that only this run's secrets can match (the test's source holds the prefixes only).
    const fileSecret = `tsbuild-file-secret-${randomBytes(16).toString('hex')}`;
    const envSecret = `tsbuild-env-secret-${randomBytes(16).toString('hex')}`;
    const mountsBefore = new Set(await hostMountsOfInterest());
    const newMounts = async () => (await hostMountsOfInterest()).filter((l) => !mountsBefore.has(l));
    const argv = uniqueSleep();
    const controller = new AbortController();
    const running = runInContainer(
      stepSpec({
        argv,
        mounts: [{ type: 'secret', target: '/run/secrets/s', data: Buffer.from(fileSecret), mode: 0o400, uid: 0, gid: 0 }],
        secretEnv: [{ name: 'TOKEN', value: Buffer.from(envSecret) }],
      }),
      { signal: controller.signal },
    );
    try {
      const [step] = await waitFor('the step', async () => {
        const pids = await hostPids(argv);
        return pids.length ? pids : undefined;
      });
      // The step has both (read through its own root and environment)...
      expect(await readFile(`/proc/${step}/root/run/secrets/s`, 'utf8')).toBe(fileSecret);
      expect((await readFile(`/proc/${step}/environ`, 'utf8')).split('\0')).toContain(`TOKEN=${envSecret}`);
      // ...and no process shows either anywhere else: not the helper, not tsbuild (this process), nothing.
      const seen: string[] = [];
      for (const pid of await allPids()) {
        for (const file of ['cmdline', 'environ']) {
          const text = await readFile(`/proc/${pid}/${file}`, 'utf8').catch(() => '');
          if (text.includes(fileSecret)) seen.push(`file secret in /proc/${pid}/${file}`);
          if (text.includes(envSecret) && !(pid === step && file === 'environ')) seen.push(`env secret in /proc/${pid}/${file}`);
        }
      }
      expect(seen).toEqual([]);
      // The pipes are closed: the step has only its stdio, and the helper's descriptors 4 and 5,
      // where the secrets' pipes came in, are no longer pipes (the helper may reuse the numbers:
      // 4 is its pidfd of the step now).
      expect(await readdir(`/proc/${step}/fd`)).toEqual(['0', '1', '2']);
      const helper = Number(/^PPid:\s+(\d+)$/m.exec(await readFile(`/proc/${step}/status`, 'utf8'))![1]);
      expect(await readFile(`/proc/${helper}/cmdline`, 'utf8')).toContain('tsbuild-helper');
      const targets = await Promise.all(['4', '5'].map((fd) => readlink(`/proc/${helper}/fd/${fd}`).catch(() => 'closed')));
      expect(targets.filter((t) => t.startsWith('pipe:'))).toEqual([]);
      // The secret's tmpfs and the step's mounts are in the step's namespace only.
      expect(await newMounts()).toEqual([]);
    } finally {
      controller.abort();
      await running.catch(() => undefined);
    }
    expect(await newMounts()).toEqual([]);
    // Nothing on disk: grep reads the patterns from stdin, so its own argv does not hold them.
    const grep = await execa('grep', ['-rlF', '-D', 'skip', '-f', '-', '/tmp', '/dev/shm', rootfs], {
      input: `${fileSecret}\n${envSecret}\n`,
      reject: false,
    });
    expect(grep.stdout).toBe('');
    // grep's status 1 is "no match"; 2 may be a file another process removed while it read.
    expect([1, 2]).toContain(grep.exitCode);
  });
});

describe('through tsbuild build', () => {
  test('capabilities tsbuild inherited do not reach the step (runc’s CVE-2022-24769)', async () => {
    const env = await rootWithBusybox();
    const ctx = await tempDir();
    try {
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN grep -E "^Cap(Inh|Prm|Eff):" /proc/self/status\n');
      // setpriv (util-linux) starts tsbuild with CAP_SYS_ADMIN inheritable.
      const r = await execa('setpriv', ['--inh-caps', '+sys_admin', 'node', CLI, 'build', '--root', env.root, '--progress', 'plain', ctx], {
        reject: false,
        all: true,
      });
      expect(r.exitCode).toBe(0);
      expect(r.all).toContain(`CapInh:\t${hex(0n)}\nCapPrm:\t${hex(DOCKER_DEFAULT_CAPS)}\nCapEff:\t${hex(DOCKER_DEFAULT_CAPS)}\n`);
    } finally {
      await rm(ctx, { recursive: true, force: true });
      await env.cleanup();
    }
  }, 120_000);

  test('a Dockerfile RUN step gets the same privileges and namespaces', async () => {
    const env = await rootWithBusybox();
    const ctx = await tempDir();
    try {
      await writeFile(
        join(ctx, 'Dockerfile'),
        'FROM busybox\nRUN grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status; umount /proc || echo no-umount\n',
      );
      const r = await tsbuild(env.root, ['build', '--progress', 'plain', ctx]);
      expect(r.exitCode).toBe(0);
      const text = r.stdout + r.stderr;
      expect(text).toContain(`CapEff:\t${hex(DOCKER_DEFAULT_CAPS)}`);
      expect(text).toContain(`CapBnd:\t${hex(DOCKER_DEFAULT_CAPS)}`);
      expect(text).toContain('NoNewPrivs:\t0');
      expect(text).toContain('no-umount');
    } finally {
      await rm(ctx, { recursive: true, force: true });
      await env.cleanup();
    }
  }, 120_000);
});
