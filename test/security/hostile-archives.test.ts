// Hostile archives through each way in that the layer tests (test/layer/apply.test.ts,
// hostile.test.ts, test/fuzz/tar.test.ts) do not reach: ADD of a local tar (the same extractor
// under Docker's Untar rules), and `tsbuild import` / `tsbuild load` from the CLI. Each case puts
// a canary next to where things are unpacked and checks it, contents and times, before and after.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { copyIntoRootfs } from '../../src/builder/copy.js';
import { openContext } from '../../src/context/index.js';
import { buildTar, header, listTree } from '../layer/fixtures.js';
import { startRegistry } from '../helpers/registry.js';
import { mountsBelow, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

const cleanups: string[] = [];
afterAll(async () => {
  for (const d of cleanups) await rm(d, { recursive: true, force: true });
});

/** work/{ctx, rootfs, outside/b}: outside/b is the canary, with an old mtime. */
async function arena() {
  const work = await tempDir('tsbuild-hostile-');
  cleanups.push(work);
  for (const d of ['ctx', 'rootfs', 'outside/b']) await mkdir(join(work, d), { recursive: true });
  await writeFile(join(work, 'outside', 'b', 'f'), 'canary');
  await utimes(join(work, 'outside', 'b'), 1000, 1000);
  await utimes(join(work, 'outside'), 1000, 1000);
  const canary = async () => ({
    tree: await listTree(join(work, 'outside')),
    times: [(await stat(join(work, 'outside'))).mtimeMs, (await stat(join(work, 'outside', 'b'))).mtimeMs],
    top: (await readdir(work)).sort(),
  });
  return { work, ctx: join(work, 'ctx'), rootfs: join(work, 'rootfs'), canary };
}

describe('ADD of a local archive', () => {
  async function add(tar: Buffer) {
    const a = await arena();
    await writeFile(join(a.ctx, 'evil.tar'), tar);
    const before = await a.canary();
    const context = await openContext(a.ctx);
    const error = await copyIntoRootfs({
      context,
      sources: ['evil.tar'],
      dest: '/dest/',
      workdir: '/',
      rootfs: a.rootfs,
      isAdd: true,
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(await a.canary()).toEqual(before);
    return { ...a, error };
  }

  test('a directory replaced by a symlink pointing out: no time is set through it', async () => {
    // rootfs/dest/x -> ../../outside is work/outside; x/b/ was a directory of the archive first.
    const a = await add(
      buildTar([
        { h: header('x/b/', { type: 'dir', mtime: 1_600_000_000 }) },
        { h: header('x', { type: 'symlink', linkname: Buffer.from('../../outside') }) },
      ]),
    );
    expect(a.error).toBeUndefined();
    expect(await readlink(join(a.rootfs, 'dest', 'x'))).toBe('../../outside');
  });

  test('a directory replaced by a symlink to /: no time is set on the host’s directories', async () => {
    const tmpTime = (await stat('/tmp')).mtimeMs;
    const a = await add(
      buildTar([
        { h: header('y/tmp/', { type: 'dir', mtime: 1_000_000_000 }) },
        { h: header('y', { type: 'symlink', linkname: Buffer.from('/') }) },
      ]),
    );
    expect(a.error).toBeUndefined();
    // /tmp's mtime moves as other processes work; the archive's time (2001) must not be it.
    expect((await stat('/tmp')).mtimeMs).not.toBe(1_000_000_000_000);
    expect((await stat('/tmp')).mtimeMs).toBeGreaterThanOrEqual(tmpTime);
  });

  test('a hardlink to a file outside, and a device node: refused, or made inside', async () => {
    const out = await add(buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from('../../outside/b/f') }) }]));
    expect(out.error?.message).toMatch(/hardlink target climbs out of the destination/);
    const dev = await add(buildTar([{ h: header('null', { type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 }) }]));
    expect(dev.error).toBeUndefined();
    expect((await stat(join(dev.rootfs, 'dest', 'null'))).isCharacterDevice()).toBe(true);
  });
});

