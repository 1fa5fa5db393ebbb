// What a user sees of BuildKit's platform ARGs and of stages chosen through ARGs, in real builds:
// `FROM --platform=$BUILDPLATFORM`, `ARG TARGETOS TARGETARCH` in a stage (and nothing without
// it: no silent copy of a whole tree), `build --platform` for this machine's platform and a
// clear refusal of a RUN for another (RUN under emulation is another test's), and `FROM ${SRC}` / `FROM build-$VARIANT` with --build-arg and
// --target. Refusals leave the store as it was.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostArchitecture } from '../../src/image/config.js';
import { busyboxStore, contextOf, ok, tsbuild } from '../helpers/tsbuild.js';

const store = busyboxStore();
const HOST = hostArchitecture();
const FOREIGN = HOST === 'arm64' ? 'amd64' : 'arm64';
/** No s390x emulator is registered here (test/build/emulation.test.ts checks that it is so). */
const S390X_REFUSAL =
  'RUN for linux/s390x needs QEMU user emulation, and no binfmt_misc handler is registered for s390x programs: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-s390x (docs/multi-platform.md)';

const context = (dockerfile: string, files: Record<string, string> = {}): Promise<string> =>
  contextOf({ Dockerfile: dockerfile, ...files });

/** The image and layer records of the store, to see that a refused build added none. */
async function storeContents(): Promise<string[]> {
  const list = async (d: string) => (await readdir(join(store.root, d)).catch(() => [] as string[])).map((n) => `${d}/${n}`);
  return [
    ...(await list('image/overlay2/imagedb/content/sha256')),
    ...(await list('image/overlay2/layerdb/sha256')),
    ...(await list('overlay2')),
  ].sort();
}

async function cat(image: string, path: string): Promise<string> {
  return ok(store.root, ['run', image, 'cat', path]);
}

test('FROM --platform=$BUILDPLATFORM; a stage sees platform ARGs only after ARG brings them in', async () => {
  const ctx = await context(
    `FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETOS TARGETARCH
ARG BUILDPLATFORM
RUN echo "$TARGETOS/$TARGETARCH on $BUILDPLATFORM" > /plat
FROM --platform=\${TARGETPLATFORM} busybox
RUN echo "[$TARGETARCH]" > /undeclared
ARG TARGETPLATFORM TARGETVARIANT
RUN echo "$TARGETPLATFORM [$TARGETVARIANT]" > /target
ARG TARGETOS TARGETARCH
COPY dist/$TARGETOS/$TARGETARCH/ /app/
COPY --from=build /plat /plat
`,
    { [`dist/linux/${HOST}/app`]: 'mine\n', [`dist/linux/${FOREIGN}/app`]: 'foreign\n' },
  );
  await ok(store.root, ['build', '--progress', 'plain', '-t', 'plat-args', ctx]);
  expect(await cat('plat-args', '/plat')).toBe(`linux/${HOST} on linux/${HOST}\n`);
  expect(await cat('plat-args', '/undeclared')).toBe('[]\n');
  expect(await cat('plat-args', '/target')).toBe(`linux/${HOST} []\n`);
  expect(await ok(store.root, ['run', 'plat-args', 'ls', '/app'])).toBe('app\n');
  expect(await cat('plat-args', '/app/app')).toBe('mine\n');
  // The ARGs are not in the image's environment, and the image is for this machine.
  const [img] = JSON.parse(await ok(store.root, ['inspect', 'plat-args']));
  expect((img.Config.Env as string[]).filter((e) => /^(TARGET|BUILD)/.test(e))).toEqual([]);
  expect([img.Os, img.Architecture]).toEqual(['linux', HOST]);
});

