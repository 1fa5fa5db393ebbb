// RUN --mount through runInContainer on real namespaces: binds, tmpfs, secret files and secret
// environment variables as the step sees them, and what they leave in the rootfs afterwards.
// That a secret leaves no trace anywhere on the host is test/security/sandbox.test.ts's job.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelperError, helperPath, runArgs, runInContainer } from '../../src/runtime/helper.js';
import type { StepMount } from '../../src/runtime/types.js';
import { APP_GID, APP_UID, makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { stepsIn } from '../helpers/steps.js';

let root: string;
let rootfs: string;

beforeAll(async () => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
  root = await mkdtemp(join(tmpdir(), 'tsbuild-run-mounts-'));
  rootfs = join(root, 'rootfs');
  await makeBusyboxRootfs(rootfs);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const { spec, sh } = stepsIn(() => rootfs, { hostname: 'mounts' });

/** A host directory for one test, under the test's temporary root. */
async function hostDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

function secret(target: string, data: string | Buffer, mode = 0o400, uid = 0, gid = 0): StepMount {
  return { type: 'secret', target, data: Buffer.from(data), mode, uid, gid };
}

/** The mount options (field 6) and the root inside the mounted filesystem (field 4) of the mount at POINT, from mountinfo TEXT. */
function mountAt(text: string, point: string): { root: string; options: string; fstype: string } | undefined {
  for (const line of text.trim().split('\n')) {
    const [fields, rest] = line.split(' - ') as [string, string];
    const f = fields.split(' ');
    if (f[4] === point) return { root: f[3]!, options: f[5]!, fstype: rest.split(' ')[0]! };
  }
  return undefined;
}

describe('bind mounts', () => {
  test('a directory, read-write or read-only: writes reach the host only through the first', async () => {
    const dir = await hostDir('shared');
    await writeFile(join(dir, 'in.txt'), 'from the host\n');
    const r = await sh('cat /mnt/rw/in.txt /mnt/ro/in.txt; echo from-step > /mnt/rw/out.txt; touch /mnt/ro/refused', {
      mounts: [
        { type: 'bind', source: dir, target: '/mnt/rw', readonly: false },
        { type: 'bind', source: dir, target: '/mnt/ro', readonly: true },
      ],
    });
    expect(r.stdout).toBe('from the host\nfrom the host\n');
    expect(r.stderr).toContain('Read-only file system');
    expect(await readFile(join(dir, 'out.txt'), 'utf8')).toBe('from-step\n');
    expect(existsSync(join(dir, 'refused'))).toBe(false);
    // The mount points made for the step are gone: its layer will not contain them.
    expect(existsSync(join(rootfs, 'mnt'))).toBe(false);
  });

  test('a file, over a file of the image', async () => {
    const file = join(await hostDir('file'), 'app.conf');
    await writeFile(file, 'bound\n');
    await writeFile(join(rootfs, 'etc', 'app.conf'), 'image\n');
    try {
      const r = await sh('cat /etc/app.conf', { mounts: [{ type: 'bind', source: file, target: '/etc/app.conf', readonly: true }] });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'bound\n' });
      expect(await readFile(join(rootfs, 'etc', 'app.conf'), 'utf8')).toBe('image\n');
    } finally {
      await rm(join(rootfs, 'etc', 'app.conf'));
    }
  });

  test('a Unix socket keeps its type, owner and mode (SSH agent forwarding)', async () => {
    const socket = join(await hostDir('agent'), 'agent.sock');
    const server = createServer((connection) => connection.end());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      await chown(socket, APP_UID, APP_GID);
      await chmod(socket, 0o600);
      const r = await sh('test -S /run/buildkit/ssh_agent.0 && stat -c "%a %u %g" /run/buildkit/ssh_agent.0', {
        mounts: [{ type: 'bind', source: socket, target: '/run/buildkit/ssh_agent.0', readonly: false }],
      });
      expect(r).toMatchObject({ exitCode: 0, stdout: `600 ${APP_UID} ${APP_GID}\n` });
      expect(existsSync(join(rootfs, 'run'))).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('nested targets are mounted in the order given, each inside the one before', async () => {
    const src = await hostDir('nested-src');
    await writeFile(join(src, 'main.c'), 'int main;\n');
    const r = await sh('cat /work/src/main.c; grep -o " /work[^ ]* " /proc/self/mountinfo; echo scratch > /work/out/x && ls /work', {
      mounts: [
        { type: 'tmpfs', target: '/work' },
        { type: 'bind', source: src, target: '/work/src', readonly: true },
        { type: 'tmpfs', target: '/work/out' },
      ],
    });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'int main;\n /work \n /work/src \n /work/out \nout\nsrc\n' });
    // The inner targets were made on the first tmpfs, not in the rootfs or the bound directory.
    expect(existsSync(join(rootfs, 'work'))).toBe(false);
    expect(existsSync(join(src, 'out'))).toBe(false);
  });
});

