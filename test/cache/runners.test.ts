// Three CI runners sharing one registry: empty store roots A, B and C, and Debian's
// docker-registry on 127.0.0.1. A builds and exports the cache; B builds the same commit, runs
// no step, gets A's image ID and downloads only the blobs its image needs (counted in the
// registry's access log); C changes one source file and reruns exactly the steps from that COPY
// on, each saying why it missed. The same with a cache directory (type=local) and with the
// cache inside the pushed image (type=inline).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

describe('a shared build cache across empty runners', () => {
  let registry: TestRegistry;
  let base: string;
  /** The builder stage's base: busybox and a layer more, which the final image does not contain. */
  let sdk: string;
  const roots: Env[] = [];

  beforeAll(async () => {
    registry = await startRegistry();
    const src = await rootWithBusybox();
    roots.push(src);
    base = `${registry.host}/busybox:ci`;
    await ok(src.root, ['tag', 'busybox', base]);
    await ok(src.root, ['push', base]);
    sdk = `${registry.host}/sdk:ci`;
    const sdkCtx = await tempDir();
    await writeFile(join(sdkCtx, 'Dockerfile'), 'FROM busybox\nRUN echo compilers > /sdk\n');
    await ok(src.root, ['build', '-t', sdk, '--push', sdkCtx]);
  });

  afterAll(async () => {
    for (const r of roots) await r.cleanup();
    await registry?.stop();
  });

  async function runner(): Promise<string> {
    const t = await tempRoot();
    roots.push(t);
    return t.root;
  }

  /** A commit of a two-stage project: the builder stage's layers are not part of the image. */
  async function project(): Promise<string> {
    const ctx = await tempDir();
    await mkdir(join(ctx, 'src'));
    for (let i = 0; i < 20; i++) await writeFile(join(ctx, 'src', `f${i}.txt`), `file ${i}\n`);
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${sdk} AS builder`,
        'ARG GREETING=hello',
        'WORKDIR /src',
        'COPY src/ /src/',
        'RUN cat /src/*.txt > /out.txt && echo $GREETING >> /out.txt',
        `FROM ${base}`,
        'ENV APP=1',
        'COPY --from=builder /out.txt /app/out.txt',
        'COPY --link src/f1.txt /linked/',
        'LABEL ci=yes',
        'RUN wc -c /app/out.txt > /app/size',
        'CMD ["cat", "/app/out.txt"]',
        '',
      ].join('\n'),
    );
    return ctx;
  }

  async function build(root: string, ctx: string, flags: readonly string[]): Promise<{ id: string; out: string }> {
    const iid = join(await tempDir(), 'iid');
    const out = await ok(root, ['build', '--progress', 'plain', '--iidfile', iid, ...flags, ctx]);
    return { id: await readFile(iid, 'utf8'), out };
  }

  const ran = (out: string): number => (out.match(/^--> [0-9a-f]{12} \(/gm) ?? []).length;
  const cached = (out: string): number => (out.match(/^--> CACHED$/gm) ?? []).length;
  const misses = (out: string): string[] => [...out.matchAll(/^--> cache miss: (.*)$/gm)].map((m) => m[1]!);

  /** Layer blobs GET from `repo` since request number `from` of the access log. */
  async function blobGets(from: number, repo: string): Promise<string[]> {
    return (await registry.requests())
      .slice(from)
      .filter((r) => r.method === 'GET' && r.url.startsWith(`/v2/${repo}/blobs/`))
      .map((r) => r.url.split('/blobs/')[1]!);
  }

  /** C's build: one source file changed, so the steps from `COPY src/` on run again, each with a reason. */
  function expectRerunFromCopy(out: string): void {
    // WORKDIR and COPY --link are cached; COPY src/, the RUN after it, COPY --from and the last RUN run.
    expect(ran(out)).toBe(4);
    expect(cached(out)).toBe(2);
    expect(misses(out)).toEqual([
      'file changed: src/f3.txt',
      'the layer it builds on changed (a step before it ran)',
      'the files of the --from stage or image changed',
      'the layer it builds on changed (a step before it ran)',
    ]);
  }

  test('type=registry: B runs no step and downloads only its image blobs; C reruns from the changed COPY', async () => {
    const ctx = await project();
    const ref = `${registry.host}/cache:main`;
    const a = await build(await runner(), ctx, ['-t', 'app', '--cache-to', `type=registry,ref=${ref},mode=max`]);
    expect(ran(a.out)).toBe(6);

    const before = (await registry.requests()).length;
    const rootB = await runner();
    const b = await build(rootB, ctx, ['-t', 'app', '--cache-from', `type=registry,ref=${ref}`]);
    expect(b.id).toBe(a.id);
    expect(ran(b.out)).toBe(0);
    expect(cached(b.out)).toBe(6);

    // The cache's config says which blob holds which layer; B fetched those of its image's
    // layers above the base (the base's came from the base's repository, as FROM pulls it)
    // and none of the builder stage's.
    const manifest = JSON.parse(
      await (
        await fetch(`http://${ref.replace('/cache:', '/v2/cache/manifests/')}`, {
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).text(),
    ) as { config: { digest: string }; layers: { digest: string }[] };
    const config = JSON.parse(await (await fetch(`http://${registry.host}/v2/cache/blobs/${manifest.config.digest}`)).text()) as {
      layers: string[];
    };
    const blobOf = new Map(config.layers.map((d, i) => [d, manifest.layers[i]!.digest]));
    const image = JSON.parse(await ok(rootB, ['inspect', 'app'])) as [{ RootFS: { Layers: string[] } }];
    const wanted = image[0].RootFS.Layers.slice(1).map((d) => blobOf.get(d));
    const got = (await blobGets(before, 'cache')).filter((d) => d !== manifest.config.digest);
    expect(got.sort()).toEqual(wanted.sort());
    // The builder stage's base was resolved (its config) but none of its layers downloaded.
    const sdkManifest = JSON.parse(
      await (
        await fetch(`http://${registry.host}/v2/sdk/manifests/ci`, {
          headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        })
      ).text(),
    ) as { layers: { digest: string }[] };
    const sdkGets = await blobGets(before, 'sdk');
    expect(sdkGets.length).toBeGreaterThan(0);
    for (const l of sdkManifest.layers) expect(sdkGets).not.toContain(l.digest);
    expect(config.layers.length).toBeGreaterThan(wanted.length + 1); // the builder stage's layers were there to take

    // --output type=registry: the image is pushed as the build holds it, not stored, so a runner
    // whose steps all hit downloads no layer of the cache at all: the push mounts them.
    const beforePush = (await registry.requests()).length;
    const pushed = await build(await runner(), ctx, [
      '--cache-from',
      `type=registry,ref=${ref}`,
      '--output',
      `type=registry,name=${registry.host}/app:b`,
    ]);
    expect(pushed.id).toBe(a.id);
    expect(pushed.out).toContain(`Pushed ${registry.host}/app:b: digest: sha256:`);
    expect((await blobGets(beforePush, 'cache')).filter((d) => d !== manifest.config.digest)).toEqual([]);
    const mounts = (await registry.requests()).slice(beforePush).filter((r) => r.method === 'POST' && r.url.includes('from=cache'));
    expect(mounts.length).toBe(wanted.length);

    await writeFile(join(ctx, 'src', 'f3.txt'), 'changed\n');
    const c = await build(await runner(), ctx, ['-t', 'app', '--cache-from', `type=registry,ref=${ref}`]);
    expect(c.id).not.toBe(a.id);
    expectRerunFromCopy(c.out);
  });

  test('type=local: a cache directory carries the build to an empty runner', async () => {
    const ctx = await project();
    const dir = join(await tempDir(), 'cache');
    const a = await build(await runner(), ctx, ['--cache-to', `type=local,dest=${dir},mode=max`]);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
    expect(index.manifests).toHaveLength(1);
    const b = await build(await runner(), ctx, ['--cache-from', `type=local,src=${dir}`]);
    expect(b.id).toBe(a.id);
    expect(ran(b.out)).toBe(0);
    await writeFile(join(ctx, 'src', 'f3.txt'), 'changed\n');
    const c = await build(await runner(), ctx, ['--cache-from', `type=local,src=${dir}`]);
    expectRerunFromCopy(c.out);
  });

  test('type=inline: the pushed image carries its cache, --cache-from IMAGE needs no cache ref', async () => {
    const ctx = await project();
    const image = `${registry.host}/app:inline`;
    // An inline cache holds the final stage's steps (mode=min): the builder stage runs again, and
    // COPY --from hits by the files it copies, which are the same (only their layer's mtimes differ).
    const flags = ['-t', image];
    const a = await build(await runner(), ctx, [...flags, '--cache-to', 'type=inline', '--push']);
    const rootB = await runner();
    const b = await build(rootB, ctx, [...flags, '--cache-from', image, '--cache-to', 'type=inline']);
    expect(b.id).toBe(a.id);
    expect(ran(b.out)).toBe(3);
    expect(cached(b.out)).toBe(3);
    await writeFile(join(ctx, 'src', 'f3.txt'), 'changed\n');
    const c = await build(await runner(), ctx, [...flags, '--cache-from', image]);
    expect(c.id).not.toBe(a.id);
    expect(misses(c.out)).toContain('the files of the --from stage or image changed');
  });

  test('sources are tried in order; an image without a cache is a warning; zstd and Docker media types', async () => {
    const ctx = await project();
    const zstd = `${registry.host}/cache:zstd`;
    const docker = `${registry.host}/cache:docker`;
    const a = await build(await runner(), ctx, [
      '--cache-to',
      `type=registry,ref=${zstd},mode=max,compression=zstd`,
      '--cache-to',
      `type=registry,ref=${docker},mode=max,oci-mediatypes=false`,
    ]);
    const get = async (tag: string) =>
      (await (
        await fetch(`http://${registry.host}/v2/cache/manifests/${tag}`, {
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
        })
      ).json()) as { mediaType: string; layers: { mediaType: string }[] };
    expect((await get('zstd')).layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const d = await get('docker');
    expect(d.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(d.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');

    for (const from of [zstd, docker]) {
      const r = await build(await runner(), ctx, [
        '--cache-from',
        `type=registry,ref=${registry.host}/cache:nothing-here`,
        '--cache-from',
        `type=registry,ref=${base}`,
        '--cache-from',
        `type=registry,ref=${from}`,
      ]);
      expect(r.id).toBe(a.id);
      expect(ran(r.out)).toBe(0);
    }
    const t = await runner();
    const r = await tsbuild(t, ['build', '--cache-from', `type=registry,ref=${base}`, ctx]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(
      `--cache-from ${base}: an image without a tsbuild cache (build it with --cache-to type=inline); building without it`,
    );
  });
});
