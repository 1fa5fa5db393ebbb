// tsbuild and Docker Engine 20.10 exchange images through archives, both ways: what tsbuild
// saves, `docker load` takes, runs and shows the same history of; what Docker's classic builder
// makes and `docker save` writes, `tsbuild load` takes, builds on and runs.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox } from '../helpers/tsbuild.js';
import { DOCKER, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import {
  buildTestImage,
  inspectImage,
  pipeline,
  q,
  scratch,
  tarFile,
  tarSymlinks,
  tsbuildCmd,
  tsbuildHistory,
  type BuiltImage,
} from './util.js';

describe('Docker Engine interop', () => {
  let dockerd: Dockerd;
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let image: BuiltImage;
  const tmp = scratch();

  beforeAll(async () => {
    [dockerd, env] = await Promise.all([startDockerd(), rootWithBusybox()]);
    image = await buildTestImage(env.root, 'interop/tsbuilt:1', tmp);
  }, 180_000);

  afterAll(async () => {
    await dockerd?.stop();
    await env?.cleanup();
    await tmp.cleanup();
  }, 120_000);

  test('tsbuild save | docker load: docker runs the image, and its history and layer sizes are ours', async () => {
    const { stdout } = await pipeline(`${tsbuildCmd(env.root, ['save', image.ref])} | ${DOCKER} load`, dockerd.env);
    expect(stdout).toContain('Loaded image: interop/tsbuilt:1');

    const [inspected] = JSON.parse(await dockerd.ok(['image', 'inspect', image.ref])) as { Id: string; RootFS: { Layers: string[] } }[];
    expect(inspected!.Id).toBe(image.id);
    expect(inspected!.RootFS.Layers).toEqual(image.layers);

    const run = await dockerd.ok(['run', '--rm', '--network', 'none', image.ref, 'cat', '/run-file', '/d/f']);
    expect(run).toBe('made-by-run\nsecond');
    const gone = await dockerd.docker(['run', '--rm', '--network', 'none', image.ref, 'ls', '/gone']);
    expect(gone.exitCode).not.toBe(0);

    // docker history: one row per step, newest first, with the sizes tsbuild history shows.
    const docker = (await dockerd.ok(['history', '--no-trunc', '--human=false', '--format', '{{json .}}', image.ref]))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { CreatedBy: string; Size: string });
    const ours = await tsbuildHistory(env.root, image.ref);
    expect(docker.map((r) => r.CreatedBy)).toEqual(ours.map((r) => r.CreatedBy));
    expect(docker.map((r) => Number(r.Size))).toEqual(ours.map((r) => r.Size));
    expect(ours.filter((r) => r.CreatedBy.startsWith('RUN')).every((r) => r.Size > 0)).toBe(true);
  });

  test('docker build FROM our busybox, docker save → tsbuild load → a tsbuild build FROM it runs', async () => {
    await pipeline(`${tsbuildCmd(env.root, ['save', 'busybox:latest'])} | ${DOCKER} load`, dockerd.env);
    const ctx = await tmp.dir('tsbuild-docker-ctx-');
    // Two RUN steps that change nothing give two layers with one diffID: docker save writes the
    // second as a symlink to the first.
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN echo docker-made > /from-docker\nRUN true\nRUN true\n');
    await dockerd.ok(['build', '--network', 'none', '-t', 'dockermade:1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
    const dockerId = (await dockerd.ok(['image', 'inspect', '--format', '{{.Id}}', 'dockermade:1'])).trim();

    const archive = join(await tmp.dir('tsbuild-docker-save-'), 'dockermade.tar');
    await dockerd.ok(['save', '-o', archive, 'dockermade:1']);
    // Docker 20.10's own layout: <imageID>.json and <v1 id>/layer.tar.
    const [item] = JSON.parse((await tarFile(archive, 'manifest.json')).toString()) as { Config: string; Layers: string[] }[];
    expect(item!.Config).toMatch(/^[0-9a-f]{64}\.json$/);
    expect(item!.Layers.every((l) => /^[0-9a-f]{64}\/layer\.tar$/.test(l))).toBe(true);
    expect(await tarSymlinks(archive)).toEqual([item!.Layers[3]]);

    const loaded = await ok(env.root, ['load', '-i', archive]);
    expect(loaded).toBe('Loaded image: dockermade:1\n');
    const ours = await inspectImage(env.root, 'dockermade:1');
    expect(ours.id).toBe(dockerId);
    expect(ours.layers[0]).toBe((await inspectImage(env.root, 'busybox:latest')).layers[0]);

    const ctx2 = await tmp.dir('tsbuild-docker-ctx-');
    await writeFile(join(ctx2, 'Dockerfile'), 'FROM dockermade:1\nRUN cat /from-docker > /copied\n');
    await ok(env.root, ['build', '-q', '-t', 'on-docker:1', ctx2]);
    expect(await ok(env.root, ['run', 'on-docker:1', 'cat', '/from-docker', '/copied'])).toBe('docker-made\ndocker-made\n');
  });

  test('an image that went tsbuild → docker → docker save comes back to a fresh store with the same ID', async () => {
    await pipeline(`${tsbuildCmd(env.root, ['save', image.ref])} | ${DOCKER} load`, dockerd.env);
    const resaved = join(await tmp.dir('tsbuild-docker-resave-'), 'resaved.tar');
    await pipeline(`${DOCKER} save ${q(image.ref)} > ${q(resaved)}`, dockerd.env);
    const fresh = await rootWithBusybox();
    try {
      expect(await ok(fresh.root, ['load', '-i', resaved])).toBe(`Loaded image: ${image.ref}\n`);
      const back = await inspectImage(fresh.root, image.ref);
      expect(back.id).toBe(image.id);
      expect(back.layers).toEqual(image.layers);
      expect(await ok(fresh.root, ['run', image.ref, 'cat', '/run-file'])).toBe('made-by-run\n');
    } finally {
      await fresh.cleanup();
    }
  });
});
