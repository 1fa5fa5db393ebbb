// RUN steps on real overlay mounts: what the upperdir holds after each kind of change, and what
// the committed layer tar says about it.
import { join } from 'node:path';
import type { Digest } from '../../src/digest.js';
import { layerEntries, type TarEntry } from '../helpers/layers.js';
import { contextOf, mountsBelow, ok, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';
import { hostInterfaces } from '../helpers/steps.js';

const context = (dockerfile: string, files: Record<string, string> = {}): Promise<string> =>
  contextOf({ Dockerfile: dockerfile, ...files });

const byName = (entries: TarEntry[]) => new Map(entries.map((e) => [e.name, e]));

describe('RUN', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());
  afterEach(async () => {
    expect(await mountsBelow(env.root)).toEqual([]);
  });

  async function build(dockerfile: string, tag: string, files?: Record<string, string>, extra: string[] = []) {
    const out = await ok(env.root, ['build', '--progress', 'plain', '-t', tag, ...extra, await context(dockerfile, files)]);
    const [img] = JSON.parse(await ok(env.root, ['inspect', tag]));
    return { out, img: img as { Id: Digest; RootFS: { Layers: Digest[] }; Config: Record<string, unknown> } };
  }

  const layer = (img: { RootFS: { Layers: Digest[] } }, i: number) =>
    layerEntries(env.root, 'overlay2', img.RootFS.Layers, i < 0 ? img.RootFS.Layers.length + i : i);

  test('output streams and each RUN is one layer', async () => {
    const { out, img } = await build('FROM busybox\nRUN echo hello-from-run && echo to-stderr >&2\nRUN true\n', 'run-out');
    expect(out).toContain('hello-from-run');
    expect(img.RootFS.Layers).toHaveLength(3);
    // A RUN that changes nothing records the empty tar, as Docker's classic builder does.
    expect(img.RootFS.Layers[2]).toBe('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  });

  test('deleting a base file is a whiteout; replacing a directory is opaque', async () => {
    const { img } = await build(
      'FROM busybox\nRUN mkdir -p /data/old && echo x > /data/old/f && echo keep > /data/keep\n' +
        'RUN rm /bin/ls && rm -rf /data && mkdir /data && echo new > /data/new\n',
      'run-delete',
    );
    const entries = byName(await layer(img, -1));
    expect(entries.get('bin/.wh.ls')).toMatchObject({ type: '-', size: 0 });
    expect(entries.get('data/')).toMatchObject({ type: 'd' });
    expect(entries.get('data/.wh..wh..opq')).toMatchObject({ type: '-', size: 0 });
    expect(entries.get('data/new')).toMatchObject({ type: '-', size: 4 });
    expect(entries.has('data/old/')).toBe(false);
    // and the image seen from above agrees
    const ls = await tsbuild(env.root, ['run', 'run-delete', 'sh', '-c', 'ls /data; test -e /bin/ls || echo no-ls']);
    expect(ls.stdout).toBe('new\nno-ls\n');
  });

  test('chmod and chown of a lower file copy it up with the new metadata; setuid is kept', async () => {
    const { img } = await build('FROM busybox\nRUN chmod 4755 /bin/busybox && chown 33:33 /etc/passwd\n', 'run-copyup');
    const entries = byName(await layer(img, -1));
    expect(entries.get('bin/busybox')).toMatchObject({ type: '-', mode: 'rwsr-xr-x', owner: '0/0' });
    expect(entries.get('etc/passwd')).toMatchObject({ type: '-', owner: '33/33' });
    expect(entries.has('bin/')).toBe(true); // parents are copied up too
  });

  test('symlinks and hardlinks', async () => {
    const { img } = await build('FROM busybox\nRUN mkdir /l && echo data > /l/a && ln /l/a /l/b && ln -s a /l/c\n', 'run-links');
    const entries = byName(await layer(img, -1));
    expect(entries.get('l/a')).toMatchObject({ type: '-', size: 5 });
    expect(entries.get('l/b')).toMatchObject({ type: 'h', link: 'l/a' });
    expect(entries.get('l/c')).toMatchObject({ type: 'l', link: 'a' });
  });

  test('USER, WORKDIR, ENV, ARG, exec form and SHELL', async () => {
    const { out, img } = await build(
      [
        'FROM busybox',
        'ARG BUILD_NOTE=from-arg',
        'ENV APP_MODE=production',
        'WORKDIR /srv/app',
        'RUN pwd > /tmp/pwd && echo "$APP_MODE $BUILD_NOTE" > /tmp/vars',
        'USER nobody',
        'RUN ["/bin/sh", "-c", "id -u > /tmp/uid-exec || echo $(id -u) >&2"]',
        'RUN echo "uid=$(id -u) gid=$(id -g)"',
        'USER root',
        'SHELL ["/bin/echo", "via-new-shell"]',
        'RUN shell-changed',
      ].join('\n'),
      'run-config',
      {},
      ['--build-arg', 'BUILD_NOTE=given'],
    );
    expect(out).toContain('uid=65534 gid=65534');
    expect(out).toContain('via-new-shell shell-changed\n'); // the shell-form RUN went through the new SHELL
    const vars = await tsbuild(env.root, ['run', 'run-config', 'cat', '/tmp/pwd', '/tmp/vars', '/tmp/uid-exec']);
    expect(vars.stdout).toBe('/srv/app\nproduction given\n65534\n');
    const env_ = img.Config.Env as string[];
    expect(env_).toContain('APP_MODE=production');
    expect(env_.some((e) => e.startsWith('BUILD_NOTE'))).toBe(false); // ARG is not persisted
    expect(img.Config.WorkingDir).toBe('/srv/app');
  });

  test('WORKDIR creates its directory in a layer, owned by the USER, as BuildKit does', async () => {
    const { img } = await build('FROM busybox\nUSER nobody\nWORKDIR /data/app\nWORKDIR /tmp\nRUN pwd\n', 'run-workdir');
    // busybox, WORKDIR /data/app (created), RUN; /tmp exists so its WORKDIR adds no layer
    expect(img.RootFS.Layers).toHaveLength(3);
    const entries = byName(await layer(img, 1));
    expect(entries.get('data/')).toMatchObject({ type: 'd', mode: 'rwxr-xr-x', owner: '65534/65534' });
    expect(entries.get('data/app/')).toMatchObject({ type: 'd', mode: 'rwxr-xr-x', owner: '65534/65534' });
    const history = JSON.parse(await ok(env.root, ['inspect', 'run-workdir']))[0];
    expect(history.Config.WorkingDir).toBe('/tmp');
  });

  test('the init layer’s files are in no layer', async () => {
    const { out, img } = await build(
      'FROM busybox\nRUN cat /etc/hosts /etc/hostname && test -f /etc/resolv.conf && echo 1.2.3.4 extra >> /etc/hosts && touch /marker\nRUN grep -c extra /etc/hosts || echo fresh-hosts\n',
      'run-init',
    );
    expect(out).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
    expect(out).toContain('fresh-hosts'); // the next step gets a new init layer
    const all = await Promise.all(img.RootFS.Layers.map((_d, i) => layer(img, i)));
    expect(byName(all[1]!).has('marker')).toBe(true);
    for (const entries of all) {
      for (const name of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf']) expect(byName(entries).has(name)).toBe(false);
    }
  });

  test('--network=none sees only lo; the default shares the host network', async () => {
    const list = "echo \"ifaces: $(awk -F: 'NR>2{print $1}' /proc/net/dev | tr -d ' ' | sort | tr '\\n' ' ')\"";
    const { out } = await build(`FROM busybox\nRUN --network=none ${list}\nRUN ${list}\n`, 'run-net');
    const lines = out.split('\n').filter((l) => l.startsWith('ifaces: '));
    expect(lines[0]).toBe('ifaces: lo ');
    const host = await hostInterfaces();
    expect(lines[1]).toBe(`ifaces: ${host.join(' ')} `);
  });

  test('a failing RUN names its line and exit code, removes its half layer, leaves nothing mounted', async () => {
    const before = (await import('node:fs/promises')).readdir(join(env.root, 'overlay2'));
    const ctx = await context('FROM busybox\nRUN echo ok\nRUN echo partial > /partial && exit 3\n');
    const r = await tsbuild(env.root, ['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('Error: Dockerfile:3: RUN echo partial > /partial && exit 3 exited with code 3');
    const after = await (await import('node:fs/promises')).readdir(join(env.root, 'overlay2'));
    // The first RUN's layer may stay (it is cached for the next build); the failing one must not.
    expect(after.length - (await before).length).toBeLessThanOrEqual(1);
  });

  test('a USER that does not exist, and an image without /bin/sh, say so', async () => {
    const r1 = await tsbuild(env.root, ['build', await context('FROM busybox\nUSER ghost\nRUN true\n')]);
    expect(r1.stderr.trim()).toMatch(/^Error: Dockerfile:3: .*unable to find user ghost/);
    const r2 = await tsbuild(env.root, ['build', await context('FROM scratch\nCOPY f /f\nRUN true\n', { f: 'x' })]);
    expect(r2.stderr.trim()).toMatch(/^Error: Dockerfile:3: RUN needs \/bin\/sh/);
  });
});
