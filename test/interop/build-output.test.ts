// `tsbuild build --output`: the image goes to the store and to the archives asked for, which
// other tools (and a fresh tsbuild store) take as they are.
import { join } from 'node:path';
import { execa } from 'execa';
import { ok, REPO, rootWithBusybox, tempDir, tempRoot } from '../helpers/tsbuild.js';

test('--output type=docker and type=oci write archives of the built image', async () => {
  const env = await rootWithBusybox('overlay2');
  const fresh = await tempRoot();
  try {
    const dir = await tempDir('tsbuild-out-');
    const docker = join(dir, 'hello-docker.tar');
    const oci = join(dir, 'hello-oci.tar');
    const out = await ok(env.root, [
      'build',
      '--progress',
      'plain',
      '-t',
      'hello:out',
      '-o',
      `type=docker,dest=${docker}`,
      '--output',
      `type=oci,dest=${oci}`,
      join(REPO, 'examples/hello'),
    ]);
    expect(out).toContain(`Wrote docker archive ${docker}`);
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'hello:out']));
    // The docker archive loads into an empty store as the same image, tag included.
    const loaded = await ok(fresh.root, ['load', '-i', docker]);
    expect(loaded).toContain('Loaded image: hello:out');
    const [again] = JSON.parse(await ok(fresh.root, ['inspect', 'hello:out']));
    expect(again.Id).toBe(img.Id);
    // skopeo reads the OCI archive and sees our layers.
    const skopeo = await execa('skopeo', ['inspect', `oci-archive:${oci}`], { reject: false });
    if (skopeo.exitCode !== 0) throw new Error(`skopeo inspect failed (apt-get install -y skopeo): ${skopeo.stderr}`);
    expect(JSON.parse(skopeo.stdout).Layers).toEqual(img.RootFS.Layers);
  } finally {
    await env.cleanup();
    await fresh.cleanup();
  }
});
