// Real parallel tsbuild processes on one store: builds sharing layers (two of them creating
// the same layer at once), rmi, prune, load and tags, all while another build waits inside a
// RUN on an image that rmi and prune remove meanwhile. Everything must succeed, and afterwards
// no image lacks a layer, every JSON file parses, no tag was lost, and the waiting build, once
// let go, completes with every layer it stood on. Then pull and load, which unpack layers no
// image stands on yet, race `prune --all` and rmi, round after round.
import { execa } from 'execa';
import { access, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, REPO, mountsBelow, ok, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { inconsistencies, leftovers, tags } from './store-check.js';

async function imageId(root: string, ref: string): Promise<string> {
  return (JSON.parse(await ok(root, ['inspect', ref])) as { Id: string }[])[0]!.Id;
}

async function layersOf(root: string, ref: string): Promise<string[]> {
  return (JSON.parse(await ok(root, ['inspect', ref])) as { RootFS: { Layers: string[] } }[])[0]!.RootFS.Layers;
}

async function context(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

describe('parallel processes on one store', () => {
  let store: { root: string; cleanup(): Promise<void> };
  const dirs: string[] = [];
  /** A build in its own process group, so that a failed test can kill it and every process of its step. */
  const startBuild = (args: readonly string[]) =>
    execa('node', [CLI, 'build', ...args], { cwd: REPO, detached: true, reject: false, all: true, env: { TSBUILD_ROOT: '' } });
  let waiter: ReturnType<typeof startBuild> | undefined;

  beforeAll(async () => {
    store = await rootWithBusybox();
  });
  afterAll(async () => {
    if (waiter?.pid !== undefined && waiter.exitCode === null) process.kill(-waiter.pid, 'SIGKILL');
    await waiter?.catch(() => undefined);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await store?.cleanup();
  });

  const ctx = async (files: Record<string, string | Buffer>): Promise<string> => {
    const d = await context(files);
    dirs.push(d);
    return d;
  };

  test('builds, rmi, prune, load and tag at once: all succeed and nothing is lost', async () => {
    const root = store.root;
    // What the concurrent commands work on.
    await ok(root, [
      'build',
      '-t',
      'mid:1',
      await ctx({ Dockerfile: 'FROM busybox\nCOPY midfile /midfile\nRUN echo mid > /mid\n', midfile: 'from mid\n' }),
    ]);
    await ok(root, ['build', '-t', 'victim:1', await ctx({ Dockerfile: 'FROM busybox\nCOPY v /v\n', v: 'victim\n' })]);
    await ok(root, ['build', '-t', 'dangling:1', await ctx({ Dockerfile: 'FROM busybox\nCOPY d /d\n', d: 'first\n' })]);
    const danglingId = await imageId(root, 'dangling:1');
    await ok(root, ['build', '-t', 'dangling:1', await ctx({ Dockerfile: 'FROM busybox\nCOPY d /d\n', d: 'second\n' })]);
    const loadDir = await ctx({ Dockerfile: 'FROM busybox\nCOPY l /l\n', l: Buffer.alloc(2 << 20, 5) });
    await ok(root, ['build', '-t', 'loaded:1', loadDir]);
    const archive = join(loadDir, 'loaded.tar');
    await ok(root, ['save', '-o', archive, 'loaded:1']);
    await ok(root, ['rmi', 'loaded:1']);
    const shared = { s: Buffer.alloc(1 << 20, 9) };
    const sharedA = await ctx({ ...shared, Dockerfile: 'FROM busybox\nCOPY s /s\nRUN echo a > /a\n' });
    const sharedB = await ctx({ ...shared, Dockerfile: 'FROM busybox\nCOPY s /s\nRUN echo b > /b\n' });

    // A build on mid:1 that waits inside its RUN until the test lets it go (a file appears in
    // its rootfs), giving up after a minute.
    const waitCtx = await ctx({
      Dockerfile: [
        'FROM mid:1',
        'RUN touch /waiting; i=0; while [ ! -e /go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /go && rm /go /waiting && echo built > /built',
        'COPY after /after',
        '',
      ].join('\n'),
      after: 'after\n',
    });
    const started = startBuild(['--root', root, '-t', 'waiter:1', waitCtx]);
    waiter = started;
    let rootfs: string | undefined;
    while (rootfs === undefined) {
      if (started.exitCode !== null) throw new Error(`the waiting build ended early:\n${(await started).all}`);
      for (const m of await mountsBelow(join(root, 'tmp'))) {
        if (
          await access(join(m, 'waiting')).then(
            () => true,
            () => false,
          )
        )
          rootfs = m;
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    const run = (args: string[]) =>
      execa('node', [CLI, args[0]!, '--root', root, ...args.slice(1)], { cwd: REPO, reject: false, all: true, env: { TSBUILD_ROOT: '' } });
    const commands: [string, string[]][] = [
      ['rmi the waiting build’s base', ['rmi', 'mid:1']],
      ['prune', ['prune', '-f']],
      ['rmi another image', ['rmi', 'victim:1']],
      ['load', ['load', '-i', archive]],
      ['build a', ['build', '-t', 'shared:a', sharedA]],
      ['build a again, uncached (the same layers at the same time)', ['build', '--no-cache', '-t', 'shared:a2', sharedA]],
      ['build b (shares the COPY layer)', ['build', '-t', 'shared:b', sharedB]],
      ...[1, 2, 3, 4, 5, 6].map((n): [string, string[]] => [`tag ${n}`, ['tag', 'busybox', `tagged:${n}`]]),
    ];
    const results = await Promise.all(commands.map(([, args]) => run(args)));
    const failed = results.map((r, i) => ({ what: commands[i]![0], exit: r.exitCode, output: r.all })).filter((r) => r.exit !== 0);
    expect(failed).toEqual([]);

    // Let the waiting build finish: its base image is gone, its layers must not be.
    await writeFile(join(rootfs, 'go'), '');
    const w = await started;
    expect({ exit: w.exitCode, output: w.all }).toEqual({ exit: 0, output: expect.stringContaining('Successfully tagged waiter:1') });

    expect(await inconsistencies(root)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
    const t = await tags(root);
    for (const ref of [
      'busybox:latest',
      'waiter:1',
      'loaded:1',
      'shared:a',
      'shared:a2',
      'shared:b',
      'dangling:1',
      ...[1, 2, 3, 4, 5, 6].map((n) => `tagged:${n}`),
    ]) {
      expect({ ref, present: ref in t }).toEqual({ ref, present: true });
    }
    expect(t['mid:1']).toBeUndefined();
    expect(t['victim:1']).toBeUndefined();
    expect(await ok(root, ['images', '-q', '--no-trunc'])).not.toContain(danglingId);
    // Built at the same moment, the shared COPY layer is one layer.
    expect((await layersOf(root, 'shared:a'))[1]).toBe((await layersOf(root, 'shared:a2'))[1]);
    expect((await layersOf(root, 'shared:b'))[1]).toBe((await layersOf(root, 'shared:a'))[1]);
    // The waiting build's image has the removed base's files, and every layer reads back whole.
    expect(await ok(root, ['run', 'waiter:1', 'cat', '/midfile', '/mid', '/built', '/after'])).toBe('from mid\nmid\nbuilt\nafter\n');
    const out = join(loadDir, 'all.tar');
    await ok(root, ['save', '-o', out, 'waiter:1', 'loaded:1', 'shared:a', 'shared:a2', 'shared:b']);
  });

  test('pull and load while prune --all and rmi run: they succeed, and the store stays whole', async () => {
    const root = store.root;
    let registry: TestRegistry | undefined;
    try {
      registry = await startRegistry();
      const env = { DOCKER_CONFIG: await tempDir('tsbuild-dockercfg-'), TSBUILD_ROOT: '' };
      const run = (args: string[]) =>
        execa('node', [CLI, args[0]!, '--root', root, ...args.slice(1)], { cwd: REPO, reject: false, all: true, env });
      const must = async (args: string[]): Promise<string> => {
        const r = await run(args);
        if (r.exitCode !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.exitCode}:\n${r.all}`);
        return String(r.all);
      };
      // Two images sharing a COPY layer above busybox, then out of the store: one in the
      // registry, one in an archive.
      const common = { common: Buffer.alloc(1 << 20, 1) };
      const pulled = `${registry.host}/race/pulled:1`;
      await must([
        'build',
        '-t',
        pulled,
        await ctx({ ...common, own: 'pulled\n', Dockerfile: 'FROM busybox\nCOPY common /common\nCOPY own /own\nRUN echo p > /p\n' }),
      ]);
      await must([
        'build',
        '-t',
        'race-loaded:1',
        await ctx({ ...common, own: 'loaded\n', Dockerfile: 'FROM busybox\nCOPY common /common\nCOPY own /own\nRUN echo l > /l\n' }),
      ]);
      await must(['push', pulled]);
      const archive = join(await ctx({}), 'loaded.tar');
      await must(['save', '-o', archive, 'race-loaded:1']);
      const removeBoth = async (): Promise<void> => {
        await must(['rmi', '-f', pulled, 'race-loaded:1']);
        await must(['prune', '--all', '-f']);
      };
      await removeBoth();

      for (let round = 0; round < 3; round++) {
        const victim = `race-victim:${round}`;
        await must(['build', '-t', victim, await ctx({ v: `victim ${round}\n`, Dockerfile: 'FROM busybox\nCOPY v /v\n' })]);
        const commands: [string, string[]][] = [
          ['pull', ['pull', pulled]],
          ['load', ['load', '-i', archive]],
          ['prune --all', ['prune', '--all', '-f']],
          ['rmi', ['rmi', victim]],
          ['prune --all again', ['prune', '--all', '-f']],
        ];
        const results = await Promise.all(commands.map(([, args]) => run(args)));
        const failed = results
          .map((r, i) => ({ round, what: commands[i]![0], exit: r.exitCode, output: r.all }))
          .filter((r) => r.exit !== 0);
        expect(failed).toEqual([]);
        expect({ round, problems: await inconsistencies(root), left: await leftovers(root) }).toEqual({ round, problems: [], left: [] });
        // (execa strips the last newline.)
        expect(await must(['run', pulled, 'sh', '-c', 'wc -c < /common; cat /own /p'])).toBe(`${1 << 20}\npulled\np`);
        expect(await must(['run', 'race-loaded:1', 'sh', '-c', 'wc -c < /common; cat /own /l'])).toBe(`${1 << 20}\nloaded\nl`);
        await removeBoth();
      }
      expect(await inconsistencies(root)).toEqual([]);
      expect(await leftovers(root)).toEqual([]);
    } finally {
      await registry?.stop();
    }
  });
});