describe('tmpfs mounts', () => {
  test('are fresh, with the mount point’s mode, nosuid and nodev, and what is written there does not reach the rootfs', async () => {
    await writeFile(join(rootfs, 'tmp', 'from-image'), 'image\n');
    try {
      const r = await sh(
        'ls -A /tmp; stat -c %a /tmp; grep " /tmp " /proc/self/mountinfo; echo data > /tmp/new && cat /tmp/new; stat -c %a /made-for-it',
        {
          mounts: [
            { type: 'tmpfs', target: '/tmp' },
            { type: 'tmpfs', target: '/made-for-it' },
          ],
        },
      );
      const lines = r.stdout.split('\n');
      // `ls -A` printed nothing: the image's file is under the tmpfs, not in it. The image's /tmp
      // is 1777; a directory made for the mount is 0755 (runc's rule, which Docker builds show).
      expect(lines[0]).toBe('1777');
      expect(mountAt(lines[1]!, '/tmp')).toMatchObject({ fstype: 'tmpfs', options: 'rw,nosuid,nodev,relatime' });
      expect(lines[2]).toBe('data');
      expect(lines[3]).toBe('755');
      await rm(join(rootfs, 'made-for-it'), { recursive: true, force: true });
      expect(existsSync(join(rootfs, 'tmp', 'new'))).toBe(false);
    } finally {
      await rm(join(rootfs, 'tmp', 'from-image'));
    }
  });

  test('with a size, hold no more than that', async () => {
    const r = await sh(
      'df -k /cache | tail -1 | tr -s " " | cut -d" " -f2; dd if=/dev/zero of=/cache/fits bs=1024 count=1024 2>/dev/null && echo fits; dd if=/dev/zero of=/cache/too-big bs=1024 count=1024',
      {
        mounts: [{ type: 'tmpfs', target: '/cache', sizeBytes: 1536 * 1024 }],
      },
    );
    expect(r.stdout).toBe('1536\nfits\n');
    expect(r.stderr).toContain('No space left on device');
    expect(r.exitCode).not.toBe(0);
  });
});

