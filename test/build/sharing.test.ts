// Layers are content-addressed and shared: two three-layer images that share their
// two bottom layers take four layer directories, not six, and removing one image keeps what
// the other still uses.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, REPO, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

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

  test('the seed’s RUN example: same first RUN, different second RUNs → four layer dirs, not six', async () => {
    const fresh = await rootWithBusybox('overlay2');
    try {
      const ctx = await tempDir();
      // busybox commands in place of the seed's `apk add` lines
      await writeFile(
        join(ctx, 'Dockerfile.nginx'),
        'FROM busybox\nRUN mkdir -p /etc/ssl && echo certs > /etc/ssl/ca-certificates.crt\nRUN echo nginx > /usr/sbin/nginx\n',
      );
      await writeFile(
        join(ctx, 'Dockerfile.python'),
        'FROM busybox\nRUN mkdir -p /etc/ssl && echo certs > /etc/ssl/ca-certificates.crt\nRUN echo python3 > /usr/bin/python3\n',
      );
      const out1 = await ok(fresh.root, ['build', '--progress', 'plain', '-t', 'nginx', '-f', join(ctx, 'Dockerfile.nginx'), ctx]);
      const out2 = await ok(fresh.root, ['build', '--progress', 'plain', '-t', 'python3', '-f', join(ctx, 'Dockerfile.python'), ctx]);
      expect(out1).not.toMatch(/CACHED/);
      expect(out2).toMatch(/STEP 2\/3: RUN mkdir[^\n]*\n--> CACHED/);
      const [a] = JSON.parse(await ok(fresh.root, ['inspect', 'nginx']));
      const [b] = JSON.parse(await ok(fresh.root, ['inspect', 'python3']));
      expect(a.RootFS.Layers.slice(0, 2)).toEqual(b.RootFS.Layers.slice(0, 2));
      expect(await layerDirs(fresh.root)).toHaveLength(4);
      // --no-cache runs the step again: a new layer (its files have new mtimes). Layer tars keep
      // whole seconds, so a rebuild within the same second as the first would give the same
      // layer: builds got fast enough for that to happen, hence the wait for the next second.
      await new Promise((r) => setTimeout(r, 1100));
      await ok(fresh.root, ['build', '--no-cache', '-t', 'python3-again', '-f', join(ctx, 'Dockerfile.python'), ctx]);
      expect((await layerDirs(fresh.root)).length).toBeGreaterThan(4);
    } finally {
      await fresh.cleanup();
    }
  });
});
