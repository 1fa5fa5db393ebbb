// `build --platform P1,P2` and multi-platform images in the store, as a user sees them: one
// row per tag with its platforms, inspect/history/run choosing a platform (the host's by
// default), FROM of a multi-platform base taking the target's image, $BUILDPLATFORM stages run
// once on this machine, per-target ARGs, reproducible images and index, the clear one-line
// refusals (a platform string that is not one, a platform the base lacks, a RUN for a foreign
// CPU), and rmi / prune / du / verify over images that share layers across platforms.
// The foreign images are honestly labelled but hold this machine's files (helpers/platforms.ts
// says why): no test here runs foreign code.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BOTH, FOREIGN, HOST, multiPlatformBase } from '../helpers/platforms.js';
import { busyboxStore, contextOf, ok, tsbuild } from '../helpers/tsbuild.js';

const store = busyboxStore();

/** The store's image, index and layer records, to see that a refused build added none. */
async function storeContents(): Promise<string[]> {
  const list = async (d: string) => (await readdir(join(store.root, d)).catch(() => [] as string[])).map((n) => `${d}/${n}`);
  return [
    ...(await list('image/overlay2/imagedb/content/sha256')),
    ...(await list('image/overlay2/indexdb/content/sha256')),
    ...(await list('image/overlay2/layerdb/sha256')),
  ].sort();
}

const APP = `FROM --platform=$BUILDPLATFORM mbase AS tools
RUN echo "tools built on $(uname -m)" > /tools
FROM --platform=$BUILDPLATFORM mbase AS per-target
ARG TARGETARCH
RUN echo "for $TARGETARCH" > /note
FROM mbase
ARG TARGETARCH TARGETPLATFORM
COPY --from=tools /tools /tools
COPY --from=per-target /note /note
COPY $TARGETARCH.txt /arch
LABEL target=$TARGETPLATFORM
`;

let inspected: (args: string[]) => Promise<Record<string, unknown>>;

beforeAll(async () => {
  await multiPlatformBase(store.root, 'mbase');
  inspected = async (args) => (JSON.parse(await ok(store.root, ['inspect', ...args])) as Record<string, unknown>[])[0]!;
});

test('a multi-platform image is one row per tag with its platforms; inspect and history choose a platform, the host by default', async () => {
  const table = await ok(store.root, ['images', 'mbase']);
  const [header, row, ...rest] = table.trim().split('\n');
  expect(header).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+PLATFORMS$/);
  expect(row).toMatch(new RegExp(`^mbase\\s+latest\\s+[0-9a-f]{12}\\s+.*\\s+linux/(amd64|arm64),linux/(amd64|arm64)$`));
  expect(rest).toEqual([]);
  const indexId = (await ok(store.root, ['images', '-q', '--no-trunc', 'mbase'])).trim();

  expect((await inspected(['mbase'])).Architecture).toBe(HOST);
  const foreign = await inspected(['--platform', `linux/${FOREIGN}`, 'mbase']);
  expect(foreign.Architecture).toBe(FOREIGN);
  expect(foreign.RepoTags).toEqual(['mbase:latest']);
  expect(foreign.Id).not.toBe(indexId);
  // With --platform, the row shows that platform's image.
  const only = await ok(store.root, [
    'images',
    '--no-trunc',
    '--platform',
    `linux/${FOREIGN}`,
    '--format',
    '{{.Repository}} {{.ID}} {{.Platforms}}',
  ]);
  expect(only).toContain(`mbase ${String(foreign.Id)} linux/amd64,linux/arm64\n`);
  expect(only).not.toContain('busybox');
  const history = await ok(store.root, ['history', '-q', '--no-trunc', '--platform', `linux/${FOREIGN}`, 'mbase']);
  expect(history.split('\n')[0]).toBe(foreign.Id);
  // The images of a multi-platform image are not listed on their own.
  expect(await ok(store.root, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).not.toMatch(/<none>:<none>\n.*<none>:<none>/);
});

test('bad platforms: one clear line each', async () => {
  const missing = await tsbuild(store.root, ['inspect', '--platform', 'linux/s390x', 'mbase']);
  expect(missing.exitCode).toBe(1);
  expect(missing.stderr.trim().split('\n')).toEqual(['Error: image mbase has no linux/s390x image (it has linux/amd64, linux/arm64)']);
  const run = await tsbuild(store.root, ['run', '--platform', 'linux/s390x', 'mbase', 'true']);
  expect(run.exitCode).not.toBe(0);
  expect(run.stderr.trim().split('\n')).toEqual(['Error: image mbase has no linux/s390x image (it has linux/amd64, linux/arm64)']);
  const bad = await tsbuild(store.root, ['inspect', '--platform', 'nonsense', 'mbase']);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toMatch(/^Error: invalid platform "nonsense": want os\/arch\[\/variant\], e\.g\. linux\/amd64\n/);
  const ctx = await contextOf({ Dockerfile: 'FROM mbase\n' });
  const build = await tsbuild(store.root, ['build', '--platform', `linux/${HOST},linux/foo/bar/baz`, ctx]);
  expect(build.exitCode).toBe(2);
  expect(build.stderr.trim().split('\n')).toEqual([
    'Error: invalid platform "linux/foo/bar/baz": want os/arch[/variant], e.g. linux/amd64',
  ]);
});

