// kill -9 of the work that makes multi-platform images: a `build --platform` of two platforms, a
// `load` of an OCI archive holding an index, and a `pull --all-platforms`, each killed (process
// group and all) at random points over its uninterrupted run time. After each kill the next
// command repairs: no temp file, dir, lease or mount is left, every index record hashes to its
// ID and names stored images, every tag names a stored image or index, the tags from before are
// unchanged; and the same work then succeeds. A kill between the images and the index leaves
// untagged images (and perhaps an untagged index), which prune removes.
//
// Kill points come from a seeded generator, printed at the start: rerun a failure with
// TSBUILD_KILL_SEED=<seed>.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BOTH, FOREIGN, multiPlatformBase } from '../helpers/platforms.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';
import { generator, runCli } from './kill-runner.js';
import { inconsistencies, leftovers, tags } from './store-check.js';

const SEED = Number(process.env.TSBUILD_KILL_SEED ?? Math.floor(Math.random() * 1_000_000));
const ROUNDS = Number(process.env.TSBUILD_KILL_ROUNDS ?? 5);

let store: { root: string; cleanup(): Promise<void> };
let registry: TestRegistry;
let env: Record<string, string>;
let archive: string;
let ctx: string;

beforeAll(async () => {
  process.stdout.write(`multi-platform kill test: seed ${SEED} (rerun with TSBUILD_KILL_SEED=${SEED}), ${ROUNDS} rounds each\n`);
  registry = await startRegistry();
  env = { DOCKER_CONFIG: await tempDir('tsbuild-dockercfg-') };
  store = await rootWithBusybox();
  await multiPlatformBase(store.root, 'mbase');
  ctx = await tempDir();
  await writeFile(join(ctx, 'amd64.txt'), Buffer.alloc(4 << 20, 1));
  await writeFile(join(ctx, 'arm64.txt'), Buffer.alloc(4 << 20, 2));
  await writeFile(
    join(ctx, 'Dockerfile'),
    'FROM mbase\nARG NONCE=0 TARGETARCH\nCOPY $TARGETARCH.txt /data\nLABEL nonce=$NONCE\nCOPY Dockerfile /d\n',
  );
  await ok(store.root, ['build', '-q', '--platform', BOTH, '-t', 'app:v1', ctx]);
  archive = join(ctx, 'app.oci.tar');
  await ok(store.root, ['save', '--format', 'oci', '-o', archive, 'app:v1']);
  await ok(store.root, ['tag', 'app:v1', `${registry.host}/app:v1`]);
  await ok(store.root, ['push', '-q', `${registry.host}/app:v1`], { env });
}, 300_000);

afterAll(async () => {
  await store?.cleanup();
  await registry?.stop();
});

test('build --platform, load and pull --all-platforms survive kill -9 anywhere, and succeed afterwards', async () => {
  const root = store.root;
  const random = generator(SEED);
  let kills = 0;
  const work: Record<string, (round: number) => string[]> = {
    build: (round) => ['build', '--root', root, '-q', '--platform', BOTH, '--build-arg', `NONCE=${round}`, '-t', `app:round${round}`, ctx],
    load: () => ['load', '--root', root, '-q', '-i', archive],
    pull: () => ['pull', '--root', root, '-q', '--all-platforms', `${registry.host}/app:v1`],
  };
  for (const [name, argv] of Object.entries(work)) {
    // Uninterrupted first (into the same store: the load and the pull then find what they need
    // in part, as a repeated command does), so that kill points spread over a whole run.
    const clean = await runCli(argv(0), env);
    expect([name, clean.code]).toEqual([name, 0]);
    for (let round = 1; round <= ROUNDS; round++) {
      if (name !== 'build') await ok(root, ['rmi', `${registry.host}/app:v1`]).catch(() => undefined);
      const before = await tags(root);
      const at = Math.floor(random() * clean.ms);
      const r = await runCli(argv(round), env, at);
      if (r.killed) kills++;
      // The next command repairs what the killed one left.
      await ok(root, ['images', '-q']);
      const where = `${name} round ${round} killed=${r.killed} after ${at} ms (seed ${SEED})`;
      expect([where, await leftovers(root)]).toEqual([where, []]);
      expect([where, await inconsistencies(root)]).toEqual([where, []]);
      const after = await tags(root);
      for (const [ref, id] of Object.entries(before))
        if (ref !== `${registry.host}/app:v1`) expect([where, ref, after[ref]]).toEqual([where, ref, id]);
      // The same work now succeeds.
      const again = await runCli(argv(round), env);
      expect([where, again.code, again.killed]).toEqual([where, 0, false]);
    }
  }
  // Most rounds kill (a kill point past a run's end is possible only on a slower first run).
  expect(kills).toBeGreaterThan(0);
  await ok(root, ['prune', '-f']);
  expect(await inconsistencies(root)).toEqual([]);
  expect(await ok(root, ['verify'])).toMatch(/^OK/m);
}, 900_000);

test('verify finds a multi-platform image whose image is gone; --repair removes it and its tags, leaving the store whole', async () => {
  const root = store.root;
  await ok(root, ['tag', 'app:v1', 'broken:1']);
  const foreign = (JSON.parse(await ok(root, ['inspect', '--platform', `linux/${FOREIGN}`, 'broken:1'])) as { Id: string }[])[0]!.Id;
  const indexId = (await ok(root, ['images', '-q', '--no-trunc', 'broken:1'])).trim();
  await rm(join(root, 'image', 'overlay2', 'imagedb', 'content', 'sha256', foreign.slice(7)));
  const found = await tsbuild(root, ['verify']);
  expect(found.exitCode).toBe(1);
  expect(found.stdout).toContain(`image ${indexId}: multi-platform image: its image ${foreign} is broken or not in the store\n`);
  await ok(root, ['verify', '--repair']);
  expect(await inconsistencies(root)).toEqual([]);
  expect(Object.keys(await tags(root)).filter((r) => r === 'broken:1' || r === 'app:v1')).toEqual([]);
  expect((await tsbuild(root, ['inspect', 'broken:1'])).stderr).toBe('Error: No such image: broken:1\n');
  expect(await ok(root, ['verify'])).toMatch(/^OK/m);
});