test("build --platform takes this machine's platform; a RUN for one without an emulator (s390x) is one clear error and the store is unchanged", async () => {
  const ctx = await context('FROM busybox\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM > /p\n');
  await ok(store.root, ['build', '--platform', `linux/${HOST}`, '-t', 'plat-host', ctx]);
  expect(await cat('plat-host', '/p')).toBe(`linux/${HOST}\n`);

  const before = await storeContents();
  const r = await tsbuild(store.root, ['build', '--platform', 'linux/s390x', '-t', 'plat-foreign', ctx]);
  expect(r.exitCode).toBe(1);
  const refusal = `Error: Dockerfile:3: ${S390X_REFUSAL}`;
  expect(r.stderr.trim().split('\n')).toEqual([refusal]);
  const two = await tsbuild(store.root, ['build', '--platform', `linux/${HOST},linux/s390x`, ctx]);
  expect(two.exitCode).toBe(1);
  expect(two.stderr.trim().split('\n')).toEqual([refusal]);
  // buildx's default for --platform, refused the same way.
  const fromEnv = await tsbuild(store.root, ['build', ctx], { env: { DOCKER_DEFAULT_PLATFORM: 'linux/s390x' } });
  expect(fromEnv.exitCode).toBe(1);
  expect(fromEnv.stderr.trim().split('\n')).toEqual([refusal]);
  const bad = await tsbuild(store.root, ['build', '--platform', 'nonsense', ctx]);
  expect(bad.exitCode).not.toBe(0);
  expect(bad.stderr).toMatch(/invalid platform "nonsense"/);
  expect(await storeContents()).toEqual(before);
});

test('a RUN in a stage FROM --platform of a platform without an emulator is an error at its line before any step runs', async () => {
  const ctx = await context(`FROM busybox\nRUN echo first\nFROM --platform=linux/s390x busybox AS other\nRUN echo other\n`);
  const before = await storeContents();
  const r = await tsbuild(store.root, ['build', '--progress', 'plain', ctx]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr.trim().split('\n')).toEqual([`Error: Dockerfile:4: ${S390X_REFUSAL}`]);
  expect(r.stdout).not.toMatch(/STEP/);
  expect(await storeContents()).toEqual(before);
});

describe('stages chosen through ARGs', () => {
  const DOCKERFILE = `ARG SRC=prebuilt
ARG VARIANT=a
FROM busybox AS prebuilt
RUN echo prebuilt > /which
FROM busybox AS source
RUN echo source > /which
FROM busybox AS build-a
RUN echo a > /variant
FROM busybox AS build-b
RUN echo b > /variant
FROM build-$VARIANT AS variant
FROM \${SRC} AS final
COPY --from=variant /variant /variant
FROM busybox AS later
RUN echo "this stage must not run" && exit 1
`;

  test('the default chooses its stage; --target works; stages nothing chose do not run', async () => {
    const ctx = await context(DOCKERFILE);
    const out = await ok(store.root, ['build', '--progress', 'plain', '--target', 'final', '-t', 'chosen', ctx]);
    expect(out).not.toContain('this stage must not run');
    expect(out).not.toMatch(/echo source|echo b/);
    expect(await cat('chosen', '/which')).toBe('prebuilt\n');
    expect(await cat('chosen', '/variant')).toBe('a\n');
  });

  test('--build-arg chooses other stages', async () => {
    const ctx = await context(DOCKERFILE);
    const args = ['--build-arg', 'SRC=source', '--build-arg', 'VARIANT=b'];
    const out = await ok(store.root, ['build', '--progress', 'plain', '--target', 'final', ...args, '-t', 'chosen-b', ctx]);
    expect(out).not.toMatch(/echo prebuilt|echo a /);
    expect(await cat('chosen-b', '/which')).toBe('source\n');
    expect(await cat('chosen-b', '/variant')).toBe('b\n');
  });

  test('COPY --from=$STAGE is refused as BuildKit refuses it, pointing at FROM with an ARG', async () => {
    const ctx = await context('ARG S=busybox\nFROM busybox AS a\nFROM busybox\nCOPY --from=$S /bin/true /t\n');
    const r = await tsbuild(store.root, ['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'Error: Dockerfile:4: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    ]);
  });
});
