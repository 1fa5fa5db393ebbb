// RUN --mount on real builds: bind mounts of the context and of stages (read-only, and rw whose
// writes vanish), cache mounts that survive between builds and follow BuildKit's sharing rules
// when builds run at the same time, tmpfs, and mount targets that leave no trace in the layer.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, contextOf, ok, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';
import type { Digest } from '../../src/digest.js';
import { RACY_MARGIN_MS } from '../../src/context/index.js';
import { layerEntries } from '../helpers/layers.js';

const context = contextOf;

describe('RUN --mount', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  const cat = async (image: string, path: string): Promise<string> => ok(env.root, ['run', image, 'cat', path]);
  const inspect = async (image: string): Promise<{ RootFS: { Layers: Digest[] } }> => JSON.parse(await ok(env.root, ['inspect', image]))[0];
  /** The names in the image's top layer. */
  const topLayer = async (image: string): Promise<string[]> => {
    const layers = (await inspect(image)).RootFS.Layers;
    return (await layerEntries(env.root, 'overlay2', layers, layers.length - 1)).map((e) => e.name);
  };

  test('a bind of the context is read-only and its target leaves no trace in the layer', async () => {
    const ctx = await context({
      Dockerfile:
        'FROM busybox\nRUN --mount=target=/deep/src,source=app cat /deep/src/main.txt > /out && ! touch /deep/src/x 2>/dev/null\n',
      'app/main.txt': 'from the context\n',
    });
    await ok(env.root, ['build', '-t', 'bind-ctx', ctx]);
    expect(await cat('bind-ctx', '/out')).toBe('from the context\n');
    expect(await topLayer('bind-ctx')).toEqual(['out']);
    // The rebuild is cached; a change to the bound file is a new key.
    expect(await ok(env.root, ['build', '--progress', 'plain', '-t', 'bind-ctx', ctx])).toMatch(/CACHED/);
    await writeFile(join(ctx, 'app/main.txt'), 'changed\n');
    await ok(env.root, ['build', '-t', 'bind-ctx', ctx]);
    expect(await cat('bind-ctx', '/out')).toBe('changed\n');
  });

  test('a bind of the context leaves out what .dockerignore excludes', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox\nRUN --mount=target=/src ls /src > /listing\n',
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 'no',
      'kept.txt': 'yes',
    });
    await ok(env.root, ['build', '-t', 'bind-ignore', ctx]);
    const listing = await cat('bind-ignore', '/listing');
    expect(listing.split('\n')).toContain('kept.txt');
    expect(listing).not.toContain('secret.txt');
  });

  test('a bind from a stage, and rw whose writes vanish', async () => {
    const ctx = await context({
      Dockerfile: [
        'FROM busybox AS build',
        'RUN mkdir /dist && echo built > /dist/app',
        'FROM busybox',
        'RUN --mount=from=build,source=/dist,target=/mnt/dist,rw cp /mnt/dist/app /app && echo scribble > /mnt/dist/app && cat /mnt/dist/app > /seen',
        'RUN --mount=from=build,source=/dist,target=/mnt/dist cat /mnt/dist/app > /again',
        '',
      ].join('\n'),
    });
    await ok(env.root, ['build', '-t', 'bind-stage', ctx]);
    expect(await cat('bind-stage', '/app')).toBe('built\n');
    expect(await cat('bind-stage', '/seen')).toBe('scribble\n');
    expect(await cat('bind-stage', '/again')).toBe('built\n');
    expect(await topLayer('bind-stage')).toEqual(['again']);
  });

  test('a bind without a target is mounted at the working directory, as BuildKit does', async () => {
    const ctx = await context({
      Dockerfile:
        'FROM busybox AS build\nRUN mkdir /out && echo built > /out/bin\nFROM busybox\nWORKDIR /work\nRUN --mount=from=build,source=/out cat bin > /result\n',
    });
    await ok(env.root, ['build', '-t', 'bind-workdir', ctx]);
    expect(await cat('bind-workdir', '/result')).toBe('built\n');
    expect(await ok(env.root, ['run', 'bind-workdir', 'ls', '-A', '/work'])).toBe('');
  });

  test('a cache mount survives between builds, is never in a layer, and du and prune --cache see it', async () => {
    const dockerfile = (n: number) =>
      `FROM busybox\nRUN --mount=type=cache,target=/var/cache/pkgs,id=pkgs echo ${n} >> /var/cache/pkgs/log && cat /var/cache/pkgs/log > /log\n`;
    const ctx = await context({ Dockerfile: dockerfile(1) });
    await ok(env.root, ['build', '-t', 'cache-1', ctx]);
    await writeFile(join(ctx, 'Dockerfile'), dockerfile(2));
    await ok(env.root, ['build', '-t', 'cache-2', ctx]);
    expect(await cat('cache-2', '/log')).toBe('1\n2\n');
    expect(await topLayer('cache-2')).toEqual(['log']);
    const du = JSON.parse(await ok(env.root, ['du', '--format', 'json']));
    expect(du.cacheMounts).toEqual([{ id: 'pkgs', instances: 1, size: 4 }]);
    expect(await ok(env.root, ['du'])).toMatch(/^pkgs\s+1\s+4B$/m);
    // prune without --cache keeps it; with --cache it goes.
    await ok(env.root, ['prune', '-f']);
    expect(JSON.parse(await ok(env.root, ['du', '--format', 'json'])).cacheMounts).toHaveLength(1);
    expect(await ok(env.root, ['prune', '-f', '--cache'])).toMatch(/^Deleted cache mounts:\npkgs$/m);
    expect(JSON.parse(await ok(env.root, ['du', '--format', 'json'])).cacheMounts).toEqual([]);
    await writeFile(join(ctx, 'Dockerfile'), dockerfile(3));
    await ok(env.root, ['build', '-t', 'cache-3', ctx]);
    expect(await cat('cache-3', '/log')).toBe('3\n');
  });

  test("prune --cache also clears the build contexts' checksum caches, and a build then hashes again to the same key", async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY src/ /src/\n', 'src/a.txt': 'a\n', 'src/b/c.txt': 'c\n' });
    // Files changed within the racy margin are not remembered: let them age, as real contexts have.
    await new Promise((r) => setTimeout(r, RACY_MARGIN_MS + 200));
    const first = (await ok(env.root, ['build', '-q', '-t', 'ctx-sums', ctx])).trim();
    const dir = join(env.root, 'image', 'overlay2', 'contexthash');
    const files = async (): Promise<string[]> => (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    expect((await files()).length).toBeGreaterThan(0);
    // A live writer's temp file is not the prune's to take.
    const live = `.tmp-ctx-${process.pid}-000000000000`;
    await writeFile(join(dir, live), 'half');
    await ok(env.root, ['prune', '-f']);
    expect((await files()).length).toBeGreaterThan(1);
    expect((await readdir(join(dir, 'trees'), { withFileTypes: true })).filter((e) => e.isFile()).length).toBeGreaterThan(0);
    const out = await ok(env.root, ['prune', '-f', '--cache']);
    expect(out).toMatch(/^Deleted build context checksum caches: \d+ files$/m);
    expect(await files()).toEqual([live]);
    expect((await readdir(join(dir, 'trees'), { withFileTypes: true })).filter((e) => e.isFile())).toEqual([]);
    // The same sources hash to the same key without the cache: the COPY is a hit, the image the same.
    expect((await ok(env.root, ['build', '-q', '-t', 'ctx-sums', ctx])).trim()).toBe(first);
    expect((await files()).length).toBeGreaterThan(1);
    await rm(join(dir, live));
  });

  test('a cache mount gets its mode and owner, and its first content from a stage', async () => {
    const ctx = await context({
      Dockerfile: [
        'FROM busybox AS seed',
        'RUN mkdir /s && echo seeded > /s/file',
        'FROM busybox',
        'RUN --mount=type=cache,target=/c,id=seeded,from=seed,source=/s,mode=0750,uid=1000,gid=100 stat -c "%a %u %g" /c > /owner && cat /c/file > /file',
        '',
      ].join('\n'),
    });
    await ok(env.root, ['build', '-t', 'cache-seed', ctx]);
    expect(await cat('cache-seed', '/owner')).toBe('750 1000 100\n');
    expect(await cat('cache-seed', '/file')).toBe('seeded\n');
  });

  /** Starts a build in the background and waits until `marker` exists in its cache mount. */
  async function startHolding(dockerfile: string, tag: string, marker: string) {
    const ctx = await context({ Dockerfile: dockerfile });
    const child = execa('node', [CLI, 'build', '--root', env.root, '-q', '-t', tag, ctx], { reject: false, env: { TSBUILD_ROOT: '' } });
    const cacheRoot = join(env.root, 'cachemounts');
    for (let i = 0; i < 300; i++) {
      const found = await findFile(cacheRoot, marker);
      // Wrapped: an execa child is a promise, which an async function would wait for.
      if (found) return { done: child };
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await child;
    throw new Error(`the first build never wrote ${marker}: ${r.stderr}`);
  }

  async function findFile(dir: string, name: string): Promise<boolean> {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.name === name) return true;
      if (e.isDirectory() && (await findFile(join(dir, e.name), name))) return true;
    }
    return false;
  }

  test('sharing=locked: a second build waits until the first lets go', async () => {
    const first = await startHolding(
      'FROM busybox\nRUN --mount=type=cache,target=/c,id=lk,sharing=locked touch /c/in-use && sleep 2 && rm /c/in-use && echo 1 > /c/done\n',
      'locked-1',
      'in-use',
    );
    const second = await ok(env.root, [
      'build',
      '-t',
      'locked-2',
      await context({
        Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=lk,sharing=locked test ! -e /c/in-use && cat /c/done > /saw\n',
      }),
    ]);
    expect(second).toBeDefined();
    expect((await first.done).exitCode).toBe(0);
    expect(await cat('locked-2', '/saw')).toBe('1\n');
  });

  test('sharing=private: a build gets its own directory while another holds the first', async () => {
    const first = await startHolding(
      'FROM busybox\nRUN --mount=type=cache,target=/c,id=pv,sharing=private touch /c/one && sleep 2 && ls /c > /saw\n',
      'private-1',
      'one',
    );
    await ok(env.root, [
      'build',
      '-t',
      'private-2',
      await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=pv,sharing=private ls /c > /saw; touch /c/two\n' }),
    ]);
    expect((await first.done).exitCode).toBe(0);
    expect(await cat('private-2', '/saw')).toBe('');
    expect(await cat('private-1', '/saw')).toBe('one\n');
    const du = JSON.parse(await ok(env.root, ['du', '--format', 'json']));
    expect(du.cacheMounts.find((c: { id: string }) => c.id === 'pv').instances).toBe(2);
  });

  test('sharing=shared: two builds see each other’s writes while both run', async () => {
    const waitFor = (f: string) => `i=0; while [ ! -e /c/${f} ]; do sleep 0.1; i=$((i+1)); [ $i -lt 200 ] || exit 9; done`;
    const first = await startHolding(
      `FROM busybox\nRUN --mount=type=cache,target=/c,id=sh touch /c/one && ${waitFor('two')}\n`,
      'shared-1',
      'one',
    );
    await ok(env.root, [
      'build',
      '-t',
      'shared-2',
      await context({ Dockerfile: `FROM busybox\nRUN --mount=type=cache,target=/c,id=sh touch /c/two && ${waitFor('one')}\n` }),
    ]);
    expect((await first.done).exitCode).toBe(0);
  });

  test('a tmpfs mount holds the step’s scratch files, up to its size, and none reach the layer', async () => {
    const ctx = await context({
      Dockerfile: [
        'FROM busybox',
        'RUN --mount=type=tmpfs,target=/scratch,size=1m echo tmp > /scratch/f && cat /scratch/f > /out && ! dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null',
        '',
      ].join('\n'),
    });
    await ok(env.root, ['build', '-t', 'tmpfs', ctx]);
    expect(await cat('tmpfs', '/out')).toBe('tmp\n');
    expect(await topLayer('tmpfs')).toEqual(['out']);
  });

  test('a target inside an existing directory leaves the directory as it was', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=tmpfs,target=/etc/scratch true\n', x: '' });
    await ok(env.root, ['build', '-t', 'stub-parent', ctx]);
    const ls = await ok(env.root, ['run', 'stub-parent', 'ls', '-a', '/etc']);
    expect(ls.split('\n')).not.toContain('scratch');
    expect((await topLayer('stub-parent')).filter((n) => n.includes('scratch'))).toEqual([]);
  });

  test('bad mounts fail before any step runs, at their line, and the store is unchanged', async () => {
    const images = async () => JSON.stringify(JSON.parse(await ok(env.root, ['du', '--format', 'json'])).images);
    const before = await images();
    const cases: [string, RegExp][] = [
      ['FROM busybox\nRUN touch /x\nRUN --mount=from=nosuchstage,target=/m true\n', /Dockerfile:3: mount from=nosuchstage: no stage/],
      [
        'FROM busybox\nRUN touch /x\nRUN --mount=source=../outside,target=/m true\n',
        /Dockerfile:3: mount source \.\.\/outside is outside the build context/,
      ],
      [
        'FROM busybox\nRUN touch /x\nRUN --mount=type=secret,id=tok,required true\n',
        /Dockerfile:3: secret tok is required and was not given/,
      ],
      ['FROM busybox\nRUN touch /x\nRUN --mount=type=ssh,required true\n', /Dockerfile:3: SSH agent default is required and was not given/],
      ['FROM busybox\nRUN touch /x\nRUN --mount=type=tmpfs,target=/t,size=big true\n', /Dockerfile:3: invalid size: 'big'/],
      ['FROM busybox\nRUN touch /x\nRUN --mount=type=cache,target=/c,mode=9 true\n', /Dockerfile:3: invalid value for mode: 9/],
      ['FROM busybox\nRUN touch /x\nRUN --mount=type=nfs,target=/c true\n', /Dockerfile:3: unsupported mount type "nfs"/],
      [
        'FROM busybox\nRUN touch /x\nRUN --security=insecure true\n',
        /Dockerfile:3: RUN --security=insecure needs the security.insecure entitlement/,
      ],
    ];
    for (const [dockerfile, message] of cases) {
      const r = await tsbuild(env.root, ['build', '-t', 'never', await context({ Dockerfile: dockerfile })]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      // No step ran: `RUN touch /x` would have left a layer (and a cache record) behind.
      expect(
        await ok(env.root, ['build', '--progress', 'plain', '-t', 'probe', await context({ Dockerfile: 'FROM busybox\nRUN touch /x\n' })]),
      ).not.toMatch(/CACHED/);
      await ok(env.root, ['rmi', 'probe']);
      await ok(env.root, ['prune', '-f']);
    }
    expect(await images()).toBe(before);
  });
});