describe('secret files', () => {
  test('have the given mode, owner and group, and are read-only even for root', async () => {
    const mounts = [secret('/run/secrets/token', 's3cr3t\n', 0o440, APP_UID, APP_GID)];
    const asRoot = await sh(
      'stat -c "%a %u %g" /run/secrets/token; cat /run/secrets/token; echo x > /run/secrets/token; rm /run/secrets/token',
      {
        mounts,
      },
    );
    expect(asRoot.stdout).toBe(`440 ${APP_UID} ${APP_GID}\ns3cr3t\n`);
    expect(asRoot.stderr).toContain('Read-only file system');
    expect((await sh('cat /run/secrets/token', { mounts, uid: APP_UID, gid: APP_GID })).stdout).toBe('s3cr3t\n');
    const nobody = await sh('cat /run/secrets/token', { mounts, uid: 65534, gid: 65534 });
    expect(nobody.stderr).toContain('Permission denied');
    expect(existsSync(join(rootfs, 'run'))).toBe(false);
  });

  test('only the file itself is visible, not the tmpfs it lives on; noexec unless the mode says otherwise', async () => {
    const r = await sh('cat /proc/self/mountinfo; echo ===; ls -A /run/secrets /dev; tool', {
      mounts: [secret('/run/secrets/a', 'a'), secret('/usr/local/bin/tool', '#!/bin/sh\necho tool ran\n', 0o755)],
      env: ['PATH=/usr/local/bin:/bin'],
    });
    const [mountinfo, listing] = r.stdout.split('===\n') as [string, string];
    // The mount's root inside its tmpfs is the file, not the tmpfs's directory.
    expect(mountAt(mountinfo, '/run/secrets/a')).toEqual({ root: '/secret', fstype: 'tmpfs', options: 'ro,nosuid,nodev,noexec,relatime' });
    expect(mountAt(mountinfo, '/usr/local/bin/tool')).toEqual({ root: '/secret', fstype: 'tmpfs', options: 'ro,nosuid,nodev,relatime' });
    expect(listing).toContain('/run/secrets:\na\n');
    expect(listing).not.toContain('secret-stage');
    expect(listing.trim().split('\n').pop()).toBe('tool ran');
  });

  test('may be empty or exactly 500 KiB (BuildKit’s limit); a byte more is a setup error naming the target, not the content', async () => {
    const limit = 500 * 1024;
    const r = await sh('wc -c < /run/secrets/empty; wc -c < /run/secrets/max', {
      mounts: [secret('/run/secrets/empty', ''), secret('/run/secrets/max', Buffer.alloc(limit, 'x'))],
    });
    expect(r.stdout).toBe(`0\n${limit}\n`);
    const err = await runInContainer(spec({ mounts: [secret('/run/secrets/big', Buffer.alloc(limit + 1, 'y'))] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelperError);
    expect(err).toMatchObject({
      exitCode: 125,
      message: "tsbuild-helper: the secret for /run/secrets/big is larger than 500 KiB, BuildKit's limit for a secret",
    });
    expect((err as HelperError).command.join(' ')).not.toContain('yyyy');
  });
});

describe('secret environment variables', () => {
  test('reach the step, replacing a variable of the same name', async () => {
    const r = await sh('env | sort', {
      env: ['PATH=/bin', 'TOKEN=public', 'OTHER=kept'],
      secretEnv: [
        { name: 'TOKEN', value: Buffer.from('hidden value=with an equals sign') },
        { name: 'EMPTY', value: Buffer.alloc(0) },
      ],
    });
    expect(r.stdout.trim().split('\n')).toEqual([
      'EMPTY=',
      'OTHER=kept',
      'PATH=/bin',
      'PWD=/',
      'SHLVL=1',
      'TOKEN=hidden value=with an equals sign',
    ]);
  });

  test('a NUL byte in a value is a setup error naming the variable, not the value', async () => {
    const err = await runInContainer(spec({ secretEnv: [{ name: 'TOKEN', value: Buffer.from('before\0after') }] })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HelperError);
    expect(err).toMatchObject({
      exitCode: 125,
      message: 'tsbuild-helper: secret environment variable TOKEN: the value contains a NUL byte, which no environment variable can hold',
    });
    expect((err as HelperError).message).not.toContain('before');
  });
});

describe('the helper command line', () => {
  test('names each secret’s pipe by number and never holds its bytes', () => {
    const args = runArgs(
      spec({
        mounts: [{ type: 'tmpfs', target: '/t', sizeBytes: 4096 }, secret('/run/secrets/a', 'file-secret', 0o440, 1, 2)],
        secretEnv: [{ name: 'TOKEN', value: Buffer.from('env-secret') }],
        privileged: true,
      }),
    );
    expect(args.join(' ')).toContain('--privileged');
    expect(args.join(' ')).toContain('--tmpfs /t:4096 --secret-file 4:/run/secrets/a:0440:1:2 --secret-env 5:TOKEN -- ');
    expect(args.join(' ')).not.toMatch(/file-secret|env-secret/);
  });

  test('refuses targets it could not pass on and sizes that are not a limit', () => {
    expect(() => runArgs(spec({ mounts: [{ type: 'tmpfs', target: '/a:b' }] }))).toThrow(/absolute path without ':'/);
    expect(() => runArgs(spec({ mounts: [{ type: 'tmpfs', target: 'relative' }] }))).toThrow(/absolute path without ':'/);
    expect(() => runArgs(spec({ mounts: [{ type: 'tmpfs', target: '/t', sizeBytes: 0 }] }))).toThrow(/at least 1/);
    expect(() => runArgs(spec({ mounts: [secret('/s', 'x', 0o10000)] }))).toThrow(/not a file mode/);
    expect(() => runArgs(spec({ mounts: [{ type: 'bind', source: 'relative', target: '/x', readonly: true }] }))).toThrow(/not absolute/);
  });
});