describe('ADD through `tsbuild build`', () => {
  let env: { root: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    env = await tempRoot();
  });
  afterAll(async () => {
    await env.cleanup();
  });

  /** Builds `ADD <archive> /x/` FROM scratch with --no-cache; the files land in `<ctx>/out`. */
  async function addBuild(tar: Buffer) {
    const ctx = await tempDir();
    cleanups.push(ctx);
    await writeFile(join(ctx, 'evil.tar'), tar);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nADD evil.tar /x/\n');
    const r = await tsbuild(env.root, ['build', '-q', '--no-cache', '-o', `type=local,dest=${join(ctx, 'out')}`, ctx]);
    expect(await mountsBelow(env.root)).toEqual([]);
    return { ...r, out: join(ctx, 'out') };
  }

  test('a hardlink to /etc/shadow: one line naming the archive, the entry and its target, at the Dockerfile line', async () => {
    // Docker's os.Link fails too; tsbuild said `ENOENT: no such file or directory, link '/x/etc/shadow' -> '/x/a'`.
    const missing = await addBuild(buildTar([{ h: header('a', { type: 'hardlink', linkname: Buffer.from('/etc/shadow') }) }]));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(
      'Error: Dockerfile:2: ADD failed: /evil.tar: entry "a" is a hardlink to "/etc/shadow", which is not in the destination\n',
    );
    const up = await addBuild(buildTar([{ h: header('a', { type: 'hardlink', linkname: Buffer.from('../../etc/shadow') }) }]));
    expect(up.stderr).toBe(
      `Error: Dockerfile:2: ADD failed: /evil.tar: entry "a" hardlink target climbs out of the destination with '..': "../../etc/shadow"\n`,
    );
    const dir = await addBuild(
      buildTar([{ h: header('d/', { type: 'dir' }) }, { h: header('a', { type: 'hardlink', linkname: Buffer.from('d') }) }]),
    );
    expect(dir.stderr).toBe('Error: Dockerfile:2: ADD failed: /evil.tar: entry "a" is a hardlink to "d", which is a directory\n');
  });

  test('a symlink to a directory, absolute or climbing out, is followed inside the destination, as in Docker’s chroot', async () => {
    // Checked against Docker 20.10's BuildKit: both forms land in /x/some/dir/file, and an
    // archive whose link leads to a directory the destination lacks fails.
    for (const target of ['/some/dir', '../../some/dir']) {
      const lnk = { h: header('lnk', { type: 'symlink', linkname: Buffer.from(target) }) };
      const file = { h: header('lnk/file'), content: Buffer.from('hi') };
      const held = await addBuild(buildTar([{ h: header('some/dir/', { type: 'dir' }) }, lnk, file]));
      expect(held.stderr).toBe('');
      expect(await listTree(join(held.out, 'x'))).toEqual(['lnk', 'some/', 'some/dir/', 'some/dir/file']);
      expect(await readlink(join(held.out, 'x', 'lnk'))).toBe(target);
      const dangling = await addBuild(buildTar([lnk, file]));
      expect(dangling.exitCode).toBe(1);
      expect(dangling.stderr).toBe(
        `Error: Dockerfile:2: ADD failed: /evil.tar: entry "lnk/file" would be written through symlink "lnk" to "${target}", which is not in the destination\n`,
      );
      expect(existsSync(dangling.out)).toBe(false);
    }
  });
});

