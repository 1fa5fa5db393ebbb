// Building for another architecture under QEMU user emulation (docs/multi-platform.md): an
// arm64 busybox base made offline from Debian's busybox-static:arm64 package, RUN steps that run
// under the aarch64 handler registered in this machine's binfmt_misc (uname -m says aarch64),
// the image config's platform, the platform ARGs, a stage for the build's own platform beside
// the target's; and the bad input: a platform with no emulator registered (s390x: this file
// first checks that this machine has none), a base in the store for another platform.
//
// Needs qemu-user-static and binfmt-support with the aarch64 handler enabled, and arm64 in
// dpkg's architectures (apt-get download busybox-static:arm64): scripts/setup.sh does all three.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { hostArchitecture } from '../../src/image/config.js';
import { checkEmulation, elfHeader, handlerMatches, readHandlers } from '../../src/runtime/binfmt.js';
import { busyboxStore, contextOf, ok, tempDir, tsbuild } from '../helpers/tsbuild.js';

const store = busyboxStore();
const HOST = hostArchitecture();
const SETUP = 'scripts/setup.sh installs qemu-user-static and binfmt-support and registers the handler';

let armId: string;
beforeAll(async () => {
  if (HOST !== 'amd64') throw new Error(`these tests build arm64 images on an amd64 machine; this one is ${HOST}`);
  try {
    checkEmulation({ architecture: 'arm64' }, { host: HOST });
  } catch (err) {
    throw new Error(`${(err as Error).message} (${SETUP})`, { cause: err });
  }
  armId = (await ok(store.root, ['bootstrap', 'busybox', '--platform', 'linux/arm64', '-t', 'busybox:arm64'])).trim();
});

/** The image and layer records of the store, to see that a refused build added none. */
async function storeContents(): Promise<string[]> {
  const list = async (d: string) => (await readdir(join(store.root, d)).catch(() => [] as string[])).map((n) => `${d}/${n}`);
  return [...(await list('image/overlay2/imagedb/content/sha256')), ...(await list('image/overlay2/layerdb/sha256'))].sort();
}

async function inspect(image: string): Promise<{ Architecture: string; Os: string; Variant?: string }> {
  return (JSON.parse(await ok(store.root, ['inspect', image])) as { Architecture: string; Os: string; Variant?: string }[])[0]!;
}

test("bootstrap busybox --platform linux/arm64: the arm64 package's busybox, the same image from apt-get download as from --deb", async () => {
  const img = await inspect('busybox:arm64');
  expect([img.Os, img.Architecture]).toEqual(['linux', 'arm64']);
  expect(await ok(store.root, ['run', 'busybox:arm64', 'uname', '-m'])).toBe('aarch64\n');
  const dir = await tempDir('tsbuild-deb-');
  await execa('apt-get', ['download', 'busybox-static:arm64'], { cwd: dir });
  const [deb] = await readdir(dir);
  const again = await ok(store.root, [
    'bootstrap',
    'busybox',
    '--platform',
    'linux/arm64',
    '--deb',
    join(dir, deb!),
    '-t',
    'busybox:arm64-deb',
  ]);
  expect(again.trim()).toBe(armId);

  const notDeb = await tsbuild(store.root, ['bootstrap', 'busybox', '--platform', 'linux/arm64', '--deb', join(dir, 'missing.deb')]);
  expect(notDeb.exitCode).toBe(1);
  expect(notDeb.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: .*missing\.deb: not a Debian package: /)]);
  const wrongArch = await tsbuild(store.root, ['bootstrap', 'busybox', '--platform', 'linux/riscv64', '--deb', join(dir, deb!)]);
  expect(wrongArch.exitCode).toBe(1);
  expect(wrongArch.stderr.trim().split('\n')).toEqual([
    `Error: ${join(dir, deb!)} is busybox-static:arm64, not busybox-static:riscv64 (for linux/riscv64)`,
  ]);
});

