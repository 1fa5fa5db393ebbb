// push and pull against a real registry (Debian's docker-registry, distribution 2.8) on
// 127.0.0.1, checked with skopeo as an independent client: what we push is what other tools
// read (and decompress), what we pull runs, a second push sends nothing, a blob another repository holds is
// mounted, zstd round-trips, a multi-platform index resolves to this machine's image, and a
// corrupted blob fails the pull and leaves the store as it was.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { hex, sha256, type Digest } from '../../src/digest.js';
import { Registry } from '../../src/registry/client.js';
import { MediaType, serializeImageManifest, serializeIndex } from '../../src/image/manifest.js';
import { pushImage } from '../../src/registry/push.js';
import { GZIP_BLOCK_SIZE } from '../../src/runtime/gzip.js';
import { Store } from '../../src/store/store.js';
import { startProxy, startRegistry, type RequestRecord, type TestRegistry } from '../helpers/registry.js';
import { CLI, ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

describe('registry push and pull', () => {
  let registry: TestRegistry;
  let src: Env;
  let dockerConfig: string;
  const roots: Env[] = [];
  /** tsbuild with an empty Docker config: the host's credentials play no part. */
  const run = (root: string, args: string[]) => tsbuild(root, args, { env: { DOCKER_CONFIG: dockerConfig } });
  const must = (root: string, args: string[]) => ok(root, args, { env: { DOCKER_CONFIG: dockerConfig } });
  const freshRoot = async (): Promise<string> => {
    const t = await tempRoot();
    roots.push(t);
    return t.root;
  };
  const inspect = async (root: string, ref: string) => JSON.parse(await must(root, ['inspect', ref]))[0];
  const skopeo = async (...args: string[]) => (await execa('skopeo', args)).stdout;
  const rawManifest = async (ref: string) => JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`));
  const since = async (n: number): Promise<RequestRecord[]> => (await registry.requests()).slice(n);
  /** No image, no layer, no snapshot, no temp file: a store a failed pull left as it found it. */
  const expectEmptyStore = async (root: string): Promise<void> => {
    expect(await must(root, ['images'])).toBe('REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
    const driver = (await readdir(join(root, 'image')))[0]!;
    expect(await readdir(join(root, 'image', driver, 'layerdb/sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(root, 'image', driver, 'imagedb/content/sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(root, 'tmp')).catch(() => [])).toEqual([]);
    const snapshots = (await readdir(join(root, driver)).catch(() => [] as string[])).filter((n) => n !== 'l' && n !== 'dir');
    expect(snapshots).toEqual([]);
    if (driver === 'vfs') expect(await readdir(join(root, 'vfs/dir')).catch(() => [])).toEqual([]);
  };
  /** `app` pushed as app:1, once: the tests that read it do not depend on running after the first. */
  let firstPush: Promise<string> | undefined;
  const pushApp = (): Promise<string> =>
    (firstPush ??= (async () => {
      await must(src.root, ['tag', 'app', `${registry.host}/app:1`]);
      return must(src.root, ['push', `${registry.host}/app:1`]);
    })());

  beforeAll(async () => {
    registry = await startRegistry();
    dockerConfig = await tempDir('tsbuild-dockercfg-');
    src = await rootWithBusybox();
    const ctx = await tempDir();
    await writeFile(join(ctx, 'a'), 'layer a\n');
    await writeFile(join(ctx, 'b'), 'layer b\n'.repeat(1000));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a /a\nCOPY b /b\nCMD ["cat", "/a"]\n');
    await ok(src.root, ['build', '-t', 'app', ctx]);
    await rm(ctx, { recursive: true, force: true });
  });
  afterAll(async () => {
    for (const r of roots) await r.cleanup();
    await src?.cleanup();
    await registry?.stop();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  });

  test('push, then pull into an empty store: the same image ID, and it runs', async () => {
    const ref = `${registry.host}/app:1`;
    const app = await inspect(src.root, 'app');
    const out = await pushApp();
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe(`The push refers to repository [${registry.host}/app]`);
    for (const diffId of app.RootFS.Layers as Digest[]) expect(lines).toContain(`${hex(diffId).slice(0, 12)}: Pushed`);
    const m = /^1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(lines.at(-1)!);
    expect(m).not.toBeNull();
    const manifestDigest = m![1]!;
    expect(JSON.stringify(await rawManifest(ref))).toHaveLength(Number(m![2]));
    expect((await inspect(src.root, ref)).RepoDigests).toContain(`${registry.host}/app@${manifestDigest}`);

    const dst = await freshRoot();
    const pulled = await must(dst, ['pull', ref]);
    expect(pulled).toContain(`1: Pulling from app\n`);
    expect(pulled).toContain(`Digest: ${manifestDigest}\n`);
    expect(pulled).toContain(`Status: Downloaded newer image for ${ref}\n`);
    expect(pulled.trimEnd().split('\n').at(-1)).toBe(ref);
    const img = await inspect(dst, ref);
    expect(img.Id).toBe(app.Id);
    expect(img.RootFS.Layers).toEqual(app.RootFS.Layers);
    expect(img.RepoDigests).toEqual([`${registry.host}/app@${manifestDigest}`]);
    const repos = JSON.parse(await readFile(join(dst, 'image', img.GraphDriver.Name, 'repositories.json'), 'utf8'));
    expect(repos.Repositories[`${registry.host}/app`]).toEqual({ [ref]: app.Id, [`${registry.host}/app@${manifestDigest}`]: app.Id });
    expect(await must(dst, ['run', ref])).toBe('layer a\n');

    // Again: nothing to download, and docker's wording for it.
    const again = await must(dst, ['pull', ref]);
    expect(again).toContain(`Status: Image is up to date for ${ref}\n`);
    expect(again.match(/: Already exists$/gm)).toHaveLength(3);
  });

  test('skopeo reads what we pushed: our layers, our config, valid blobs', async () => {
    await pushApp();
    const ref = `${registry.host}/app:1`;
    const app = await inspect(src.root, 'app');
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`));
    const raw = await rawManifest(ref);
    expect(raw.mediaType).toBe(MediaType.dockerManifest);
    expect(raw.config.digest).toBe(app.Id);
    expect(info.Layers).toEqual(raw.layers.map((l: { digest: string }) => l.digest));
    expect(raw.layers.every((l: { mediaType: string }) => l.mediaType === MediaType.dockerLayerGzip)).toBe(true);
    const config = await skopeo('inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}`);
    expect(sha256(Buffer.from(config))).toBe(app.Id);
    // skopeo copy checks every blob's digest as it copies.
    const dir = await tempDir('tsbuild-oci-');
    try {
      await skopeo('copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:1`);
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(index.manifests).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('Go’s gzip reader (skopeo) decompresses each pushed layer whole, one of several gzip members included', async () => {
    await pushApp();
    const ref = `${registry.host}/app:1`;
    const app = await inspect(src.root, 'app');
    const dir = await tempDir('tsbuild-dir-');
    try {
      // dir: with --dest-decompress stores each layer decompressed, named by its digest.
      await skopeo('copy', '--src-tls-verify=false', '--dest-decompress', `docker://${ref}`, `dir:${dir}`);
      const sizes: number[] = [];
      for (const diffId of app.RootFS.Layers as Digest[]) {
        const tar = await readFile(join(dir, hex(diffId)));
        expect(sha256(tar)).toBe(diffId);
        sizes.push(tar.length);
      }
      // A gzip member per MiB of tar: busybox's layer has several, and was read past the first.
      expect(Math.max(...sizes)).toBeGreaterThan(GZIP_BLOCK_SIZE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a second push sends no layer and compresses nothing (the compressed-blob cache)', async () => {
    await pushApp();
    const ref = `${registry.host}/app:1`;
    const app = await inspect(src.root, 'app');
    const driver = app.GraphDriver.Name as string;
    for (const diffId of app.RootFS.Layers as Digest[]) {
      const cache = JSON.parse(
        await readFile(join(src.root, 'image', driver, 'distribution/v2metadata-by-diffid/sha256', hex(diffId)), 'utf8'),
      );
      expect(cache[0]).toMatchObject({ SourceRepository: `${registry.host}/app`, Compression: 'gzip' });
    }
    const before = (await registry.requests()).length;
    const out = await must(src.root, ['push', ref]);
    expect(out.match(/: Layer already exists$/gm)).toHaveLength(3);
    const requests = await since(before);
    expect(requests.filter((r) => r.url.includes('/blobs/') && r.method !== 'HEAD')).toEqual([]);

    // The engine says it did not run the compressor for any layer.
    const store = await Store.open({ root: src.root });
    const result = await pushImage(store, ref);
    expect(result.layers.map((l) => [l.outcome, l.compressed])).toEqual([
      ['exists', false],
      ['exists', false],
      ['exists', false],
    ]);
  });

  test('a layer another repository of the registry holds is mounted, not uploaded', async () => {
    await pushApp();
    const ref = `${registry.host}/other/app:2`;
    await must(src.root, ['tag', 'app', ref]);
    const before = (await registry.requests()).length;
    const out = await must(src.root, ['push', ref]);
    expect(out.match(/: Mounted from app$/gm)).toHaveLength(3);
    const requests = await since(before);
    expect(requests.filter((r) => r.method === 'POST' && r.url.includes('mount=') && r.status === 201)).toHaveLength(3);
    // Only the config is uploaded.
    expect(requests.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'))).toHaveLength(1);
  });

  test('layers the store has are not downloaded', async () => {
    await pushApp();
    const ref = `${registry.host}/app:1`;
    const raw = await rawManifest(ref);
    const withBase = await rootWithBusybox();
    roots.push(withBase);
    const before = (await registry.requests()).length;
    const out = await must(withBase.root, ['pull', ref]);
    const base = raw.layers[0].digest as string;
    expect(out).toContain(`${hex(base as Digest).slice(0, 12)}: Already exists\n`);
    expect(out.match(/: Pull complete$/gm)).toHaveLength(2);
    const gets = (await since(before)).filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
    expect(gets.map((r) => r.url)).not.toContain(`/v2/app/blobs/${base}`);
    expect(gets).toHaveLength(3); // the config and two layers
  });

  test('zstd: an OCI manifest with zstd layers, pulled back to the same image', async () => {
    const ref = `${registry.host}/zapp:1`;
    const app = await inspect(src.root, 'app');
    await must(src.root, ['tag', 'app', ref]);
    await must(src.root, ['push', '--compression', 'zstd', ref]);
    const raw = await rawManifest(ref);
    expect(raw.mediaType).toBe(MediaType.ociManifest);
    expect(raw.config.mediaType).toBe(MediaType.ociConfig);
    expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(3).fill(MediaType.ociLayerZstd));
    const dst = await freshRoot();
    await must(dst, ['pull', ref]);
    expect((await inspect(dst, ref)).Id).toBe(app.Id);
    expect(await must(dst, ['run', ref, 'cat', '/a'])).toBe('layer a\n');
  });

  test('a multi-platform index resolves to this machine’s image, or to --platform’s', async () => {
    const app = await inspect(src.root, 'app');
    const amd64Ref = `${registry.host}/multi:amd64`;
    await must(src.root, ['tag', 'app', amd64Ref]);
    await must(src.root, ['push', amd64Ref]);
    const amd64 = await rawManifest(amd64Ref);
    const amd64Bytes = Buffer.from(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${amd64Ref}`));

    // An arm64 sibling by hand: the same layers under a config that says arm64.
    const reg = await Registry.open(registry.host);
    try {
      const repo = reg.repository('multi', ['pull', 'push']);
      const armConfig = Buffer.from(
        (await readFile(join(src.root, 'image', app.GraphDriver.Name, 'imagedb/content/sha256', hex(app.Id)), 'utf8')).replace(
          '"architecture":"amd64"',
          '"architecture":"arm64","variant":"v8"',
        ),
      );
      const { Readable } = await import('node:stream');
      await repo.uploadBlob(sha256(armConfig), armConfig.length, () => Readable.from([armConfig]));
      const armManifest = serializeImageManifest({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: sha256(armConfig), size: armConfig.length },
        layers: amd64.layers,
      });
      const armDigest = await repo.putManifest(sha256(armManifest), MediaType.dockerManifest, armManifest);
      const index = serializeIndex({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifestList,
        manifests: [
          {
            mediaType: MediaType.dockerManifest,
            digest: armDigest,
            size: armManifest.length,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
          {
            mediaType: MediaType.dockerManifest,
            digest: sha256(amd64Bytes),
            size: amd64Bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      });
      const indexDigest = await repo.putManifest('latest', MediaType.dockerManifestList, index);

      const dst = await freshRoot();
      const out = await must(dst, ['pull', `${registry.host}/multi`]);
      expect(out.startsWith('Using default tag: latest\nlatest: Pulling from multi\n')).toBe(true);
      expect(out).toContain(`Digest: ${indexDigest}\n`);
      const img = await inspect(dst, `${registry.host}/multi`);
      expect(img.Id).toBe(app.Id);
      expect(img.RepoDigests).toEqual([`${registry.host}/multi@${indexDigest}`]);

      const arm = await freshRoot();
      await must(arm, ['pull', '--platform', 'linux/arm64', `${registry.host}/multi:latest`]);
      const armImg = await inspect(arm, `${registry.host}/multi`);
      expect(armImg.Id).toBe(sha256(armConfig));
      expect(armImg.Architecture).toBe('arm64');

      const none = await run(await freshRoot(), ['pull', '--platform', 'linux/s390x', `${registry.host}/multi`]);
      expect(none.exitCode).toBe(1);
      expect(none.stderr).toBe('Error: no matching manifest for linux/s390x in the manifest list entries\n');
    } finally {
      reg.close();
    }
  });

  test('a missing image or tag is one clear line', async () => {
    const root = await freshRoot();
    const missing = await run(root, ['pull', `${registry.host}/nosuch:1`]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(`Error: manifest for ${registry.host}/nosuch:1 not found: manifest unknown: manifest unknown\n`);
    const notLocal = await run(root, ['push', `${registry.host}/nosuch:1`]);
    expect(notLocal.exitCode).toBe(1);
    expect(notLocal.stderr).toBe(`Error: An image does not exist locally with the tag: ${registry.host}/nosuch:1\n`);
    const down = await run(root, ['pull', '127.0.0.1:1/app']);
    expect(down.exitCode).toBe(1);
    expect(down.stderr).toMatch(/^Error: Get "http:\/\/127\.0\.0\.1:1\/v2\/": connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  });

  test('a corrupted blob fails the pull with a digest error and leaves nothing in the store', async () => {
    await pushApp();
    const ref = `${registry.host}/app:1`;
    const raw = await rawManifest(ref);
    const bad = raw.layers[2].digest as string;
    const proxy = await startProxy(registry.host, {
      rewriteBody(req, status) {
        if (status !== 200 || req.method !== 'GET' || !req.url?.endsWith(`/blobs/${bad}`)) return undefined;
        return (body) => {
          const out = Buffer.from(body);
          out[out.length >> 1]! ^= 0xff;
          return out;
        };
      },
    });
    try {
      const root = await freshRoot();
      const r = await run(root, ['pull', `${proxy.host}/app:1`]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^Error: filesystem layer verification failed for digest ${bad}: got sha256:[0-9a-f]{64}\\n$`));
      await expectEmptyStore(root);
    } finally {
      await proxy.stop();
    }
  });

  test('Ctrl-C during a download stops the pull (exit 130) and leaves nothing behind', async () => {
    await pushApp();
    const raw = await rawManifest(`${registry.host}/app:1`);
    const slow = raw.layers[2].digest as string;
    const proxy = await startProxy(registry.host, {
      intercept(req, res) {
        if (req.method !== 'GET' || !req.url?.endsWith(`/blobs/${slow}`)) return false;
        res.writeHead(200, { 'Content-Length': String(raw.layers[2].size), 'Content-Type': 'application/octet-stream' });
        res.write(Buffer.alloc(10)); // and then nothing, until the client gives up
        return true;
      },
    });
    try {
      const root = await freshRoot();
      const child = execa('node', [CLI, 'pull', '--root', root, `${proxy.host}/app:1`], {
        reject: false,
        env: { DOCKER_CONFIG: dockerConfig, TSBUILD_ROOT: '' },
      });
      // Wait until the slow blob has started arriving, then interrupt as a terminal would.
      while (!proxy.log.some((r) => r.url.endsWith(`/blobs/${slow}`))) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode).toBe(130);
      expect(r.stderr).toBe('Error: pull interrupted'); // execa drops the final newline
      await expectEmptyStore(root);
    } finally {
      await proxy.stop();
    }
  });

  test('a registry that answers 503 at first is retried, and the pull succeeds', async () => {
    await pushApp();
    const failed = new Set<string>();
    const proxy = await startProxy(registry.host, {
      intercept(req, res) {
        if (req.method !== 'GET' || !req.url?.includes('/blobs/') || failed.has(req.url)) return false;
        failed.add(req.url);
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}');
        return true;
      },
    });
    try {
      const root = await freshRoot();
      await must(root, ['pull', `${proxy.host}/app:1`]);
      expect((await inspect(root, `${proxy.host}/app:1`)).Id).toBe((await inspect(src.root, 'app')).Id);
      const blobs = proxy.log.filter((r) => r.url.includes('/blobs/'));
      expect(blobs.filter((r) => r.status === 503)).toHaveLength(4);
      expect(blobs.filter((r) => r.status === 200)).toHaveLength(4);
    } finally {
      await proxy.stop();
    }
  });

  test('the CLI checks its arguments', async () => {
    const root = await freshRoot();
    const bad = await run(root, ['push', '--compression', 'lz4', `${registry.host}/app:1`]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe('Error: invalid --compression lz4: use gzip or zstd\n');
    const platform = await run(root, ['pull', '--platform', 'amd64', `${registry.host}/app:1`]);
    expect(platform.stderr).toMatch(/^Error: invalid platform "amd64"/);
  });
});