describe('tsbuild import and load', () => {
  // A name nobody else uses, looked for wherever an escape could put it.
  const M = `tsbuild-pwned-${process.pid}-${Date.now()}`;
  const escaped = () => ['/', '/tmp', '/tmp/..'].some((d) => existsSync(join(d, M)));
  const hostile: readonly [string, Buffer, RegExp][] = [
    ['../ climbing out', buildTar([{ h: header(`../../${M}`), content: Buffer.from('pwned') }]), /climbs out of the layer/],
    ['an absolute name', buildTar([{ h: header(`/${M}`), content: Buffer.from('pwned') }]), /is an absolute path/],
    [
      'a symlink planted, then written through',
      buildTar([
        { h: header('s', { type: 'symlink', linkname: Buffer.from('/') }) },
        { h: header(`s/tmp/${M}`), content: Buffer.from('pwned') },
      ]),
      /would be written through "s"/,
    ],
    [
      'a hardlink out',
      buildTar([{ h: header('h', { type: 'hardlink', linkname: Buffer.from(`../${M}`) }) }]),
      /hardlink target climbs out/,
    ],
    ['truncated data', buildTar([{ h: header('f'), content: Buffer.alloc(5000, 1) }]).subarray(0, 3000), /truncated/],
    ['text that is not a tar', Buffer.from('hello, this is not a tar\n'.repeat(40)), /not a (layer )?tar|invalid/],
  ];

  test.each(hostile)(
    'import: %s is one clear error, and the store gains nothing',
    async (_what, tar, message) => {
      const env = await tempRoot();
      try {
        const dir = await tempDir();
        cleanups.push(dir);
        await writeFile(join(dir, 'evil.tar'), tar);
        const r = await tsbuild(env.root, ['import', join(dir, 'evil.tar'), 'evil:latest']);
        expect(r.exitCode).not.toBe(0);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(escaped()).toBe(false);
        expect((await tsbuild(env.root, ['images', '-q'])).stdout).toBe('');
        expect(await mountsBelow(env.root)).toEqual([]);
      } finally {
        await env.cleanup();
      }
    },
    60_000,
  );

  test('load: a docker-archive whose layer is hostile is refused and leaves no image or layer', async () => {
    const env = await tempRoot();
    try {
      const dir = await tempDir();
      cleanups.push(dir);
      const layer = hostile[2]![1];
      const diffID = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } });
      const configHex = createHash('sha256').update(config).digest('hex');
      await writeFile(join(dir, 'layer.tar'), layer);
      await writeFile(join(dir, `${configHex}.json`), config);
      await writeFile(
        join(dir, 'manifest.json'),
        JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['evil:1'], Layers: ['layer.tar'] }]),
      );
      await execa('tar', ['-cf', join(dir, 'image.tar'), '-C', dir, 'manifest.json', `${configHex}.json`, 'layer.tar']);
      const r = await tsbuild(env.root, ['load', '-i', join(dir, 'image.tar')]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/would be written through "s"/);
      expect(escaped()).toBe(false);
      expect((await tsbuild(env.root, ['images', '-q'])).stdout).toBe('');
      const layerdb = (await readdir(env.root, { recursive: true })).filter((p) => /layerdb\/sha256\/[0-9a-f]{64}$/.test(String(p)));
      expect(layerdb).toEqual([]);
    } finally {
      await env.cleanup();
    }
  }, 60_000);
});

describe('pull', () => {
  /** Uploads a blob to the registry (monolithic POST then PUT, as the distribution API allows). */
  async function upload(host: string, repo: string, data: Buffer): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, `http://${host}`);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      body: new Uint8Array(data),
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    return digest;
  }

  test('an image whose layer writes through a symlink is refused; no image, no layer, nothing outside', async () => {
    const registry = await startRegistry();
    const env = await tempRoot();
    const dockerConfig = await tempDir('tsbuild-dockercfg-');
    cleanups.push(dockerConfig);
    const marker = `tsbuild-pwned-pull-${process.pid}-${Date.now()}`;
    try {
      const layer = buildTar([
        { h: header('s', { type: 'symlink', linkname: Buffer.from('/tmp') }) },
        { h: header(`s/${marker}`), content: Buffer.from('pwned') },
      ]);
      const diffID = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const config = Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } }),
      );
      const layerDigest = await upload(registry.host, 'evil', layer);
      const configDigest = await upload(registry.host, 'evil', config);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      });
      const put = await fetch(`http://${registry.host}/v2/evil/manifests/1`, {
        method: 'PUT',
        body: manifest,
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(put.status).toBe(201);

      const r = await tsbuild(env.root, ['pull', `${registry.host}/evil:1`], { env: { DOCKER_CONFIG: dockerConfig } });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trimEnd().split('\n')).toEqual([
        expect.stringMatching(/^Error: .*would be written through "s", which this layer made a symlink/),
      ]);
      expect(existsSync(join('/tmp', marker))).toBe(false);
      expect((await tsbuild(env.root, ['images', '-q'])).stdout).toBe('');
      const layerdb = (await readdir(env.root, { recursive: true })).filter((p) => /layerdb\/sha256\/[0-9a-f]{64}$/.test(String(p)));
      expect(layerdb).toEqual([]);
      expect(await mountsBelow(env.root)).toEqual([]);
    } finally {
      await env.cleanup();
      await registry.stop();
    }
  }, 120_000);
});
