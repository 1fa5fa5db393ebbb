// Issue 23's end-to-end case with real foreign code: an amd64 + arm64 build of a Dockerfile
// whose RUN steps run natively for amd64 and under QEMU user emulation for arm64 (uname -m says
// aarch64), on real bases for each (the host's busybox, and the arm64 one that
// `bootstrap busybox --platform linux/arm64` makes from Debian's busybox-static:arm64). The
// index is saved as an OCI archive, pushed to Debian's docker-registry, read by
// `skopeo inspect --raw`, pulled and run by Docker 20.10 for arm64 (through the same binfmt_misc
// handler), and pulled back into an empty store per platform, where each image's files say
// which CPU ran its steps.
//
// Needs the aarch64 handler (scripts/setup.sh registers it) and arm64 in dpkg's architectures.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { contextOf, ok, rootWithBusybox, tempDir, tempRoot } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

let registry: TestRegistry;
let dockerd: Dockerd;
let src: Env;
const roots: Env[] = [];
let ref: string;

const DOCKERFILE = `FROM busybox AS base-amd64
FROM busybox:arm64 AS base-arm64
FROM base-$TARGETARCH
RUN uname -m > /arch
ARG TARGETPLATFORM
RUN echo "built for $TARGETPLATFORM" > /target && wc -c < /bin/busybox > /size
`;

beforeAll(async () => {
  [registry, dockerd, src] = await Promise.all([startRegistry(), startDockerd(), rootWithBusybox()]);
  await ok(src.root, ['bootstrap', 'busybox', '--platform', 'linux/arm64', '-t', 'busybox:arm64']);
  ref = `${registry.host}/emu:1`;
  const ctx = await contextOf({ Dockerfile: DOCKERFILE });
  await ok(src.root, ['build', '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-t', ref, ctx]);
}, 300_000);

afterAll(async () => {
  for (const r of roots) await r.cleanup();
  await src?.cleanup();
  await dockerd?.stop();
  await registry?.stop();
});

const cat = (root: string, args: string[]) => ok(root, ['run', ...args, 'cat', '/arch', '/target']);

test('each platform ran its own RUN steps: natively for amd64, under QEMU for arm64', async () => {
  expect(await cat(src.root, ['--platform', 'linux/amd64', ref])).toBe('x86_64\nbuilt for linux/amd64\n');
  expect(await cat(src.root, ['--platform', 'linux/arm64', ref])).toBe('aarch64\nbuilt for linux/arm64\n');
  expect(await ok(src.root, ['images', '--format', '{{.Platforms}}', ref])).toBe('linux/amd64,linux/arm64\n');
});

test('saved as an OCI archive: one index over both platforms', async () => {
  const dir = await tempDir('tsbuild-emu-save-');
  await ok(src.root, ['save', '--format', 'oci', '-o', join(dir, 'emu.tar'), ref]);
  await execa('tar', ['-xf', join(dir, 'emu.tar'), '-C', dir]);
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string }[] };
  // The layout's index names the image index (or its manifests) for the tag; either way both platforms are there.
  const platforms: string[] = [];
  const walk = async (digest: string): Promise<void> => {
    const blob = JSON.parse(await readFile(join(dir, 'blobs', ...digest.split(':')), 'utf8')) as {
      manifests?: { digest: string; platform?: { os: string; architecture: string } }[];
    };
    for (const m of blob.manifests ?? []) {
      if (m.platform) platforms.push(`${m.platform.os}/${m.platform.architecture}`);
      else await walk(m.digest);
    }
  };
  for (const m of top.manifests) await walk(m.digest);
  expect(platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
});

test('pushed: skopeo reads the index; Docker pulls and runs the arm64 image under the same emulation', async () => {
  await ok(src.root, ['push', '-q', ref]);
  const index = JSON.parse((await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as {
    manifests: { platform: { os: string; architecture: string } }[];
  };
  expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
  await dockerd.ok(['pull', '--platform', 'linux/arm64', ref]);
  // (execa strips the last newline of Docker's output.)
  expect(await dockerd.ok(['run', '--rm', '--network', 'none', ref, 'cat', '/arch', '/target'])).toBe('aarch64\nbuilt for linux/arm64');
});

test('pulled back into an empty store per platform', async () => {
  await ok(src.root, ['push', '-q', ref]);
  for (const [platform, arch] of [
    ['linux/amd64', 'x86_64'],
    ['linux/arm64', 'aarch64'],
  ] as const) {
    const t = await tempRoot();
    roots.push(t);
    await ok(t.root, ['pull', '-q', '--platform', platform, ref]);
    expect(await cat(t.root, [ref])).toBe(`${arch}\nbuilt for ${platform}\n`);
  }
});
