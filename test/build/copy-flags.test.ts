// COPY/ADD --exclude, COPY --parents, symbolic --chmod and --link in real builds: what lands in
// the image, what the --link layer holds and that its diffID does not depend on the base, and
// the errors (one line naming the Dockerfile line, non-zero exit, nothing tagged).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../src/digest.js';
import { layerEntries } from '../helpers/layers.js';
import { contextOf, ok, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

const context = contextOf;

describe('COPY and ADD flags', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  const inspect = async (image: string): Promise<{ RootFS: { Layers: Digest[] } }> => JSON.parse(await ok(env.root, ['inspect', image]))[0];
  const sh = (image: string, script: string): Promise<string> => ok(env.root, ['run', image, 'sh', '-c', script]);

  test('--exclude leaves out what its patterns match below each source, for COPY and ADD', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox\nCOPY --exclude=*.md --exclude=sub/skip docs /docs/\nADD --exclude=*.tmp --exclude=!keep.tmp data /data/\n',
      'docs/a.txt': 'a',
      'docs/README.md': 'r',
      'docs/sub/skip/x': 'x',
      'docs/sub/deep/n.md': 'kept: *.md matches at the top only',
      'data/one': '1',
      'data/junk.tmp': 'j',
      'data/keep.tmp': 'k',
    });
    await ok(env.root, ['build', '-t', 'excl', ctx]);
    expect((await sh('excl', 'cd / && find docs data | sort')).trim().split('\n')).toEqual([
      'data',
      'data/keep.tmp',
      'data/one',
      'docs',
      'docs/a.txt',
      'docs/sub',
      'docs/sub/deep',
      'docs/sub/deep/n.md',
    ]);
    // An excluded file changing does not invalidate the step.
    await writeFile(join(ctx, 'docs/README.md'), 'changed');
    const again = await ok(env.root, ['build', '--progress', 'plain', '-t', 'excl', ctx]);
    expect(again.match(/--> CACHED/g)).toHaveLength(2);
  });

  test('COPY --parents keeps each source’s path, below a /./ pivot if there is one', async () => {
    const ctx = await context({
      Dockerfile:
        'FROM busybox\nCOPY --parents app/./src/*.js lib/util.js /out/\nWORKDIR /w\nCOPY --parents --exclude=**/*.test.js app/src/ .\n',
      'app/src/main.js': 'm',
      'app/src/main.test.js': 't',
      'app/other.js': 'o',
      'lib/util.js': 'u',
      'lib/more.js': 'no',
    });
    await ok(env.root, ['build', '-t', 'parents', ctx]);
    expect((await sh('parents', 'cd / && find out w -type f | sort')).trim().split('\n')).toEqual([
      'out/lib/util.js',
      'out/src/main.js',
      'out/src/main.test.js',
      'w/app/src/main.js',
    ]);
  });

  test('COPY --parents of a missing path fails at its line', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY --parents a/missing.txt /out/\n', 'a/x': 'x' });
    const r = await tsbuild(env.root, ['build', '-t', 'parents-missing', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2: .*"\/a\/missing.txt": not found/);
    expect((await tsbuild(env.root, ['inspect', 'parents-missing'])).exitCode).not.toBe(0);
  });

  test('a symbolic --chmod changes each entry’s own mode; created parents stay 0755', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox\nCOPY --chmod=u+x,g-w,o= f dir /x/y/\n',
      f: 'f',
      'dir/g': 'g',
      'dir/sub/h': 'h',
    });
    await ok(env.root, ['build', '-t', 'chmodsym', ctx]);
    // Context files are 0644 and directories 0755 (tempDir's umask 022): 0644 → 0740, 0755 → 0750.
    expect((await sh('chmodsym', "cd /x && stat -c '%a %n' . y y/f y/g y/sub y/sub/h")).trim().split('\n')).toEqual([
      '755 .',
      '755 y',
      '740 y/f',
      '740 y/g',
      '750 y/sub',
      '740 y/sub/h',
    ]);
  });

  test('a bad --chmod is refused at its line', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY --chmod=u+q f /x\n', f: 'f' });
    const r = await tsbuild(env.root, ['build', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("Dockerfile:2: invalid chmod parameter: 'u+q': invalid syntax");
  });

  test('--link: a layer made apart from the base, the same whatever the base, reused on another base', async () => {
    const files = { 'f.txt': 'linked file\n' };
    const a = await context({ ...files, Dockerfile: 'FROM busybox\nRUN echo a > /base-a\nCOPY --link f.txt /app/bin/f.txt\n' });
    const b = await context({
      ...files,
      Dockerfile: 'FROM busybox\nRUN mkdir -m 0700 /secret && ln -s /secret /app\nCOPY --link f.txt /app/bin/f.txt\n',
    });
    await ok(env.root, ['build', '-t', 'link-a', a]);
    const out = await ok(env.root, ['build', '--progress', 'plain', '-t', 'link-b', b]);
    // The RUN differs; the --link step is found in the cache all the same.
    expect(out.match(/--> CACHED/g)).toHaveLength(1);
    const [la, lb] = [(await inspect('link-a')).RootFS.Layers, (await inspect('link-b')).RootFS.Layers];
    expect(la.at(-1)).toBe(lb.at(-1));
    expect(la.at(-2)).not.toBe(lb.at(-2));
    // The layer holds the destination's parents as directories of its own, and nothing of the base.
    const entries = await layerEntries(env.root, 'overlay2', lb, lb.length - 1);
    expect(entries.map((e) => `${e.type}${e.mode} ${e.owner} ${e.name}`)).toEqual([
      'drwxr-xr-x 0/0 app/',
      'drwxr-xr-x 0/0 app/bin/',
      '-rw-r--r-- 0/0 app/bin/f.txt',
    ]);
    // The base's symlink is not followed: /app is now a directory, and /secret stays empty.
    expect((await sh('link-b', "stat -c '%F' /app; cat /app/bin/f.txt; ls -A /secret | wc -l")).trim().split('\n')).toEqual([
      'directory',
      'linked file',
      '0',
    ]);
  });

  test('--link with --chown by name is refused at its line; numeric IDs work', async () => {
    const bad = await context({ Dockerfile: 'FROM busybox\nCOPY --link --chown=nobody f /f\n', f: 'f' });
    const r = await tsbuild(env.root, ['build', bad]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2: COPY --link --chown=nobody: a user or group name cannot be looked up with --link/);
    const good = await context({ Dockerfile: 'FROM busybox\nCOPY --link --chown=33:44 f /d/f\n', f: 'f' });
    await ok(env.root, ['build', '-t', 'link-chown', good]);
    expect((await sh('link-chown', "stat -c '%u:%g' /d /d/f")).trim().split('\n')).toEqual(['33:44', '33:44']);
  });

  test('COPY --link --from another stage', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox AS build\nRUN mkdir /out && echo built > /out/app\nFROM busybox\nCOPY --link --from=build /out/ /opt/\n',
    });
    await ok(env.root, ['build', '-t', 'link-from', ctx]);
    expect((await sh('link-from', 'cat /opt/app')).trim()).toBe('built');
  });

  test('COPY --from another stage with --parents (pivots, wildcards) and --exclude', async () => {
    const ctx = await context({
      Dockerfile: [
        'FROM busybox AS base',
        'RUN mkdir -p /test/a/b/c/d/e /test/a/b2/c/d/e && touch /test/a/b/c/d/foo /test/a/b/c/d/e/bay /test/a/b2/c/d/e/bar /test/a/b/c/d/skip.log',
        'FROM busybox',
        'COPY --from=base --parents --exclude=**/*.log /test/a/b/./c/d /out/',
        'COPY --from=base --parents /test/a/./*/c /wild/',
        '',
      ].join('\n'),
    });
    await ok(env.root, ['build', '-t', 'parents-from', ctx]);
    expect((await sh('parents-from', 'cd / && find out wild -type f | sort')).trim().split('\n')).toEqual([
      'out/c/d/e/bay',
      'out/c/d/foo',
      'wild/b/c/d/e/bay',
      'wild/b/c/d/foo',
      'wild/b/c/d/skip.log',
      'wild/b2/c/d/e/bar',
    ]);
  });

  test('ADD --parents is not a flag (BuildKit has it for COPY only)', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nADD --parents f /x/\n', f: 'f' });
    const r = await tsbuild(env.root, ['build', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('Dockerfile:2: unknown flag: --parents');
  });
});