describe('build --platform P1,P2', () => {
  let ctx: string;
  let out: string;
  beforeAll(async () => {
    ctx = await contextOf({ Dockerfile: APP, 'amd64.txt': 'amd\n', 'arm64.txt': 'arm\n' });
    out = await ok(store.root, ['build', '--progress', 'plain', '--platform', BOTH, '-t', 'app:multi', ctx]);
  });

  test('each platform gets its own image, from the base for its platform, with its ARGs', async () => {
    for (const arch of [HOST, FOREIGN]) {
      const img = await inspected(['--platform', `linux/${arch}`, 'app:multi']);
      expect([img.Os, img.Architecture]).toEqual(['linux', arch]);
      expect((img.Config as { Labels: Record<string, string> }).Labels.target).toBe(`linux/${arch}`);
      const base = await inspected(['--platform', `linux/${arch}`, 'mbase']);
      expect((img.RootFS as { Layers: string[] }).Layers.slice(0, 1)).toEqual((base.RootFS as { Layers: string[] }).Layers);
      // The files, read as files (the foreign image's busybox is this machine's: see helpers/platforms.ts).
      const files = await ok(store.root, ['run', '--platform', `linux/${arch}`, 'app:multi', 'cat', '/arch', '/note', '/tools']);
      expect(files).toBe(`${arch === 'amd64' ? 'amd' : 'arm'}\nfor ${arch}\ntools built on ${HOST === 'amd64' ? 'x86_64' : 'aarch64'}\n`);
    }
  });

  /** The result line (`--> ...`) after each step whose text contains `text`, in the order shown. */
  const resultsOf = (output: string, text: string): string[] => {
    const lines = output.split('\n');
    const found: string[] = [];
    lines.forEach((l, i) => {
      if (l.includes(text)) found.push(lines.slice(i + 1).find((n) => n.startsWith('--> '))!);
    });
    return found;
  };

  test('a $BUILDPLATFORM stage without TARGET ARGs runs once; one that reads TARGETARCH runs per target', () => {
    const tools = resultsOf(out, 'RUN echo "tools built on');
    expect(tools).toHaveLength(2);
    expect(tools[1]).toBe('--> CACHED');
    expect(out.split('\n').filter((l) => l.includes(`[linux/${FOREIGN}] RUN echo "tools built on`))).toHaveLength(1);
    const perTarget = resultsOf(out, 'RUN echo "for $TARGETARCH"');
    expect(perTarget).toHaveLength(2);
    expect(perTarget.every((r) => r !== '--> CACHED')).toBe(true);
  });

  test('--no-cache: the shared stage still runs once (what earlier builds recorded is ignored, not what this one did)', async () => {
    const again = await ok(store.root, ['build', '--progress', 'plain', '--no-cache', '--platform', BOTH, ctx]);
    const tools = resultsOf(again, 'RUN echo "tools built on');
    expect(tools).toHaveLength(2);
    expect(tools[0]).not.toBe('--> CACHED');
    expect(tools[1]).toBe('--> CACHED');
    const perTarget = resultsOf(again, 'RUN echo "for $TARGETARCH"');
    expect(perTarget.every((r) => r !== '--> CACHED')).toBe(true);
  });

  test('--reproducible: the same images and the same index on every run', async () => {
    const args = ['build', '-q', '--reproducible', '--no-cache', '--platform', BOTH, ctx];
    const first = (await ok(store.root, [...args, '-t', 'app:r1'])).trim();
    const second = (await ok(store.root, [...args, '-t', 'app:r2'])).trim();
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(second).toBe(first);
    for (const arch of [HOST, FOREIGN]) {
      expect((await inspected(['--platform', `linux/${arch}`, 'app:r2'])).Id).toBe(
        (await inspected(['--platform', `linux/${arch}`, 'app:r1'])).Id,
      );
    }
  });

  test('tag names the multi-platform image; rmi takes its images, leaving what another image uses; du counts shared layers once', async () => {
    await ok(store.root, ['tag', 'app:multi', 'app:copy']);
    expect((await inspected(['--platform', `linux/${FOREIGN}`, 'app:copy'])).Architecture).toBe(FOREIGN);
    const foreignId = (await inspected(['--platform', `linux/${FOREIGN}`, 'app:multi'])).Id as string;
    // One platform's image is not removed on its own while its multi-platform image holds it.
    const conflict = await tsbuild(store.root, ['rmi', foreignId]);
    expect(conflict.exitCode).toBe(1);
    expect(conflict.stderr).toMatch(
      /^Error: conflict: unable to delete [0-9a-f]{12} - image is one platform of the multi-platform image app:(multi|copy): remove that instead\n$/,
    );
    expect(await ok(store.root, ['rmi', 'app:copy'])).toBe('Untagged: app:copy\n');
    const removed = await ok(store.root, ['rmi', 'app:multi']);
    expect(removed).toMatch(
      /^Untagged: app:multi\nDeleted: sha256:[0-9a-f]{64}\nDeleted: sha256:[0-9a-f]{64}\nDeleted: sha256:[0-9a-f]{64}\n$/,
    );
    expect(await tsbuild(store.root, ['inspect', 'app:multi'])).toMatchObject({ exitCode: 1 });
    // The base's images and layers stay; verify finds the store whole.
    expect((await inspected(['--platform', `linux/${FOREIGN}`, 'mbase'])).Architecture).toBe(FOREIGN);
    expect(await ok(store.root, ['verify'])).toMatch(/^OK/m);
    // mbase's two images share every layer (the same files): du counts them once.
    const du = JSON.parse(await ok(store.root, ['du', '--format', 'json'])) as {
      images: { tags: string[]; size: number; uniqueSize: number }[];
    };
    const mbase = du.images.filter((i) => i.tags.includes('mbase:latest'));
    expect(mbase).toHaveLength(2);
    for (const i of mbase) expect([i.size > 0, i.uniqueSize]).toEqual([true, 0]);
  });

  test('prune keeps a tagged multi-platform image, and removes an untagged one with its images', async () => {
    const ctx2 = await contextOf({
      Dockerfile: 'FROM mbase\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch\n',
      'amd64.txt': 'a\n',
      'arm64.txt': 'b\n',
    });
    const id = (await ok(store.root, ['build', '-q', '--platform', BOTH, '-t', 'pruned', ctx2])).trim();
    await ok(store.root, ['prune', '-a', '-f']);
    expect((await inspected(['--platform', `linux/${FOREIGN}`, 'pruned'])).Architecture).toBe(FOREIGN);
    // Moved away: the index is untagged, and prune takes it and its images.
    await ok(store.root, ['tag', 'busybox', 'pruned']);
    const report = await ok(store.root, ['prune', '-f']);
    expect(report).toContain(`deleted: ${id}`);
    expect((await storeContents()).some((p) => p.endsWith(id.slice(7)))).toBe(false);
    expect(await ok(store.root, ['verify'])).toMatch(/^OK/m);
  });
});

