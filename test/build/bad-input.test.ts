// Bad input gets one clear error line naming the Dockerfile line, a non-zero exit, and leaves
// the store consistent: no half layer, no stray snapshot, no temp dir, no mount, no new image.
// Layers of steps that succeeded before the failure may stay (they are the build cache), but
// only whole: published in layerdb with their snapshot.
import { mkdir, readdir, readFile, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { rootWithBusybox, tempDir, tsbuild, mountsBelow } from '../helpers/tsbuild.js';

async function snapshotOfStore(root: string): Promise<string[]> {
  const list = async (d: string) => (await readdir(join(root, d)).catch(() => [] as string[])).sort();
  return [
    ...(await list('overlay2')).map((n) => `overlay2/${n}`),
    ...(await list('image/overlay2/layerdb/sha256')).map((n) => `layerdb/${n}`),
    ...(await list('image/overlay2/layerdb/tmp')).map((n) => `layerdb-tmp/${n}`),
    ...(await list('image/overlay2/imagedb/content/sha256')).map((n) => `imagedb/${n}`),
    ...(await list('tmp')).map((n) => `tmp/${n}`),
  ];
}

describe('bad input', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let before: string[];
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  beforeEach(async () => {
    before = await snapshotOfStore(env.root);
  });
  afterAll(async () => env?.cleanup());
  afterEach(async () => {
    const now = await snapshotOfStore(env.root);
    expect(now.filter((e) => /^(imagedb|tmp|layerdb-tmp)\//.test(e))).toEqual(before.filter((e) => /^(imagedb|tmp|layerdb-tmp)\//.test(e)));
    // Every snapshot dir belongs to a published layer, and every layer is whole.
    const cacheIds = new Set<string>();
    for (const e of now.filter((x) => x.startsWith('layerdb/'))) {
      const dir = join(env.root, 'image/overlay2/layerdb/sha256', e.slice('layerdb/'.length));
      for (const f of ['diff', 'size', 'cache-id', 'tar-split.json.gz']) await readFile(join(dir, f));
      cacheIds.add((await readFile(join(dir, 'cache-id'), 'utf8')).trim());
    }
    expect(
      now
        .filter((e) => e.startsWith('overlay2/') && e !== 'overlay2/l')
        .map((e) => e.slice('overlay2/'.length))
        .sort(),
    ).toEqual([...cacheIds].sort());
    expect(await mountsBelow(env.root)).toEqual([]);
  });

  /** For errors found before anything runs: the store is exactly as it was. */
  async function expectUntouched(): Promise<void> {
    expect(await snapshotOfStore(env.root)).toEqual(before);
  }

  async function buildWith(dockerfile: string, files: Record<string, string> = {}) {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), dockerfile);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(ctx, name, '..'), { recursive: true });
      await writeFile(join(ctx, name), content);
    }
    return { ctx, result: await tsbuild(env.root, ['build', '-t', 'bad', ctx]) };
  }

  function expectOneLine(stderr: string, pattern: RegExp): void {
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  }

  test('unknown instruction', async () => {
    const { result } = await buildWith('FROM busybox\nCOPY a /a\nFROBNICATE x\n', { a: 'x' });
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:3: unknown instruction: FROBNICATE/i);
    expect(result.stdout).not.toMatch(/STEP/); // nothing was built
    await expectUntouched();
  });

  test('bad flag', async () => {
    const { result } = await buildWith('FROM busybox\nCOPY --frobnicate=1 a /a\n', { a: 'x' });
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:2: .*frobnicate/);
    await expectUntouched();
  });

  test('missing COPY source', async () => {
    const { result } = await buildWith('FROM busybox\nCOPY a /a\nCOPY missing.txt /m\n', { a: 'x' });
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:3: .*missing\.txt.*not found/);
  });

  test('COPY --parents of a missing path, a bad --chmod, --link --chown by name', async () => {
    for (const [line, pattern] of [
      ['COPY --parents d/missing.txt /out/', /^Error: Dockerfile:3: .*"\/d\/missing\.txt": not found/],
      ['COPY --chmod=u+q a /b', /^Error: Dockerfile:3: invalid chmod parameter: 'u\+q': invalid syntax$/],
      ['COPY --link --chown=nobody a /b', /^Error: Dockerfile:3: COPY --link --chown=nobody: a user or group name cannot be looked up/],
    ] as const) {
      const { result } = await buildWith(`FROM busybox\nCOPY a /a\n${line}\n`, { a: 'x', 'd/x': 'x' });
      expect(result.exitCode).not.toBe(0);
      expectOneLine(result.stderr, pattern);
    }
  });

  test('ADD of a git repository that cannot be reached', async () => {
    const { result } = await buildWith('FROM busybox\nCOPY a /a\nADD git://127.0.0.1:1/none.git /src/\n', { a: 'x' });
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:3: ADD failed: git ls-remote of git:\/\/127\.0\.0\.1:1\/none\.git failed: /);
  });

  test('a source outside the context', async () => {
    const { result } = await buildWith('FROM busybox\nCOPY ../etc/passwd /p\n');
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:2: /);
  });

  test('a symlink in the context that escapes it', async () => {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY escape /e\n');
    await symlink('/etc/passwd', join(ctx, 'escape'));
    const result = await tsbuild(env.root, ['build', ctx]);
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: Dockerfile:2: /);
  });

  test('a base image that is neither in the store nor pullable', async () => {
    // Port 1 on loopback: nothing listens, so the pull fails at once.
    const { result } = await buildWith('FROM 127.0.0.1:1/nosuchimage:1\nCOPY a /a\n', { a: 'x' });
    expect(result.exitCode).not.toBe(0);
    expectOneLine(
      result.stderr,
      /^Error: Dockerfile:1: base image 127\.0\.0\.1:1\/nosuchimage:1 is not in the store \(without a registry: tsbuild bootstrap busybox, tsbuild import ROOTFS.tar NAME, or tsbuild load -i ARCHIVE; from a registry you reach: --insecure-registry HOST for plain HTTP, tsbuild login HOST for a password\), and pulling it failed: /,
    );
  });

  test('a missing Dockerfile', async () => {
    const ctx = await tempDir();
    const result = await tsbuild(env.root, ['build', ctx]);
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /unable to read the Dockerfile/);
  });

  test('a malformed tar for import', async () => {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'bad.tar'), 'this is not a tar archive at all'.repeat(40));
    const result = await tsbuild(env.root, ['import', join(ctx, 'bad.tar'), 'broken:1']);
    expect(result.exitCode).not.toBe(0);
    expectOneLine(result.stderr, /^Error: /);
  });
});
