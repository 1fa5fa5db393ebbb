// `tsbuild run`'s mounts and environment as docker run takes them: -v (read-write and :ro),
// --mount type=bind|tmpfs, --tmpfs, --env-file, --entrypoint, --name; and bad input, which is
// one error line and exit 125 before any container exists.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, contextOf, mountsBelow, ok, REPO, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

/**
 * `node -- CLI ARGS`: Node 20 reads a `--env-file` anywhere on its own command line as its
 * option (nodejs/node#54232) unless `--` ends its options.
 */
async function tsbuildAfterDashes(root: string, args: readonly string[], env: Record<string, string> = {}) {
  const r = await execa('node', ['--', CLI, args[0]!, '--root', root, ...args.slice(1)], {
    reject: false,
    stripFinalNewline: false,
    cwd: REPO,
    env: { ...env, TSBUILD_ROOT: '' },
    stdin: 'ignore',
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('tsbuild run mounts and environment', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let host: string;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
    host = await tempDir('tsbuild-vol-');
    await writeFile(join(host, 'in.txt'), 'from the host\n');
  });
  afterAll(async () => env?.cleanup());
  afterEach(async () => {
    expect(await mountsBelow(env.root)).toEqual([]);
  });

  test('-v HOST:CONTAINER is read-write, :ro refuses writes', async () => {
    const rw = await tsbuild(env.root, ['run', '-v', `${host}:/data`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo out > /data/out.txt']);
    expect(rw).toMatchObject({ exitCode: 0, stdout: 'from the host\n' });
    expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('out\n');
    const ro = await tsbuild(env.root, ['run', '-v', `${host}:/data:ro`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo x > /data/ro.txt']);
    expect(ro.exitCode).toBe(1);
    expect(ro.stdout).toBe('from the host\n');
    expect(ro.stderr).toContain('Read-only file system');
  });

  test('--mount type=bind, readonly too, and a file', async () => {
    const r = await tsbuild(env.root, [
      'run',
      '--mount',
      `type=bind,source=${host},target=/a/b`,
      '--mount',
      `type=bind,src=${join(host, 'in.txt')},dst=/etc/motd,readonly`,
      'busybox',
      'sh',
      '-c',
      'cat /a/b/in.txt /etc/motd; echo no >> /etc/motd || echo refused',
    ]);
    expect(r.stdout).toBe('from the host\nfrom the host\nrefused\n');
  });

  test('--mount type=tmpfs and --tmpfs: size and mode, 1777 by default as docker', async () => {
    const r = await tsbuild(env.root, [
      'run',
      '--mount',
      'type=tmpfs,target=/t,tmpfs-size=1m',
      '--tmpfs',
      '/scratch:size=2m,mode=700',
      '--tmpfs',
      '/plain',
      'busybox',
      'sh',
      '-c',
      "for d in /t /scratch /plain; do stat -c '%A %n' $d; done; df -k /t /scratch | awk 'NR>1{print $2}'",
    ]);
    expect(r.stdout).toBe('drwxrwxrwt /t\ndrwx------ /scratch\ndrwxrwxrwt /plain\n1024\n2048\n');
  });

  test('--env-file: KEY=VALUE lines, comments, a bare KEY from the host; -e wins', async () => {
    const dir = await tempDir();
    const file = join(dir, 'env');
    await writeFile(file, '# a comment\nA=1\n\nB= two words \nFROM_HOST\nNOT_ON_HOST\nC=3\n');
    const r = await tsbuildAfterDashes(
      env.root,
      ['run', '--env-file', file, '-e', 'C=override', 'busybox', 'sh', '-c', 'echo "$A|$B|$FROM_HOST|${NOT_ON_HOST-unset}|$C"'],
      { FROM_HOST: 'host value' },
    );
    expect(r).toMatchObject({ exitCode: 0, stdout: '1| two words |host value|unset|override\n' });
  });

  test('--entrypoint replaces the image’s, and the Cmd with it; "" clears it', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nENTRYPOINT ["echo", "entry"]\nCMD ["cmd"]\n' });
    await ok(env.root, ['build', '-q', '-t', 'withentry', ctx]);
    expect((await tsbuild(env.root, ['run', 'withentry'])).stdout).toBe('entry cmd\n');
    expect((await tsbuild(env.root, ['run', '--entrypoint', 'printf', 'withentry', '%s-x\n', 'a'])).stdout).toBe('a-x\n');
    expect((await tsbuild(env.root, ['run', '--entrypoint', '', 'withentry', 'echo', 'cleared'])).stdout).toBe('cleared\n');
  });

  test('--name and --rm are accepted; --hostname sets the host name', async () => {
    const r = await tsbuild(env.root, ['run', '--rm', '--name', 'web-1', '--hostname', 'box', 'busybox', 'hostname']);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'box\n' });
  });

  test.each([
    [['-v', '/no/such/dir:/x'], 'Error: -v /no/such/dir:/x: bind source path /no/such/dir does not exist\n'],
    [['-v', 'myvolume:/x'], 'Error: -v myvolume:/x: named volumes are not supported: the host path must be absolute or start with .\n'],
    [['-v', '/tmp:relative'], 'Error: -v /tmp:relative: the container path relative is not absolute\n'],
    [['-v', '/tmp:/x:z'], 'Error: -v /tmp:/x:z: unsupported option z (use ro or rw)\n'],
    [['--mount', 'type=bind,target=/x'], 'Error: --mount type=bind,target=/x: source is required for a bind mount\n'],
    [['--mount', 'type=volume,target=/x'], 'Error: --mount type=volume,target=/x: type volume is not supported: use bind or tmpfs\n'],
    [
      ['--mount', 'type=tmpfs,target=/x,tmpfs-size=lots'],
      'Error: --mount type=tmpfs,target=/x,tmpfs-size=lots: invalid size lots (bytes, or with k, m or g)\n',
    ],
    [['--tmpfs', '/x:noexec'], 'Error: --tmpfs /x:noexec: unsupported option noexec (use size=, mode= or rw)\n'],
    [['--tmpfs', '/x', '-v', '/tmp:/x'], 'Error: duplicate mount point: /x\n'],
    [['--name', 'no spaces'], 'Error: invalid container name "no spaces": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\n'],
    [['--env-file', '/no/such/env'], 'Error: --env-file /no/such/env: no such file\n'],
  ])('bad input %j: one line, exit 125', async (flags, message) => {
    const r = await tsbuildAfterDashes(env.root, ['run', ...flags, 'busybox', 'true']);
    expect(r).toEqual({ exitCode: 125, stdout: '', stderr: message });
  });

  test('a mount the helper refuses (a file over a directory): one line, 125, nothing left mounted', async () => {
    const r = await tsbuild(env.root, ['run', '-v', `${join(host, 'in.txt')}:/etc`, 'busybox', 'true']);
    expect(r).toEqual({ exitCode: 125, stdout: '', stderr: 'Error: tsbuild-helper: /etc in the root filesystem is a directory\n' });
  });

  test('an unreadable env file', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'adir'));
    const r = await tsbuildAfterDashes(env.root, ['run', '--env-file', join(dir, 'adir'), 'busybox', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^Error: --env-file .*adir: EISDIR: illegal operation on a directory, read\n$/);
  });
});