describe('what a multi-platform build refuses, before any step runs', () => {
  test('a base that lacks the platform, a stored single-platform base of another platform, a RUN for a CPU without an emulator', async () => {
    const before = await storeContents();
    const lacks = await contextOf({ Dockerfile: 'FROM mbase\nCOPY Dockerfile /\n' });
    const r1 = await tsbuild(store.root, ['build', '--platform', `linux/${HOST},linux/s390x`, lacks]);
    expect(r1.exitCode).toBe(1);
    expect(r1.stderr.trim().split('\n')).toEqual([
      'Error: Dockerfile:1: image mbase has no linux/s390x image (it has linux/amd64, linux/arm64)',
    ]);

    const single = await contextOf({ Dockerfile: 'FROM busybox\nCOPY Dockerfile /\n' });
    const r2 = await tsbuild(store.root, ['build', '--platform', BOTH, single]);
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr.trim().split('\n')).toEqual([
      `Error: Dockerfile:1: base image busybox is for linux/${HOST}, not linux/${FOREIGN}: use a multi-platform image, or one for linux/${FOREIGN}`,
    ]);

    const run = await contextOf({ Dockerfile: 'FROM mbase\nCOPY Dockerfile /\nRUN echo hi\n' });
    // No s390x emulator is registered here (test/build/emulation.test.ts checks that it is so).
    const r3 = await tsbuild(store.root, ['build', '--progress', 'plain', '--platform', `linux/${HOST},linux/s390x`, run]);
    expect(r3.exitCode).toBe(1);
    expect(r3.stderr.trim().split('\n')).toEqual([
      'Error: Dockerfile:3: RUN for linux/s390x needs QEMU user emulation, and no binfmt_misc handler is registered for s390x programs: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-s390x (docs/multi-platform.md)',
    ]);
    expect(r3.stdout).not.toMatch(/STEP/);
    expect(await storeContents()).toEqual(before);
  });

  test('a single foreign platform without RUN builds without emulation', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM mbase\nARG TARGETPLATFORM\nCOPY Dockerfile /x\nLABEL p=$TARGETPLATFORM\n' });
    const id = (await ok(store.root, ['build', '-q', '--platform', `linux/${FOREIGN}`, '-t', 'only-foreign', ctx])).trim();
    const img = await inspected(['only-foreign']);
    expect([img.Id, img.Architecture, (img.Config as { Labels: Record<string, string> }).Labels.p]).toEqual([
      id,
      FOREIGN,
      `linux/${FOREIGN}`,
    ]);
  });
});
