// Caches that cannot be used: a malformed flag is an error before the build (one line, exit 2);
// a cache registry that is unreachable or refuses us, a cache that is not ours or is truncated,
// and a blob whose bytes are not the ones its digest names are each one warning, and the build
// goes on without that cache and makes the right image.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

describe('bad caches', () => {
  let src: Env;
  let registry: TestRegistry;
  let ctx: string;

  beforeAll(async () => {
    src = await rootWithBusybox();
    registry = await startRegistry({ basic: { user: 'ci', password: 'secret-pw' } });
    ctx = await tempDir();
    await writeFile(join(ctx, 'a.txt'), 'a\n');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n');
  });

  afterAll(async () => {
    await src?.cleanup();
    await registry?.stop();
  });

  const lines = (s: string) => s.trimEnd().split('\n');

  test.each([
    ['--cache-to', 'type=gha', 'unsupported --cache-to type=gha: use type=registry or type=local'],
    ['--cache-to', 'type=s4,ref=x', 'unsupported --cache-to type=s4: use registry, local or inline'],
    ['--cache-to', 'type=registry,ref=127.0.0.1:5000/c,mode=most', 'mode=most: want min or max'],
    ['--cache-to', 'type=registry,ref=127.0.0.1:5000/c,colour=red', 'unknown option colour'],
    ['--cache-to', 'type=local', 'dest= is missing'],
    ['--cache-to', 'type=inline,mode=max', 'an inline cache has mode=min only'],
    ['--cache-from', 'type=local,dest=/x', 'unknown option dest'],
    ['--cache-from', 'type=registry,ref=127.0.0.1:5000/UPPER', 'invalid --cache-from'],
  ])('%s %s is a usage error', async (flag, value, message) => {
    const r = await tsbuild(src.root, ['build', flag, value, ctx]);
    expect(r.exitCode).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(message);
  });

  test('an unreachable or unauthorized cache registry, and a cache that is not ours: a warning each, the build goes on', async () => {
    const r = await tsbuild(src.root, [
      'build',
      '--progress',
      'plain',
      '--cache-from',
      'type=registry,ref=127.0.0.1:1/cache:x',
      '--cache-from',
      `type=registry,ref=${registry.host}/cache:x`,
      '--cache-from',
      'busybox-not-anywhere.invalid/x:1',
      ctx,
    ]);
    expect(r.exitCode).toBe(0);
    const warnings = lines(r.stderr).filter((l) => l.startsWith('--cache-from'));
    expect(warnings).toHaveLength(3);
    for (const w of warnings) expect(w).toMatch(/; building without it$/);
    expect(r.stderr).not.toContain('secret-pw');
    expect(r.stdout).toContain('Successfully built');
  });

  test('a truncated cache config and an index that is not JSON: a warning, not a failed build', async () => {
    const dir = join(await tempDir(), 'cache');
    await ok(src.root, ['build', '--cache-to', `type=local,dest=${dir}`, ctx]);
    const bad = join(await tempDir(), 'bad');
    await ok(src.root, ['build', '--cache-to', `type=local,dest=${bad}`, ctx]);
    await writeFile(join(bad, 'index.json'), '{"manifests": [');
    // The config blob cut in half: its digest no longer matches.
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(dir, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      config: { digest: string };
    };
    const configFile = join(dir, 'blobs/sha256', manifest.config.digest.slice(7));
    const text = await readFile(configFile, 'utf8');
    await writeFile(configFile, text.slice(0, text.length >> 1));
    const t = await tempRoot();
    try {
      await ok(t.root, ['bootstrap', 'busybox']);
      const r = await tsbuild(t.root, ['build', '--cache-from', `type=local,src=${dir}`, '--cache-from', `type=local,src=${bad}`, ctx]);
      expect(r.exitCode).toBe(0);
      const warnings = lines(r.stderr).filter((l) => l.startsWith('--cache-from'));
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toContain('digest');
      expect(warnings[1]).toContain('index.json');
    } finally {
      await t.cleanup();
    }
  });

  test('a layer blob whose bytes are not its digest: the build starts again without the cache and is right', async () => {
    const dir = join(await tempDir(), 'cache');
    const a = await ok(src.root, ['build', '-q', '--cache-to', `type=local,dest=${dir},mode=max`, ctx]);
    // Every layer blob gets other bytes of the same size: the first step that needs one finds out.
    const blobs = join(dir, 'blobs/sha256');
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(blobs, index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: { digest: string; mediaType: string; size: number }[];
    };
    const layers = manifest.layers.filter((l) => l.mediaType.includes('layer'));
    expect(layers.length).toBeGreaterThan(1);
    for (const l of layers) await writeFile(join(blobs, l.digest.slice(7)), Buffer.alloc(l.size, 7));
    const t = await tempRoot();
    try {
      await ok(t.root, ['bootstrap', 'busybox']);
      const r = await tsbuild(t.root, ['build', '-t', 'out', '--cache-from', `type=local,src=${dir}`, ctx]);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toMatch(/could not be read: .*; building again without the --cache-from caches/);
      expect((await ok(t.root, ['run', '--rm', 'out', 'cat', '/b.txt'])).trim()).toBe('a');
      expect(a).toMatch(/^sha256:/);
    } finally {
      await t.cleanup();
    }
  });

  test('a cache missing a layer blob: the steps that need it run, with one warning', async () => {
    const dir = join(await tempDir(), 'cache');
    await ok(src.root, ['build', '--cache-to', `type=local,dest=${dir},mode=max`, ctx]);
    const blobs = join(dir, 'blobs/sha256');
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(blobs, index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: { digest: string; mediaType: string }[];
    };
    // The last layer blob (the RUN's) is gone: the COPY still hits, the RUN runs.
    const layers = manifest.layers.filter((l) => l.mediaType.includes('layer'));
    await rm(join(blobs, layers.at(-1)!.digest.slice(7)));
    const t = await tempRoot();
    try {
      await ok(t.root, ['bootstrap', 'busybox']);
      const r = await tsbuild(t.root, ['build', '--progress', 'plain', '-t', 'out', '--cache-from', `type=local,src=${dir}`, ctx]);
      expect(r.exitCode).toBe(0);
      expect(lines(r.stderr).filter((l) => l.includes('is missing; the steps that need it run again'))).toHaveLength(1);
      expect(r.stdout.match(/^--> CACHED$/gm)).toHaveLength(1);
      expect((await ok(t.root, ['run', '--rm', 'out', 'cat', '/b.txt'])).trim()).toBe('a');
    } finally {
      await t.cleanup();
    }
  });

  test('a cache that cannot be written fails the build in one line, or with ignore-error=true is a warning', async () => {
    const to = 'type=registry,ref=127.0.0.1:1/cache:x';
    const failed = await tsbuild(src.root, ['build', '--cache-to', to, ctx]);
    expect(failed.exitCode).toBe(1);
    expect(lines(failed.stderr)).toHaveLength(1);
    expect(failed.stderr).toMatch(/^Error: --cache-to 127\.0\.0\.1:1\/cache:x: /);
    const ignored = await tsbuild(src.root, ['build', '--cache-to', `${to},ignore-error=true`, ctx]);
    expect(ignored.exitCode).toBe(0);
    expect(ignored.stderr).toMatch(/^--cache-to 127\.0\.0\.1:1\/cache:x: .*\(ignore-error=true: the build stands\)$/m);
  });

  test("an export killed midway: its .tmp- files go with the next export, a live process's stay", async () => {
    const dir = join(await tempDir(), 'cache');
    await ok(src.root, ['build', '--cache-to', `type=local,dest=${dir}`, ctx]);
    // The PID of a process that has exited.
    const gone = execa('true');
    const dead = gone.pid!;
    await gone;
    const left = [
      join(dir, `.tmp-index.json-${dead}-0123456789ab`),
      join(dir, 'blobs/sha256', `.tmp-${'c'.repeat(64)}-${dead}-0123456789ab`),
    ];
    const live = join(dir, 'blobs/sha256', `.tmp-${'d'.repeat(64)}-${process.pid}-0123456789ab`);
    for (const f of [...left, live]) await writeFile(f, 'partial');
    await ok(src.root, ['build', '--cache-to', `type=local,dest=${dir}`, ctx]);
    for (const f of left) await expect(readFile(f)).rejects.toThrow(/ENOENT/);
    expect(await readFile(live, 'utf8')).toBe('partial');
  });
});
