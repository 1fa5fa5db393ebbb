// `tsbuild analyze` on images built from testdata/waste: each Dockerfile wastes bytes in a known
// way, the test writes the files it copies (random content, sizes it chooses), and the expected
// numbers come from those files and from the layer sizes `history` reports, never from analyze.
import { cp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { busyboxStore, ok, REPO, tempDir, tsbuild } from '../helpers/tsbuild.js';

const WASTE = join(REPO, 'testdata/waste');
const MB = 1_000_000;

interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A context made of testdata/waste/NAME plus the files the test writes (path → size of random bytes). */
async function context(name: string, files: Record<string, number>): Promise<string> {
  const ctx = await tempDir('tsbuild-waste-');
  await cp(join(WASTE, name), ctx, { recursive: true });
  for (const [path, size] of Object.entries(files)) {
    await mkdir(dirname(join(ctx, path)), { recursive: true });
    await writeFile(join(ctx, path), randomBytes(size));
  }
  return ctx;
}

/** The 1-based line of the first Dockerfile line starting with `prefix`. */
async function lineOf(ctx: string, prefix: string, nth = 1): Promise<number> {
  const lines = (await readFile(join(ctx, 'Dockerfile'), 'utf8')).split('\n');
  let seen = 0;
  const i = lines.findIndex((l) => l.startsWith(prefix) && ++seen === nth);
  if (i < 0) throw new Error(`no line starting with ${prefix}`);
  return i + 1;
}

describe('tsbuild analyze', () => {
  const env = busyboxStore();

  async function build(name: string, files: Record<string, number>, args: string[] = []): Promise<string> {
    const ctx = await context(name, files);
    env.removeLater(ctx);
    await ok(env.root, ['build', '-q', '-t', name, ...args, ctx]);
    return ctx;
  }
  const analyze = async (image: string): Promise<Json> => JSON.parse(await ok(env.root, ['analyze', '--json', image])) as Json;
  /** Layer sizes bottom first, from `history` (for images whose every history entry made a layer). */
  const layerSizes = async (image: string): Promise<number[]> =>
    (await ok(env.root, ['history', '--format', 'json', image]))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { Size: number }).Size)
      .reverse();

  describe('the seed: COPY an archive, then unpack, install and rm it in a RUN', () => {
    let ctx: string;
    let archive: number;
    const APP = 1 * MB;
    beforeAll(async () => {
      // The archive holds the program to install and 20MiB of data; random bytes do not compress.
      const src = await tempDir('tsbuild-waste-src-');
      env.removeLater(src);
      await mkdir(join(src, 'xxx'));
      await writeFile(join(src, 'xxx/app'), randomBytes(APP));
      await writeFile(join(src, 'xxx/data'), randomBytes(20 * 1024 * 1024));
      ctx = await context('seed', {});
      env.removeLater(ctx);
      await execa('tar', ['czf', join(ctx, 'xxx.tar.gz'), '-C', src, 'xxx']);
      archive = (await stat(join(ctx, 'xxx.tar.gz'))).size;
      await ok(env.root, ['build', '-q', '-t', 'seed', ctx]);
    });

    test('the archive is wasted, once; sizes and efficiency follow from the layer sizes', async () => {
      const a = await analyze('seed');
      const sizes = await layerSizes('seed');
      expect(sizes).toHaveLength(3);
      expect(sizes[1]).toBe(archive);
      expect(sizes[2]).toBe(APP);
      expect(a.layers.map((l: Json) => l.size)).toEqual(sizes);
      expect(a.size).toBe(sizes[0]! + archive + APP);
      expect(a.storedBytes).toBe(a.size);
      expect(a.wastedBytes).toBe(archive);
      expect(a.efficiency).toBeCloseTo(1 - archive / a.size, 10);
      expect(a.userSize).toBe(archive + APP);
      expect(a.userWastedPercent).toBeCloseTo(archive / (archive + APP), 10);
      expect(a.inefficientPaths).toEqual([
        { path: '/tmp/xxx.tar.gz', count: 1, storedBytes: archive, wastedBytes: archive, layers: [1], removedBy: 2 },
      ]);
      expect(a.layers[1].files).toEqual({ added: 1, modified: 0, removed: 0 });
      expect(a.layers[2].files).toEqual({ added: 1, modified: 0, removed: 1 });
      expect(a.layers[2].largest).toEqual([{ path: '/usr/local/bin/app', bytes: APP }]);
    });

    test('names the COPY line and the RUN line, and says to fetch and delete in the same RUN', async () => {
      const copy = await lineOf(ctx, 'COPY');
      const run = await lineOf(ctx, 'RUN');
      const a = await analyze('seed');
      expect(a.layers[1].origin).toMatchObject({
        file: 'Dockerfile',
        line: copy,
        instruction: 'COPY',
        text: 'COPY xxx.tar.gz /tmp',
        base: false,
      });
      expect(a.layers[2].origin).toMatchObject({ file: 'Dockerfile', line: run, instruction: 'RUN', base: false });
      expect(a.layers[0].origin.base).toBe(true);
      const hint = a.hints[0];
      expect(hint).toMatchObject({ kind: 'deleted-later', bytes: archive, files: 1, layer: 1, otherLayer: 2, paths: ['/tmp/xxx.tar.gz'] });
      expect(hint.fix).toMatch(/fetch and delete in the same RUN/i);

      const text = await ok(env.root, ['analyze', 'seed']);
      expect(text).toContain(`Dockerfile:${copy} \`COPY xxx.tar.gz /tmp\``);
      expect(text).toContain(`Dockerfile:${run} \`RUN tar zxf`);
      expect(text).toMatch(/Fix: Fetch and delete in the same RUN/);
      expect(text).toMatch(/\/tmp\/xxx\.tar\.gz \(deleted by layer 2\)/);
    });

    test('--ci fails under the default thresholds and says which', async () => {
      const r = await tsbuild(env.root, ['analyze', '--ci', 'seed']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toMatch(/FAIL\s+lowest-efficiency/);
      expect(r.stdout).toMatch(/FAIL\s+highest-wasted-bytes/);
      expect(r.stdout).toMatch(/FAIL\s+highest-user-wasted-percent/);
      expect(r.stdout).toMatch(/Result: FAIL/);
      const j = JSON.parse((await tsbuild(env.root, ['analyze', '--ci', '--json', 'seed'])).stdout) as Json;
      expect(j.ci.pass).toBe(false);
      expect(j.ci.rules.map((x: Json) => [x.rule, x.status])).toEqual([
        ['lowest-efficiency', 'fail'],
        ['highest-wasted-bytes', 'fail'],
        ['highest-user-wasted-percent', 'fail'],
        ['max-cache-bytes', 'pass'],
      ]);
    });

    test('--ci with custom thresholds: a bound is exclusive, disabled rules are skipped', async () => {
      const eff = 1 - archive / (await analyze('seed')).size;
      const pass = await tsbuild(env.root, [
        'analyze',
        '--ci',
        'seed',
        '--lowest-efficiency',
        String(eff - 0.001),
        '--highest-wasted-bytes',
        String(archive),
        '--highest-user-wasted-percent',
        'disabled',
      ]);
      expect(pass.stdout).toMatch(/SKIP\s+highest-user-wasted-percent/);
      expect(pass.stdout).toMatch(/Result: PASS/);
      expect(pass.exitCode).toBe(0);
      const bytes = await tsbuild(env.root, [
        'analyze',
        '--ci',
        'seed',
        '--lowest-efficiency',
        '0',
        '--highest-wasted-bytes',
        String(archive - 1),
        '--highest-user-wasted-percent',
        '100%',
      ]);
      expect(bytes.exitCode).toBe(1);
      expect(bytes.stdout).toMatch(/FAIL\s+highest-wasted-bytes/);
      expect(bytes.stdout).toMatch(/PASS\s+lowest-efficiency/);
      // Binary units: the archive is more than 20MiB (its data alone is), less than 1GiB.
      const off = ['--lowest-efficiency', 'off', '--highest-user-wasted-percent', 'off'];
      expect((await tsbuild(env.root, ['analyze', '--ci', 'seed', ...off, '--highest-wasted-bytes', '20MiB'])).exitCode).toBe(1);
      expect((await tsbuild(env.root, ['analyze', '--ci', 'seed', ...off, '--highest-wasted-bytes', '1GiB'])).exitCode).toBe(0);
    });

    test('thresholds without --ci and malformed thresholds are usage errors', async () => {
      expect((await tsbuild(env.root, ['analyze', 'seed', '--lowest-efficiency', '0.5'])).exitCode).toBe(2);
      const bad = await tsbuild(env.root, ['analyze', '--ci', 'seed', '--highest-wasted-bytes', '20 parsecs']);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(/--highest-wasted-bytes/);
    });
  });

  test('package caches left by a RUN: named with their bytes, line and cleanup; not wasted', async () => {
    const ctx = await build('apt-cache', {}, ['--build-arg', `LISTS_BYTES=${3 * MB}`, '--build-arg', `DEB_BYTES=${2 * MB}`]);
    const run = await lineOf(ctx, 'RUN');
    const a = await analyze('apt-cache');
    expect(a.wastedBytes).toBe(0);
    expect(a.efficiency).toBe(1);
    const caches = a.hints.filter((h: Json) => h.kind === 'package-cache');
    expect(caches).toHaveLength(2);
    expect(caches[0]).toMatchObject({
      bytes: 3 * MB,
      files: 1,
      paths: ['/var/lib/apt/lists/deb.debian.org_debian_dists_stable_main_binary-amd64_Packages'],
    });
    expect(caches[0].fix).toContain('rm -rf /var/lib/apt/lists/*');
    expect(caches[1]).toMatchObject({ bytes: 2 * MB, files: 1, paths: ['/var/cache/apt/archives/hello_2.10-3_amd64.deb'] });
    expect(caches[1].fix).toContain('apt-get clean');
    for (const h of caches) {
      expect(h.message).toContain(`Dockerfile:${run}`);
      // First the cache mount, as BuildKit's reference has it for apt; the cleanup second.
      expect(h.fix).toContain(
        '`RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y …`',
      );
      expect(h.fix).toContain('rm -f /etc/apt/apt.conf.d/docker-clean');
      expect(h.fix.indexOf('--mount=type=cache')).toBeLessThan(h.fix.indexOf('Or, without a cache mount'));
    }
    expect(await ok(env.root, ['analyze', 'apt-cache'])).toContain(
      'Fix: In that RUN, keep the cache in a cache mount: `RUN --mount=type=cache',
    );
  });

  describe('package caches: the hint mounts a cache where each manager keeps its own', () => {
    // One image per manager: a RUN leaves one 2 MB file at the manager's cache path, owned by
    // whoever ran the manager; the hint names the RUN, the mount that keeps the file out of the
    // layer, and the manager's own cleanup.
    const cases: { manager: string; file: string; owner?: string; run: string; cleanup: string }[] = [
      {
        manager: 'apt',
        file: '/var/lib/apt/lists/deb.debian.org_debian_dists_stable_main_binary-amd64_Packages',
        run: 'RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y …',
        cleanup: 'rm -rf /var/lib/apt/lists/*',
      },
      {
        manager: 'apk',
        file: '/var/cache/apk/APKINDEX.7e3f2b5a.tar.gz',
        run: 'RUN --mount=type=cache,target=/var/cache/apk --mount=type=cache,target=/etc/apk/cache apk add …',
        cleanup: 'apk add --no-cache',
      },
      {
        manager: 'dnf',
        file: '/var/cache/dnf/fedora-2d95c80a1fa0a67d/repodata/primary.xml.zck',
        run: 'RUN --mount=type=cache,target=/var/cache/dnf dnf install -y --setopt=keepcache=1 …',
        cleanup: 'dnf clean all',
      },
      {
        manager: 'yum',
        file: '/var/cache/yum/x86_64/7/base/packages/bash-4.2.46-35.el7_9.x86_64.rpm',
        run: 'RUN --mount=type=cache,target=/var/cache/yum yum install -y --setopt=keepcache=1 …',
        cleanup: 'yum clean all',
      },
      {
        manager: 'pip',
        file: '/root/.cache/pip/http-v2/a/b/c/d/e/0123456789abcdef',
        run: 'RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt',
        cleanup: 'pip install --no-cache-dir',
      },
      {
        manager: 'pip, as a user',
        file: '/home/app/.cache/pip/wheels/ab/cd/numpy-1.26.4-cp312-cp312-linux_x86_64.whl',
        owner: '1000:1000',
        run: 'RUN --mount=type=cache,target=/home/app/.cache/pip,uid=1000,gid=1000 pip install -r requirements.txt',
        cleanup: 'pip install --no-cache-dir',
      },
      {
        manager: 'npm',
        file: '/root/.npm/_cacache/content-v2/sha512/ab/cd/0123456789abcdef',
        run: 'RUN --mount=type=cache,target=/root/.npm npm ci',
        cleanup: 'npm cache clean --force',
      },
      {
        manager: 'yarn',
        file: '/usr/local/share/.cache/yarn/v6/npm-left-pad-1.3.0-integrity/node_modules/left-pad/index.js',
        run: 'RUN --mount=type=cache,target=/usr/local/share/.cache/yarn yarn install --frozen-lockfile',
        cleanup: 'yarn cache clean',
      },
      {
        manager: 'go build',
        file: '/root/.cache/go-build/3f/3f7a0c1d2e-d',
        run: 'RUN --mount=type=cache,target=/root/.cache/go-build go build …',
        cleanup: 'go clean -cache',
      },
      {
        manager: 'go modules',
        file: '/go/pkg/mod/cache/download/golang.org/x/net/@v/v0.20.0.zip',
        run: 'RUN --mount=type=cache,target=/go/pkg/mod go mod download',
        cleanup: 'go clean -modcache',
      },
    ];

    test.each(cases)('$manager', async ({ manager, file, owner, run, cleanup }) => {
      const tag = `cache-${manager.replace(/\W+/g, '-')}`;
      const ctx = await context('package-cache', {});
      env.removeLater(ctx);
      const args = ['--build-arg', `CACHE_FILE=${file}`, '--build-arg', `OWNER=${owner ?? '0:0'}`, '--build-arg', `BYTES=${2 * MB}`];
      await ok(env.root, ['build', '-q', '-t', tag, ...args, ctx]);
      const a = await analyze(tag);
      const hints = a.hints.filter((h: Json) => h.kind === 'package-cache');
      expect(hints).toHaveLength(1);
      expect(hints[0]).toMatchObject({ bytes: 2 * MB, files: 1, paths: [file] });
      expect(hints[0].message).toContain(`Dockerfile:${await lineOf(ctx, 'RUN')}`);
      expect(hints[0].fix).toContain(`\`${run}\``);
      expect(hints[0].fix).toContain(cleanup);
    });

    test('a cache a later RUN deletes: the fix is the mount in the RUN that filled it', async () => {
      const ctx = await context('package-cache', {});
      env.removeLater(ctx);
      const file = '/root/.cache/pip/http-v2/f/e/d/c/b/0123456789abcdef';
      const args = ['--build-arg', `CACHE_FILE=${file}`, '--build-arg', `BYTES=${2 * MB}`, '--build-arg', 'REMOVE=1'];
      await ok(env.root, ['build', '-q', '-t', 'cache-deleted', ...args, ctx]);
      const a = await analyze('cache-deleted');
      expect(a.wastedBytes).toBe(2 * MB);
      const hint = a.hints.find((h: Json) => h.kind === 'deleted-later');
      expect(hint).toMatchObject({ bytes: 2 * MB, paths: [file] });
      expect(hint.fix).toContain(`Dockerfile:${await lineOf(ctx, 'RUN')}`);
      expect(hint.fix).toContain('a later RUN cannot shrink an earlier layer');
      expect(hint.fix).toContain('`RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt`');
    });
  });

  test('chown -R in its own RUN stores every file again; the hint says COPY --chown', async () => {
    const files = { 'app/a.bin': 2_500_000, 'app/lib/b.bin': 1_500_000, 'app/small.txt': 10 };
    const total = Object.values(files).reduce((n, s) => n + s, 0);
    const ctx = await build('chown', files);
    const a = await analyze('chown');
    const sizes = await layerSizes('chown');
    expect(sizes.slice(1)).toEqual([total, total]);
    expect(a.wastedBytes).toBe(total);
    expect(a.layers[2].files).toEqual({ added: 0, modified: 3, removed: 0 });
    expect(a.inefficientPaths.map((p: Json) => [p.path, p.count, p.wastedBytes])).toEqual([
      ['/app/a.bin', 2, 2_500_000],
      ['/app/lib/b.bin', 2, 1_500_000],
      ['/app/small.txt', 2, 10],
    ]);
    expect(a.hints[0]).toMatchObject({ kind: 'chown-chmod-later', bytes: total, files: 3, layer: 1, otherLayer: 2 });
    expect(a.hints[0].fix).toContain('COPY --chown');
    expect(a.hints[0].fix).toContain(`Dockerfile:${await lineOf(ctx, 'COPY')}`);
    expect(a.hints[0].message).toContain(`Dockerfile:${await lineOf(ctx, 'RUN')}`);
  });

  test('the same file copied again: N copies at one path waste N-1, not N (dive #684); other paths are duplicates', async () => {
    const SIZE = 1_500_000;
    await build('duplicate', { 'data.bin': SIZE });
    const a = await analyze('duplicate');
    // /srv/a/data.bin is stored by layers 1, 3 and 4; the one in layer 4 is what the image shows.
    expect(a.wastedBytes).toBe(2 * SIZE);
    expect(a.inefficientPaths).toEqual([
      { path: '/srv/a/data.bin', count: 3, storedBytes: 3 * SIZE, wastedBytes: 2 * SIZE, layers: [1, 3, 4] },
    ]);
    expect(a.efficiency).toBeCloseTo(1 - (2 * SIZE) / a.storedBytes, 10);
    const dups = a.hints.filter((h: Json) => h.kind === 'duplicate-content');
    expect(dups.map((h: Json) => [h.layer, h.otherLayer, h.bytes])).toEqual(
      expect.arrayContaining([
        [1, 3, SIZE], // stored again unchanged at the same path
        [3, 4, SIZE],
        [4, 2, SIZE], // the visible /srv/a copy duplicates /srv/b's content
      ]),
    );
    expect(dups).toHaveLength(3);
  });

  test('large context files no COPY reads are named, .dockerignore respected; a deleted context is a note', async () => {
    const ctx = await build('unused-context', {
      'app.txt': 10,
      'config/big.json': 11 * MB,
      'unused.iso': 12 * MB,
      'sub/also-unused.dat': 10.5 * MB,
      'ignored.bin': 13 * MB,
      'small-unused.txt': 1000,
    });
    const a = await analyze('unused-context');
    const unused = a.hints.filter((h: Json) => h.kind === 'unused-context-file');
    expect(unused).toEqual([expect.objectContaining({ bytes: 22.5 * MB, files: 2, paths: ['unused.iso', 'sub/also-unused.dat'] })]);
    expect(unused[0].fix).toContain('.dockerignore');
    await rm(ctx, { recursive: true, force: true });
    const gone = await analyze('unused-context');
    expect(gone.hints.filter((h: Json) => h.kind === 'unused-context-file')).toEqual([]);
    expect(gone.notes.join('\n')).toMatch(/no longer exists/);
  });

  test('an image without a build record shows its history and says so', async () => {
    const a = await analyze('busybox');
    const history = JSON.parse((await ok(env.root, ['history', '--format', 'json', 'busybox'])).trim().split('\n')[0]!) as Json;
    expect(a.layers).toHaveLength(1);
    expect(a.layers[0].origin.line).toBeUndefined();
    expect(a.layers[0].origin.text).toContain(history.CreatedBy || history.Comment);
    expect(a.notes.join('\n')).toMatch(/no build record/);
    expect(a.wastedBytes).toBe(0);
    expect((await tsbuild(env.root, ['analyze', '--ci', 'busybox'])).exitCode).toBe(0);
  });

  test('--json has every field docs/analyze.md documents', async () => {
    const a = await analyze('seed');
    expect(Object.keys(a).sort()).toEqual(
      [
        'id',
        'tags',
        'size',
        'userSize',
        'storedBytes',
        'wastedBytes',
        'userWastedBytes',
        'userWastedPercent',
        'userCacheBytes',
        'efficiency',
        'layers',
        'inefficientPaths',
        'hints',
        'notes',
      ].sort(),
    );
    expect(Object.keys(a.layers[1]).sort()).toEqual(
      ['index', 'chainId', 'diffId', 'size', 'origin', 'files', 'storedBytes', 'wastedBytes', 'largest'].sort(),
    );
    expect(Object.keys(a.hints[0]).sort()).toEqual(['kind', 'bytes', 'files', 'layer', 'otherLayer', 'paths', 'message', 'fix'].sort());
    expect(a.tags).toEqual(['seed:latest']);
    const docs = await readFile(join(REPO, 'docs/analyze.md'), 'utf8');
    for (const key of [...Object.keys(a), ...Object.keys(a.layers[1]), ...Object.keys(a.layers[1].origin), ...Object.keys(a.hints[0])]) {
      expect(docs).toContain(`\`${key}\``);
    }
  });
});
