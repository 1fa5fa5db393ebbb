// The OCI side: skopeo inspects our archives (the OCI format, and the Docker format both as a
// docker-archive and as the OCI layout it also is), umoci verifies and unpacks them into a
// runtime bundle whose rootfs is our image's, and tsbuild loads what skopeo writes (gzip layers,
// a bare ref.name) back to the same image.
import { readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireTool } from '../helpers/dockerd.js';
import { ok, rootWithBusybox } from '../helpers/tsbuild.js';
import { buildTestImage, scratch, tarFile, type BuiltImage } from './util.js';

const SKOPEO = '/usr/bin/skopeo';
const UMOCI = '/usr/bin/umoci';

async function run(cmd: string, args: readonly string[]): Promise<string> {
  const r = await execa(cmd, [...args], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.exitCode}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return String(r.stdout);
}

/** The manifest index.json names first, read from an OCI archive. */
async function firstManifest(archive: string): Promise<{ layers: { mediaType: string; digest: string }[] }> {
  const index = JSON.parse((await tarFile(archive, 'index.json')).toString()) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  return JSON.parse((await tarFile(archive, `blobs/sha256/${digest.slice('sha256:'.length)}`)).toString()) as {
    layers: { mediaType: string; digest: string }[];
  };
}

interface SkopeoInspect {
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
}

describe('OCI tools interop (skopeo, umoci)', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let image: BuiltImage;
  let ociArchive: string;
  let dockerArchive: string;
  const tmp = scratch();

  beforeAll(async () => {
    await requireTool(SKOPEO, 'skopeo');
    await requireTool(UMOCI, 'umoci');
    env = await rootWithBusybox();
    image = await buildTestImage(env.root, 'interop/oci:v1', tmp);
    const dir = await tmp.dir();
    ociArchive = join(dir, 'oci.tar');
    dockerArchive = join(dir, 'docker.tar');
    await ok(env.root, ['save', '--format', 'oci', '-o', ociArchive, image.ref]);
    await ok(env.root, ['save', '-o', dockerArchive, image.ref]);
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
    await tmp.cleanup();
  });

  test('skopeo inspect shows our layer digests, from the OCI archive and from both readings of the Docker one', async () => {
    const index = JSON.parse((await tarFile(ociArchive, 'index.json')).toString()) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.annotations['org.opencontainers.image.ref.name']).toBe('v1');
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe('docker.io/interop/oci:v1');

    const fromOci = JSON.parse(await run(SKOPEO, ['inspect', `oci-archive:${ociArchive}`])) as SkopeoInspect;
    expect(fromOci.Layers).toEqual(image.layers);
    expect(fromOci.Digest).toBe(index.manifests[0]!.digest);
    expect(fromOci.Os).toBe('linux');
    const byTag = JSON.parse(await run(SKOPEO, ['inspect', `oci-archive:${ociArchive}:v1`])) as SkopeoInspect;
    expect(byTag.Layers).toEqual(image.layers);

    const asDocker = JSON.parse(await run(SKOPEO, ['inspect', `docker-archive:${dockerArchive}`])) as SkopeoInspect;
    expect(asDocker.Layers).toEqual(image.layers);
    const asOci = JSON.parse(await run(SKOPEO, ['inspect', `oci-archive:${dockerArchive}`])) as SkopeoInspect;
    expect(asOci.Layers).toEqual(image.layers);
  });

  test('umoci unpacks our OCI archive into a bundle whose rootfs has the RUN steps’ files', async () => {
    const dir = await tmp.dir();
    const layout = join(dir, 'layout');
    await run('mkdir', [layout]);
    await run('tar', ['-xf', ociArchive, '-C', layout]);
    const bundle = join(dir, 'bundle');
    await run(UMOCI, ['unpack', '--image', `${layout}:v1`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/run-file'), 'utf8')).toBe('made-by-run\n');
    expect(await readFile(join(bundle, 'rootfs/d/f'), 'utf8')).toBe('second\n');
    await expect(access(join(bundle, 'rootfs/gone'))).rejects.toThrow(); // deleted by a later layer
    await access(join(bundle, 'rootfs/bin/busybox'));
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { env: string[]; args: string[] } };
    expect(config.process.env).toContain('GREETING=hello');
    expect(config.process.args).toEqual(['/bin/sh']);

    // The Docker format is an OCI layout too.
    const layout2 = join(dir, 'layout2');
    await run('mkdir', [layout2]);
    await run('tar', ['-xf', dockerArchive, '-C', layout2]);
    await run(UMOCI, ['unpack', '--image', `${layout2}:v1`, join(dir, 'bundle2')]);
    expect(await readFile(join(dir, 'bundle2/rootfs/run-file'), 'utf8')).toBe('made-by-run\n');
  });

  test('tsbuild load takes an OCI archive skopeo wrote (gzip layers, bare ref.name): same image, untagged', async () => {
    const copied = join(await tmp.dir(), 'skopeo.tar');
    await run(SKOPEO, ['copy', `oci-archive:${ociArchive}:v1`, `oci-archive:${copied}:renamed`]);
    const manifest = await firstManifest(copied);
    expect(manifest.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);

    const fresh = await rootWithBusybox();
    try {
      // A ref.name of just "renamed" names no repository: docker's untagged-image message.
      expect(await ok(fresh.root, ['load', '-i', copied])).toBe(`Loaded image ID: ${image.id}\n`);
      expect(await ok(fresh.root, ['run', image.id, 'cat', '/run-file'])).toBe('made-by-run\n');
    } finally {
      await fresh.cleanup();
    }
  });
});