describe('RUN --mount on the vfs driver', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('vfs');
  });
  afterAll(async () => env?.cleanup());

  test('binds, caches and tmpfs leave only what the step wrote in the layer', async () => {
    const ctx = await context({
      Dockerfile:
        'FROM busybox\nRUN --mount=target=/in/ctx --mount=type=cache,target=/var/cache/x --mount=type=tmpfs,target=/scratch cat /in/ctx/a.txt > /out && echo c >> /var/cache/x/log && cp /var/cache/x/log /log\n',
      'a.txt': 'vfs\n',
    });
    await ok(env.root, ['build', '-t', 'vfs-mounts', ctx]);
    expect(await ok(env.root, ['run', 'vfs-mounts', 'cat', '/out', '/log'])).toBe('vfs\nc\n');
    const layers = (JSON.parse(await ok(env.root, ['inspect', 'vfs-mounts']))[0] as { RootFS: { Layers: Digest[] } }).RootFS.Layers;
    expect((await layerEntries(env.root, 'vfs', layers, layers.length - 1)).map((e) => e.name).sort()).toEqual(['log', 'out']);
  });

  test('rw binds: vfs mounts no overlay, so the source is copied and the writes vanish with the copy', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox\nRUN --mount=target=/ctx,rw echo changed > /ctx/a.txt && rm /ctx/b.txt && cat /ctx/a.txt > /seen\n',
      'a.txt': 'vfs\n',
      'b.txt': 'b\n',
    });
    await ok(env.root, ['build', '-t', 'vfs-rw', ctx]);
    expect(await ok(env.root, ['run', 'vfs-rw', 'cat', '/seen'])).toBe('changed\n');
    expect([await readFile(join(ctx, 'a.txt'), 'utf8'), await readFile(join(ctx, 'b.txt'), 'utf8')]).toEqual(['vfs\n', 'b\n']);
    const layers = (JSON.parse(await ok(env.root, ['inspect', 'vfs-rw']))[0] as { RootFS: { Layers: Digest[] } }).RootFS.Layers;
    expect((await layerEntries(env.root, 'vfs', layers, layers.length - 1)).map((e) => e.name)).toEqual(['seen']);
  });
});
