// `tsbuild import` makes a one-layer image whose diffID is the sha256 of the tar as given
// (decompressed), and an image built FROM it works like any other.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { sha256 } from '../../src/digest.js';
import { ok, tempDir, tempRoot } from '../helpers/tsbuild.js';

describe('import', () => {
  let env: Awaited<ReturnType<typeof tempRoot>>;
  beforeAll(async () => {
    env = await tempRoot();
  });
  afterAll(async () => env?.cleanup());

  test('a gzipped rootfs becomes a one-layer image with the tar’s own diffID', async () => {
    const dir = await tempDir();
    const rootfs = join(dir, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'etc/os-release'), 'NAME=test\n');
    await mkdir(join(rootfs, 'usr/share/long-'.padEnd(150, 'x')), { recursive: true });
    await execa('tar', ['-C', rootfs, '-czf', join(dir, 'rootfs.tar.gz'), '.']);

    const out = await ok(env.root, ['import', join(dir, 'rootfs.tar.gz'), 'imported:1']);
    const id = out.trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'imported:1']));
    expect(img.Id).toBe(id);
    const tar = gunzipSync(await readFile(join(dir, 'rootfs.tar.gz')));
    expect(img.RootFS.Layers).toEqual([sha256(tar)]);
    const history = await ok(env.root, ['history', 'imported:1']);
    expect(history).toMatch(/Imported from/);

    // Build on it.
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM imported:1\nCOPY f /etc/f\nCMD ["/bin/true"]\n');
    await writeFile(join(ctx, 'f'), 'file\n');
    await ok(env.root, ['build', '-t', 'derived', ctx]);
    const [derived] = JSON.parse(await ok(env.root, ['inspect', 'derived']));
    expect(derived.RootFS.Layers).toHaveLength(2);
    expect(derived.RootFS.Layers[0]).toBe(sha256(tar));
  });
});
