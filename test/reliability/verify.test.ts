// `tsbuild verify` after a disk error: a layer's file changed behind the store's back, an
// image config changed, a snapshot gone. Each is found (and only what is broken), the images
// standing on a broken layer too; `--repair` removes them and leaves a whole store that builds
// them again.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hex } from '../../src/digest.js';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';
import { inconsistencies, leftovers } from './store-check.js';

type Env = Awaited<ReturnType<typeof rootWithBusybox>>;

describe('verify', () => {
  let env: Env;
  let ctx: string;

  beforeAll(async () => {
    env = await rootWithBusybox();
    ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo original > /data\nRUN echo more > /more\n');
    await ok(env.root, ['build', '-t', 'app:1', ctx]);
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  /** The snapshot directory of the image's layer `i`. */
  async function layerFiles(image: string, i: number): Promise<{ chainId: string; dir: string }> {
    const [inspect] = JSON.parse(await ok(env.root, ['inspect', image])) as [{ RootFS: { Layers: string[] } }];
    const { chainIds } = await import('../../src/digest.js');
    const chainId = chainIds(inspect.RootFS.Layers as never)[i]!;
    const cacheId = (await readFile(join(env.root, 'image/overlay2/layerdb/sha256', hex(chainId), 'cache-id'), 'utf8')).trim();
    return { chainId, dir: join(env.root, 'overlay2', cacheId, 'diff') };
  }

  test('a whole store verifies', async () => {
    const r = await tsbuild(env.root, ['verify']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('OK: 2 images, 3 layers verified\n');
  });

  test("a layer's file changed on disk: that layer and every image on it are broken, and repair removes just those", async () => {
    const { chainId, dir } = await layerFiles('app:1', 1);
    await writeFile(join(dir, 'data'), 'changed!\n'); // same size, other bytes
    const r = await tsbuild(env.root, ['verify']);
    expect(r.exitCode).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^layer ${chainId}: its content does not rebuild: .*has changed since the layer was recorded`)),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^image sha256:[0-9a-f]{64}: it stands on a broken layer$/));
    expect(lines.at(-1)).toMatch(/problems in 2 images, 3 layers; tsbuild verify --repair removes what is broken$/);
    // Only the image asked about, and its layers.
    expect((await tsbuild(env.root, ['verify', 'busybox'])).stdout).toBe('OK: 1 image, 1 layer verified\n');

    const fixed = await tsbuild(env.root, ['verify', '--repair']);
    expect(fixed.exitCode).toBe(0);
    expect(fixed.stdout).toMatch(/Repaired: removed 1 image and 2 layers\n$/);
    expect(await ok(env.root, ['verify'])).toBe('OK: 1 image, 1 layer verified\n');
    expect(await inconsistencies(env.root)).toEqual([]);
    expect(await leftovers(env.root)).toEqual([]);
    expect(await ok(env.root, ['images'])).not.toContain('app ');
    await ok(env.root, ['build', '-t', 'app:1', ctx]);
    expect(await ok(env.root, ['run', '--rm', 'app:1', 'cat', '/data'])).toBe('original\n');
  });

  test("an image config changed, and a layer's files gone", async () => {
    const [inspect] = JSON.parse(await ok(env.root, ['inspect', 'app:1'])) as [{ Id: string }];
    const config = join(env.root, 'image/overlay2/imagedb/content/sha256', hex(inspect.Id as never));
    await writeFile(config, (await readFile(config, 'utf8')).replace('"os":"linux"', '"os":"Linux"'));
    const r = await tsbuild(env.root, ['verify']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`image ${inspect.Id}: its config's content hashes to sha256:`);
    const { chainId, dir } = await layerFiles('busybox', 0);
    await rm(dir, { recursive: true });
    const r2 = await tsbuild(env.root, ['verify']);
    expect(r2.stdout).toContain(`layer ${chainId}: its files (`);
    expect((await tsbuild(env.root, ['verify', '--repair'])).exitCode).toBe(0);
    expect(await ok(env.root, ['verify'])).toBe('OK: 0 images, 0 layers verified\n');
    expect(await readdir(join(env.root, 'image/overlay2/layerdb/sha256')).catch(() => [])).toEqual([]);
  });
});
