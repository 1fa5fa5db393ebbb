// A multi-platform image out to a registry and back, read by the peers: pushed as an OCI index
// (and as Docker's manifest list with --oci-mediatypes false) to Debian's docker-registry,
// read by `skopeo inspect --raw`, pulled by Docker 20.10 for each platform, and pulled back
// into empty stores one platform at a time and with --all-platforms; a reproducible build
// pushes the same index digest twice. The foreign image holds this machine's files
// (helpers/platforms.ts says why): nothing here runs foreign code.
import { execa } from 'execa';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { BOTH, FOREIGN, HOST, multiPlatformBase } from '../helpers/platforms.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { contextOf, ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

let registry: TestRegistry;
let dockerd: Dockerd;
let src: Env;
let dockerConfig: string;
const roots: Env[] = [];
const must = (root: string, args: string[]) => ok(root, args, { env: { DOCKER_CONFIG: dockerConfig } });
const run = (root: string, args: string[]) => tsbuild(root, args, { env: { DOCKER_CONFIG: dockerConfig } });
const freshRoot = async (): Promise<string> => {
  const t = await tempRoot();
  roots.push(t);
  return t.root;
};
const rawManifest = async (ref: string) =>
  JSON.parse((await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as {
    mediaType: string;
    manifests: { mediaType: string; digest: string; platform: { os: string; architecture: string } }[];
  };
const inspect = async (root: string, args: string[]) =>
  (JSON.parse(await must(root, ['inspect', ...args])) as Record<string, unknown>[])[0]!;

beforeAll(async () => {
  [registry, dockerd, src] = await Promise.all([startRegistry(), startDockerd(), rootWithBusybox()]);
  dockerConfig = await tempDir('tsbuild-dockercfg-');
  await multiPlatformBase(src.root, 'mbase');
  const ctx = await contextOf({
    Dockerfile: 'FROM mbase\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch\n',
    'amd64.txt': 'amd\n',
    'arm64.txt': 'arm\n',
  });
  await must(src.root, ['build', '-q', '--reproducible', '--platform', BOTH, '-t', `${registry.host}/multi:1`, ctx]);
}, 300_000);

afterAll(async () => {
  for (const r of roots) await r.cleanup();
  await src?.cleanup();
  await dockerd?.stop();
  await registry?.stop();
});

test('push: an OCI index with each platform; skopeo reads it; Docker pulls each platform', async () => {
  const out = await must(src.root, ['push', '-q', `${registry.host}/multi:1`]);
  expect(out).toBe(`${registry.host}/multi:1\n`);
  const index = await rawManifest(`${registry.host}/multi:1`);
  expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
  expect(index.manifests.map((m) => [m.mediaType, `${m.platform.os}/${m.platform.architecture}`])).toEqual([
    ['application/vnd.oci.image.manifest.v1+json', 'linux/amd64'],
    ['application/vnd.oci.image.manifest.v1+json', 'linux/arm64'],
  ]);
  for (const arch of [HOST, FOREIGN]) {
    await dockerd.ok(['pull', '--platform', `linux/${arch}`, `${registry.host}/multi:1`]);
    const [img] = JSON.parse(await dockerd.ok(['image', 'inspect', `${registry.host}/multi:1`])) as { Id: string; Architecture: string }[];
    // Docker's image ID is the config digest: the very image tsbuild stored for the platform.
    expect(img!.Architecture).toBe(arch);
    expect(img!.Id).toBe((await inspect(src.root, ['--platform', `linux/${arch}`, `${registry.host}/multi:1`])).Id);
  }
});

test("push --oci-mediatypes false: Docker's manifest list of schema 2 manifests", async () => {
  await must(src.root, ['tag', `${registry.host}/multi:1`, `${registry.host}/multi:list`]);
  await must(src.root, ['push', '-q', '--oci-mediatypes', 'false', `${registry.host}/multi:list`]);
  const list = await rawManifest(`${registry.host}/multi:list`);
  expect(list.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
  expect(list.manifests.map((m) => m.mediaType)).toEqual([
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ]);
  await dockerd.ok(['pull', '--platform', `linux/${FOREIGN}`, `${registry.host}/multi:list`]);
  const bad = await run(src.root, ['push', '--oci-mediatypes', 'maybe', `${registry.host}/multi:list`]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toBe('Error: invalid --oci-mediatypes maybe: use true or false\n');
});

test('pull --platform into an empty store, per platform; pull --all-platforms keeps the index', async () => {
  await must(src.root, ['push', '-q', `${registry.host}/multi:1`]);
  for (const arch of [HOST, FOREIGN]) {
    const root = await freshRoot();
    await must(root, ['pull', '-q', '--platform', `linux/${arch}`, `${registry.host}/multi:1`]);
    const img = await inspect(root, [`${registry.host}/multi:1`]);
    expect([img.Architecture, img.Id]).toEqual([
      arch,
      (await inspect(src.root, ['--platform', `linux/${arch}`, `${registry.host}/multi:1`])).Id,
    ]);
    expect(await must(root, ['run', `${registry.host}/multi:1`, 'cat', '/arch'])).toBe(arch === 'amd64' ? 'amd\n' : 'arm\n');
  }
  const all = await freshRoot();
  await must(all, ['pull', '-q', '--all-platforms', `${registry.host}/multi:1`]);
  const ids = async (root: string) => (await must(root, ['images', '-q', '--no-trunc', `${registry.host}/multi:1`])).trim();
  expect(await ids(all)).toBe(await ids(src.root));
  expect(await must(all, ['images', '--format', '{{.Platforms}}', `${registry.host}/multi:1`])).toBe('linux/amd64,linux/arm64\n');
  expect(await must(all, ['verify'])).toMatch(/^OK/m);
  // Pushed again from the pulled copy: the same index digest (the images and the index are the same bytes).
  await must(all, ['tag', `${registry.host}/multi:1`, `${registry.host}/multi:again`]);
  await must(all, ['push', '-q', `${registry.host}/multi:again`]);
  const digest = async (tag: string) =>
    (await execa('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${registry.host}/multi:${tag}`])).stdout;
  expect(await digest('again')).toBe(await digest('1'));

  const missing = await run(await freshRoot(), ['pull', '--platform', 'linux/s390x', `${registry.host}/multi:1`]);
  expect(missing.exitCode).toBe(1);
  expect(missing.stderr.trim().split('\n').at(-1)).toMatch(/^Error: .*linux\/s390x/);
  const both = await run(all, ['pull', '--platform', `linux/${HOST}`, '--all-platforms', `${registry.host}/multi:1`]);
  expect([both.exitCode, both.stderr]).toEqual([2, 'Error: --platform and --all-platforms cannot be used together\n']);
});

test('a reproducible multi-platform build pushes the same index digest as before', async () => {
  const root = await freshRoot();
  await must(root, ['bootstrap', 'busybox']);
  await multiPlatformBase(root, 'mbase');
  const ctx = await contextOf({
    Dockerfile: 'FROM mbase\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch\n',
    'amd64.txt': 'amd\n',
    'arm64.txt': 'arm\n',
  });
  await must(root, ['build', '-q', '--reproducible', '--platform', BOTH, '-t', `${registry.host}/multi:rebuilt`, ctx]);
  await must(root, ['push', '-q', `${registry.host}/multi:rebuilt`]);
  await must(src.root, ['push', '-q', `${registry.host}/multi:1`]);
  const digest = async (tag: string) =>
    (await execa('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${registry.host}/multi:${tag}`])).stdout;
  expect(await digest('rebuilt')).toBe(await digest('1'));
});

describe('save and load', () => {
  const archive = async (name: string) => `${await tempDir('tsbuild-mpsave-')}/${name}`;
  const ids = async (root: string, ref: string) => (await must(root, ['images', '-q', '--no-trunc', ref])).trim();

  test('an OCI archive holds the index: loaded into an empty store, the same multi-platform image; saved twice, the same bytes', async () => {
    const file = await archive('multi.oci.tar');
    await must(src.root, ['save', '--format', 'oci', '-o', file, `${registry.host}/multi:1`]);
    const again = await archive('again.oci.tar');
    await must(src.root, ['save', '--format', 'oci', '-o', again, `${registry.host}/multi:1`]);
    const sum = async (f: string) => (await execa('sha256sum', [f])).stdout.split(' ')[0];
    expect(await sum(again)).toBe(await sum(file));
    const index = JSON.parse((await execa('tar', ['-xOf', file, 'index.json'])).stdout) as { manifests: { mediaType: string }[] };
    expect(index.manifests.map((m) => m.mediaType)).toEqual(['application/vnd.oci.image.index.v1+json']);

    const root = await freshRoot();
    expect(await must(root, ['load', '-q', '-i', file])).toBe(`Loaded image: ${registry.host}/multi:1\n`);
    expect(await ids(root, `${registry.host}/multi:1`)).toBe(await ids(src.root, `${registry.host}/multi:1`));
    expect((await inspect(root, ['--platform', `linux/${FOREIGN}`, `${registry.host}/multi:1`])).Architecture).toBe(FOREIGN);
    expect(await must(root, ['verify'])).toMatch(/^OK/m);
  });

  test("a docker archive: one entry per platform (the name on this machine's); Docker 20.10 loads it, tsbuild loads the index back", async () => {
    const file = await archive('multi.docker.tar');
    await must(src.root, ['save', '-o', file, `${registry.host}/multi:1`]);
    const manifest = JSON.parse((await execa('tar', ['-xOf', file, 'manifest.json'])).stdout) as { RepoTags: string[] | null }[];
    expect(manifest).toHaveLength(2);
    expect(manifest.filter((m) => m.RepoTags !== null).map((m) => m.RepoTags)).toEqual([[`${registry.host}/multi:1`]]);

    const root = await freshRoot();
    await must(root, ['load', '-q', '-i', file]);
    expect(await ids(root, `${registry.host}/multi:1`)).toBe(await ids(src.root, `${registry.host}/multi:1`));

    await dockerd.ok(['rmi', '-f', `${registry.host}/multi:1`]);
    await dockerd.ok(['load', '-i', file]);
    const [img] = JSON.parse(await dockerd.ok(['image', 'inspect', `${registry.host}/multi:1`])) as { Id: string; Architecture: string }[];
    expect([img!.Architecture, img!.Id]).toEqual([HOST, (await inspect(src.root, [`${registry.host}/multi:1`])).Id]);
  });

  test('save --platform: that platform alone, under the name', async () => {
    const file = await archive('foreign.tar');
    await must(src.root, ['save', '--platform', `linux/${FOREIGN}`, '-o', file, `${registry.host}/multi:1`]);
    const root = await freshRoot();
    await must(root, ['load', '-q', '-i', file]);
    const img = await inspect(root, [`${registry.host}/multi:1`]);
    expect(img.Architecture).toBe(FOREIGN);
    expect(await must(root, ['images', '--format', '{{.Platforms}}'])).toBe(`linux/${FOREIGN}\n`);
    const missing = await run(src.root, ['save', '--platform', 'linux/s390x', '-o', file, `${registry.host}/multi:1`]);
    expect([missing.exitCode, missing.stderr]).toEqual([
      1,
      `Error: image ${registry.host}/multi:1 has no linux/s390x image (it has linux/amd64, linux/arm64)\n`,
    ]);
  });
});