test('build --platform linux/arm64: RUN under emulation, the platform ARGs, the config, a stage for the build platform', async () => {
  const ctx = await contextOf({
    Dockerfile: `FROM --platform=$BUILDPLATFORM busybox AS tools
RUN uname -m > /built-on
FROM busybox:arm64
ARG TARGETPLATFORM TARGETARCH TARGETVARIANT BUILDPLATFORM
RUN uname -m > /arch && echo "$TARGETPLATFORM $TARGETARCH [$TARGETVARIANT] $BUILDPLATFORM" > /plat
RUN echo written under qemu > /written && ls /bin/busybox > /dev/null
COPY --from=tools /built-on /built-on
`,
  });
  await ok(store.root, ['build', '--progress', 'plain', '--platform', 'linux/arm64', '-t', 'emu', ctx]);
  const cat = (path: string) => ok(store.root, ['run', 'emu', 'cat', path]);
  expect(await cat('/arch')).toBe('aarch64\n');
  expect(await cat('/plat')).toBe('linux/arm64 arm64 [] linux/amd64\n');
  expect(await cat('/written')).toBe('written under qemu\n');
  expect(await cat('/built-on')).toBe('x86_64\n');
  const img = await inspect('emu');
  expect([img.Os, img.Architecture, img.Variant]).toEqual(['linux', 'arm64', undefined]);
  // The host's busybox stays the host's.
  expect((await inspect('busybox')).Architecture).toBe('amd64');
});

test('a stage from scratch for arm64 records arm64 (and a variant) without running anything', async () => {
  const ctx = await contextOf({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a\n' });
  await ok(store.root, ['build', '--platform', 'linux/arm64', '-t', 'scratch-arm', ctx]);
  expect((await inspect('scratch-arm')).Architecture).toBe('arm64');
  await ok(store.root, ['build', '--platform', 'linux/arm/v7', '-t', 'scratch-armv7', ctx]);
  const v7 = await inspect('scratch-armv7');
  expect([v7.Architecture, v7.Variant]).toEqual(['arm', 'v7']);
});

test('a platform with no emulator registered is one line saying how to register it, before any step runs', async () => {
  // This machine's binfmt_misc must have no s390x handler for this test to mean anything.
  const registered = readHandlers();
  const s390x = registered?.handlers.filter((h) => handlerMatches(h, elfHeader('s390x'))) ?? [];
  if (s390x.length > 0) throw new Error(`an s390x handler is registered (${s390x[0]!.name}): this test needs an architecture without one`);
  const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN echo first\n' });
  const before = await storeContents();
  const r = await tsbuild(store.root, ['build', '--progress', 'plain', '--platform', 'linux/s390x', ctx]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr.trim().split('\n')).toEqual([
    'Error: Dockerfile:2: RUN for linux/s390x needs QEMU user emulation, and no binfmt_misc handler is registered for s390x programs: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-s390x (docs/multi-platform.md)',
  ]);
  expect(r.stdout).not.toMatch(/STEP/);
  const withFrom = await contextOf({
    Dockerfile: 'FROM busybox\nRUN echo first\nFROM --platform=linux/s390x busybox\nCOPY --from=0 / /\nRUN echo other\n',
  });
  const fromLine = await tsbuild(store.root, ['build', '--progress', 'plain', withFrom]);
  expect(fromLine.exitCode).toBe(1);
  expect(fromLine.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(/^Error: Dockerfile:5: RUN for linux\/s390x needs QEMU user emulation, /),
  ]);
  expect(await storeContents()).toEqual(before);
});

test('a base the store has for another platform is refused at its FROM line, naming both platforms', async () => {
  // A name whose registry refuses the connection: the pull that follows the mismatch fails here.
  await ok(store.root, ['tag', 'busybox', 'localhost:1/hostbox']);
  const ctx = await contextOf({ Dockerfile: 'FROM localhost:1/hostbox\nRUN uname -m\n' });
  const before = await storeContents();
  const r = await tsbuild(store.root, ['build', '--platform', 'linux/arm64', ctx]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(/^Error: Dockerfile:1: base image localhost:1\/hostbox is for linux\/amd64, not linux\/arm64: /),
  ]);
  expect(await storeContents()).toEqual(before);
});
