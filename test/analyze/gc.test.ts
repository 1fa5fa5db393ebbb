// `tsbuild du` and `tsbuild prune` on a real store. du: two images of three layers
// sharing the bottom two, with sizes from the files the test wrote. prune: what it removes
// (dangling images, layers no image uses, their build-cache records) and what it must keep,
// checked in the store's own directories.
import { randomBytes } from 'node:crypto';
import { cp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { chainIds, hex, type Digest } from '../../src/digest.js';
import { humanSize } from '../../cli/format.js';
import { CLI, ok, REPO, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

const SHARED = join(REPO, 'testdata/waste/shared');

interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('du and prune', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let ctx: string;
  let busybox: number;
  const CERTS = 200_000;
  const NGINX = 1_200_000;
  const PYTHON = 3_400_000;

  const du = async (): Promise<Json> => JSON.parse(await ok(env.root, ['du', '--format', 'json'])) as Json;
  const inspect = async (image: string): Promise<Json> => (JSON.parse(await ok(env.root, ['inspect', image])) as Json[])[0]!;
  const meta = (...p: string[]) => join(env.root, 'image/overlay2', ...p);
  const layerdb = async (): Promise<string[]> => (await readdir(meta('layerdb/sha256'))).sort();
  const imagedb = async (): Promise<string[]> => (await readdir(meta('imagedb/content/sha256'))).sort();
  const snapshots = async (): Promise<string[]> => (await readdir(join(env.root, 'overlay2'))).filter((n) => n !== 'l').sort();
  /** The chainIDs an image stands on, from its diff_ids. */
  const chainsOf = async (image: string): Promise<string[]> => chainIds((await inspect(image)).RootFS.Layers as Digest[]).map(hex);
  const cacheId = async (chain: string): Promise<string> => (await readFile(meta('layerdb/sha256', chain, 'cache-id'), 'utf8')).trim();

  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
    ctx = await tempDir('tsbuild-du-');
    await cp(SHARED, ctx, { recursive: true });
    await writeFile(join(ctx, 'ca-certificates.crt'), randomBytes(CERTS));
    await writeFile(join(ctx, 'nginx'), randomBytes(NGINX));
    await writeFile(join(ctx, 'python3'), randomBytes(PYTHON));
    await ok(env.root, ['build', '-q', '-t', 'nginx', '-f', join(ctx, 'Dockerfile.nginx'), ctx]);
    await ok(env.root, ['build', '-q', '-t', 'python3', '-f', join(ctx, 'Dockerfile.python3'), ctx]);
    busybox = (JSON.parse((await ok(env.root, ['history', '--format', 'json', 'busybox'])).trim()) as Json).Size as number;
  });
  afterAll(async () => {
    await rm(ctx, { recursive: true, force: true });
    await env?.cleanup();
  });

  test('du: two three-layer images sharing two layers take four layers; shared and unique bytes per image', async () => {
    const d = await du();
    const img = (tag: string) => d.images.find((i: Json) => i.tags.includes(tag));
    expect(img('nginx:latest')).toMatchObject({
      size: busybox + CERTS + NGINX,
      sharedSize: busybox + CERTS,
      uniqueSize: NGINX,
      dangling: false,
    });
    expect(img('python3:latest')).toMatchObject({ size: busybox + CERTS + PYTHON, sharedSize: busybox + CERTS, uniqueSize: PYTHON });
    expect(img('busybox:latest')).toMatchObject({ size: busybox, sharedSize: busybox, uniqueSize: 0 });
    expect(d.layers).toEqual({ count: 4, size: busybox + CERTS + NGINX + PYTHON });
    expect(d.unusedLayers).toEqual([]);
    expect(d.reclaimable).toEqual({ prune: 0, pruneAll: 0 });
    const text = await ok(env.root, ['du']);
    expect(text).toMatch(
      new RegExp(
        `^nginx\\s+latest\\s+[0-9a-f]{12}\\s+${humanSize(busybox + CERTS + NGINX)}\\s+${humanSize(busybox + CERTS)}\\s+${humanSize(NGINX)}$`,
        'm',
      ),
    );
    expect(text).toMatch(/^All layers\s+4\s+/m);
  });

  describe('prune', () => {
    let oldNginx: string;
    let oldBase: string;
    let unused: string[];
    const JUNK = 2_000_000;
    const RAN = 1000;
    const NGINX2 = 1_300_000;

    beforeAll(async () => {
      // A build that fails after two steps leaves their layers (and the RUN's cache record) to no image.
      await writeFile(join(ctx, 'junk.bin'), randomBytes(JUNK));
      await writeFile(
        join(ctx, 'Dockerfile.fail'),
        `FROM busybox\nCOPY junk.bin /junk.bin\nRUN head -c ${RAN} /dev/urandom > /ran\nRUN exit 3\n`,
      );
      const before = await layerdb();
      expect((await tsbuild(env.root, ['build', '-q', '-t', 'failed', '-f', join(ctx, 'Dockerfile.fail'), ctx])).exitCode).not.toBe(0);
      unused = (await layerdb()).filter((c) => !before.includes(c));
      expect(unused).toHaveLength(2);
      // Rebuilding a tag with other content leaves the old image untagged and childless: dangling.
      oldNginx = (await inspect('nginx')).Id as string;
      await writeFile(join(ctx, 'nginx'), randomBytes(NGINX2));
      await ok(env.root, ['build', '-q', '-t', 'nginx', '-f', join(ctx, 'Dockerfile.nginx'), ctx]);
      // An untagged image another image was built FROM is not dangling (Docker keeps it too).
      await writeFile(join(ctx, 'Dockerfile.base'), 'FROM busybox\nRUN echo one > /base\n');
      await writeFile(join(ctx, 'Dockerfile.child'), 'FROM base\nRUN echo child > /child\n');
      await ok(env.root, ['build', '-q', '-t', 'base', '-f', join(ctx, 'Dockerfile.base'), ctx]);
      oldBase = (await inspect('base')).Id as string;
      await ok(env.root, ['build', '-q', '-t', 'child', '-f', join(ctx, 'Dockerfile.child'), ctx]);
      await writeFile(join(ctx, 'Dockerfile.base'), 'FROM busybox\nRUN echo two > /base\n');
      await ok(env.root, ['build', '-q', '-t', 'base', '-f', join(ctx, 'Dockerfile.base'), ctx]);
    });

    test('du counts what prune would free', async () => {
      const d = await du();
      expect(d.unusedLayers.map((l: Json) => hex(l.chainId)).sort()).toEqual([...unused].sort());
      expect(d.images.find((i: Json) => i.id === oldNginx)).toMatchObject({ untagged: true, dangling: true, uniqueSize: NGINX });
      expect(d.images.find((i: Json) => i.id === oldBase)).toMatchObject({ untagged: true, dangling: false });
      // The old base's only layer of its own is used by child: --all frees nothing more.
      expect(d.reclaimable).toEqual({ prune: JUNK + RAN + NGINX, pruneAll: JUNK + RAN + NGINX });
    });

    test('without a terminal and without --force, prune refuses and removes nothing', async () => {
      const [layers, images] = [await layerdb(), await imagedb()];
      const r = await tsbuild(env.root, ['prune']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/--force/);
      expect(await layerdb()).toEqual(layers);
      expect(await imagedb()).toEqual(images);
    });

    test('at a terminal, prune asks and does nothing unless told yes', async () => {
      const layers = await layerdb();
      // script(1) gives the command a terminal; its input is the answer.
      const r = await execa('script', ['-qec', `node ${CLI} prune --root ${env.root}`, '/dev/null'], { input: 'n\n', reject: false });
      expect(r.stdout).toMatch(/WARNING! This will remove all dangling images/);
      expect(r.stdout).toMatch(/Are you sure you want to continue\? \[y\/N\]/);
      expect(r.exitCode).toBe(0);
      expect(await layerdb()).toEqual(layers);
    });

    test('prune -f removes the dangling image, unused layers and their cache records; keeps every layer an image uses', async () => {
      const oldNginxOwn = (await chainsOf(oldNginx)).at(-1)!;
      const gone = await Promise.all([...unused, oldNginxOwn].map(cacheId));
      const cacheRecords = async () => (await readdir(meta('buildcache'))).length;
      const recordsBefore = await cacheRecords();

      const out = await ok(env.root, ['prune', '-f']);
      expect(out).toMatch(/^Deleted Images:$/m);
      expect(out).toContain(`deleted: ${oldNginx}`);
      for (const c of unused) expect(out).toContain(`deleted: sha256:${c}`);
      expect(out).toContain(`Total reclaimed space: ${humanSize(JUNK + RAN + NGINX)}`);
      expect(out).toMatch(/Deleted build cache records:\n[0-9a-f]{64}\n/);

      expect(await imagedb()).not.toContain(hex(oldNginx as Digest));
      expect(await imagedb()).toContain(hex(oldBase as Digest)); // not dangling
      const layers = await layerdb();
      for (const c of [...unused, oldNginxOwn]) expect(layers).not.toContain(c);
      const snaps = await snapshots();
      for (const s of gone) expect(snaps).not.toContain(s);
      expect(await cacheRecords()).toBeLessThan(recordsBefore);
      // Every remaining image is whole.
      for (const image of ['nginx', 'python3', 'busybox', 'base', 'child', oldBase]) {
        for (const c of await chainsOf(image)) {
          expect(layers).toContain(c);
          expect(snaps).toContain(await cacheId(c));
        }
      }
      // Nothing left to do.
      const again = await ok(env.root, ['prune', '-f']);
      expect(again).not.toMatch(/Deleted Images/);
      expect(again).toContain('Total reclaimed space: 0B');
    });

    test('prune --all -f also removes untagged images other images were built from, never their layers', async () => {
      const childChains = await chainsOf('child');
      const out = await ok(env.root, ['prune', '--all', '-f']);
      expect(out).toContain(`deleted: ${oldBase}`);
      expect(out).toContain('Total reclaimed space: 0B');
      expect(await imagedb()).not.toContain(hex(oldBase as Digest));
      const layers = await layerdb();
      for (const c of childChains) expect(layers).toContain(c);
      expect(await ok(env.root, ['run', 'child', 'cat', '/base', '/child'])).toBe('one\nchild\n');
      // Tagged images are never pruned.
      expect((await ok(env.root, ['images'])).split('\n').filter((l) => /^(nginx|python3|busybox|base|child)\s/.test(l))).toHaveLength(5);
    });
  });
});
