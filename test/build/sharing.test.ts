// Layers are content-addressed and shared (seed 003): two three-layer images that share their
// two bottom layers take four layer directories, not six, and removing one image keeps what
// the other still uses.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, REPO, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

const CONTEXT = join(REPO, 'testdata/contexts/shared');

async function layerDirs(root: string): Promise<string[]> {
  return (await readdir(join(root, 'overlay2'))).filter((n) => n !== 'l' && !n.startsWith('.'));
}

async function layerdb(root: string): Promise<string[]> {
  return readdir(join(root, 'image/overlay2/layerdb/sha256'));
}

describe('layer sharing', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  test('two images sharing two layers take four layer dirs; rmi keeps the shared ones', async () => {
    await ok(env.root, ['build', '-t', 'img-a', '-f', join(CONTEXT, 'Dockerfile.a'), CONTEXT]);
    await ok(env.root, ['build', '-t', 'img-b', '-f', join(CONTEXT, 'Dockerfile.b'), CONTEXT]);
    const a = JSON.parse(await ok(env.root, ['inspect', 'img-a']))[0];
    const b = JSON.parse(await ok(env.root, ['inspect', 'img-b']))[0];
    expect(a.RootFS.Layers).toHaveLength(3);
    expect(b.RootFS.Layers).toHaveLength(3);
    expect(a.RootFS.Layers.slice(0, 2)).toEqual(b.RootFS.Layers.slice(0, 2));
    expect(a.RootFS.Layers[2]).not.toEqual(b.RootFS.Layers[2]);
    expect(await layerDirs(env.root)).toHaveLength(4);
    expect(await layerdb(env.root)).toHaveLength(4);

    const rmi = await ok(env.root, ['rmi', 'img-a']);
    expect(rmi).toContain('Untagged: img-a:latest');
    expect(rmi).toContain(`Deleted: ${a.Id}`);
    expect(await layerDirs(env.root)).toHaveLength(3);
    expect(await layerdb(env.root)).toHaveLength(3);
    // img-b is whole: every layer it names is still there.
    const again = JSON.parse(await ok(env.root, ['inspect', 'img-b']))[0];
    expect(again.RootFS.Layers).toEqual(b.RootFS.Layers);
    expect((await tsbuild(env.root, ['inspect', 'img-a'])).stderr).toMatch(/No such image: img-a:latest/);

    await ok(env.root, ['rmi', 'img-b']);
    expect(await layerDirs(env.root)).toHaveLength(1); // busybox's own layer
  });

  test('rmi of one tag keeps the image while another tag points at it', async () => {
    await ok(env.root, ['tag', 'busybox', 'mybox:1']);
    const out = await ok(env.root, ['rmi', 'mybox:1']);
    expect(out).toBe('Untagged: mybox:1\n');
    expect(await ok(env.root, ['images'])).toMatch(/^busybox\s+latest/m);
  });
});
