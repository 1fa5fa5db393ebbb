// Secrets and SSH agents on real builds, the hard way: after builds that use a file secret, an
// environment secret and a required one, the secret's bytes are searched for in the whole store
// root and in the build output, and in every process's argv and environment while a step holds
// the secret; an SSH agent with a real key is forwarded into a step, where the host's own
// ssh-add (with its libraries, bound in from the context) lists the key through the socket.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { CLI, ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

/** Every file below `dir` (no symlinks followed) that contains `needle`. */
async function filesContaining(dir: string, needle: Buffer): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) found.push(...(await filesContaining(path, needle)));
    else if (e.isFile() && (await readFile(path).catch(() => Buffer.alloc(0))).includes(needle)) found.push(path);
  }
  return found;
}

async function requireTools(...paths: string[]): Promise<void> {
  for (const p of paths) {
    await execa('test', ['-x', p]).catch(() => {
      throw new Error(`${p} is missing: apt-get install -y openssh-client`);
    });
  }
}

describe('secrets and SSH', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  test('a secret reaches the step as a file and as a variable, and nowhere else', async () => {
    const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
    const ctx = await tempDir();
    const secretFile = join(await tempDir('tsbuild-secret-'), 'token');
    await writeFile(secretFile, secret);
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM busybox',
        'RUN --mount=type=secret,id=tok,required stat -c "%a %u" /run/secrets/tok > /file-mode && sha256sum < /run/secrets/tok | cut -d" " -f1 > /file-sum',
        'RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=1000 stat -c "%a %u" /etc/app/token > /target-mode',
        'RUN --mount=type=secret,id=envtok,env=TOKEN echo "${#TOKEN}" > /env-len',
        'RUN --mount=type=secret,id=absent ls /run/secrets > /absent 2>&1 || echo none > /absent',
        '',
      ].join('\n'),
    );
    const r = await tsbuild(
      env.root,
      [
        'build',
        '--progress',
        'plain',
        '--secret',
        `id=tok,src=${secretFile}`,
        '--secret',
        'id=envtok,env=SECRET_FOR_TEST',
        '-t',
        'with-secrets',
        ctx,
      ],
      {
        env: { SECRET_FOR_TEST: secret },
      },
    );
    expect(r.exitCode).toBe(0);
    const cat = (p: string) => ok(env.root, ['run', 'with-secrets', 'cat', p]);
    expect(await cat('/file-mode')).toBe('400 0\n');
    expect((await cat('/file-sum')).trim()).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(await cat('/target-mode')).toBe('440 1000\n');
    expect(await cat('/env-len')).toBe(`${secret.length}\n`);
    expect(await cat('/absent')).toBe('none\n');
    // The mount points are gone from the image.
    expect(await ok(env.root, ['run', 'with-secrets', 'sh', '-c', 'ls -d /run/secrets /etc/app 2>/dev/null || echo gone'])).toBe('gone\n');

    const needle = Buffer.from(secret);
    expect(Buffer.from(r.stdout + r.stderr).includes(needle)).toBe(false);
    expect(await filesContaining(env.root, needle)).toEqual([]);
    expect(await ok(env.root, ['inspect', 'with-secrets'])).not.toContain(secret);
    expect(await ok(env.root, ['history', '--no-trunc', 'with-secrets'])).not.toContain(secret);
  });

  test('no process shows a file secret in its argv or environment while a step holds it', async () => {
    const secret = `argv-${randomBytes(12).toString('hex')}`;
    const secretFile = join(await tempDir('tsbuild-secret-'), 'token');
    await writeFile(secretFile, secret);
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=secret,id=tok sleep 3\n');
    const child = execa(
      'node',
      [CLI, 'build', '--root', env.root, '--no-cache', '--secret', `id=tok,src=${secretFile}`, '-t', 'argv', ctx],
      {
        reject: false,
        env: { TSBUILD_ROOT: '' },
      },
    );
    const needle = Buffer.from(secret);
    const seen: string[] = [];
    let scans = 0;
    while (child.exitCode === null) {
      for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
        for (const f of ['cmdline', 'environ']) {
          const data = await readFile(`/proc/${pid}/${f}`).catch(() => Buffer.alloc(0));
          if (data.includes(needle)) seen.push(`${pid}/${f}`);
        }
      }
      scans++;
      await new Promise((r) => setTimeout(r, 200));
    }
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(scans).toBeGreaterThan(3);
    expect(seen).toEqual([]);
  });

  test('an SSH agent is forwarded: ssh-add -l in the step lists the key', async () => {
    await requireTools('/usr/bin/ssh-keygen', '/usr/bin/ssh-add', '/usr/bin/ssh-agent');
    const keys = await tempDir('tsbuild-ssh-');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild-test-key', '-f', join(keys, 'id')]);
    const fingerprint = (await execa('ssh-keygen', ['-l', '-f', join(keys, 'id.pub')])).stdout.split(' ')[1]!;
    // ssh-add and the libraries it needs, run in the busybox step through the host's loader.
    const ctx = await tempDir();
    await mkdir(join(ctx, 'tools'));
    const { stdout } = await execa('ldd', ['/usr/bin/ssh-add']);
    const libs = [...stdout.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1]!);
    for (const lib of [...libs, '/usr/bin/ssh-add']) await copyFile(lib, join(ctx, 'tools', basename(lib)));
    const loader = basename(libs.find((l) => l.includes('ld-linux'))!);
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM busybox\nRUN --mount=type=ssh,required --mount=target=/tools,source=tools /tools/${loader} --library-path /tools /tools/ssh-add -l > /keys; echo "$SSH_AUTH_SOCK" > /sock\n`,
    );
    const out = await ok(env.root, ['build', '--ssh', `default=${join(keys, 'id')}`, '-t', 'with-ssh', ctx]);
    expect(out).toBeDefined();
    const listed = await ok(env.root, ['run', 'with-ssh', 'cat', '/keys']);
    expect(listed).toContain(fingerprint);
    expect(await ok(env.root, ['run', 'with-ssh', 'cat', '/sock'])).toBe('/run/buildkit/ssh_agent.0\n');
    // The agent the build started is gone: no ssh-agent has our key's directory open.
    const agents = (await execa('pgrep', ['-a', 'ssh-agent'], { reject: false })).stdout;
    expect(agents).not.toContain(keys);
    expect(await filesContaining(env.root, await readFile(join(keys, 'id')))).toEqual([]);
  });
});
