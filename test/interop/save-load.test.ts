// tsbuild save and tsbuild load on their own: round trips keep the image ID in both formats and
// through compression; a tampered or hostile archive is refused and leaves no image and no
// spool behind; layers the store has are not stored again; a failed save leaves no file.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { encodeHeader, blockPadding, END_OF_ARCHIVE, type TarHeader } from '../../src/layer/index.js';
import { CLI, ok, rootWithBusybox, tempRoot, tsbuild } from '../helpers/tsbuild.js';
import { buildTestImage, flipByteAt, pipeline, q, scratch, tarNames, tsbuildCmd, type BuiltImage } from './util.js';

/** The layer chains a store holds (image/<driver>/layerdb/sha256/*). */
async function layerCount(root: string): Promise<number> {
  let n = 0;
  for (const driver of await readdir(join(root, 'image'))) {
    n += (await readdir(join(root, 'image', driver, 'layerdb', 'sha256')).catch(() => [])).length;
  }
  return n;
}

/** Nothing left of a failed load in a store that was empty: no image, no layer, no spool. */
async function expectNothingLoaded(root: string): Promise<void> {
  expect((await ok(root, ['images', '-q'])).trim()).toBe('');
  expect(await layerCount(root)).toBe(0);
  expect(await readdir(join(root, 'tmp')).catch(() => [])).toEqual([]);
}

type Crafted = { name: string; data?: string | Buffer; symlink?: string };

/** A tar with exactly these entries, names unchecked: what a hostile archive can hold. */
function craftTar(entries: readonly Crafted[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const h: TarHeader = {
      type: e.symlink !== undefined ? 'symlink' : 'file',
      name: Buffer.from(e.name),
      linkname: Buffer.from(e.symlink ?? ''),
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: e.symlink !== undefined ? 0 : data.length,
      mtime: 0,
      mtimeNs: 0,
      uname: '',
      gname: '',
      devMajor: 0,
      devMinor: 0,
      xattrs: new Map(),
    };
    parts.push(encodeHeader(h));
    if (e.symlink === undefined) parts.push(data, Buffer.alloc(blockPadding(data.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

describe('tsbuild save and load', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let image: BuiltImage;
  let dockerArchive: string;
  let ociArchive: string;
  const tmp = scratch();

  beforeAll(async () => {
    env = await rootWithBusybox();
    image = await buildTestImage(env.root, 'roundtrip:1', tmp);
    const dir = await tmp.dir();
    dockerArchive = join(dir, 'docker.tar');
    ociArchive = join(dir, 'oci.tar');
    await ok(env.root, ['save', '-o', dockerArchive, image.ref]);
    await ok(env.root, ['save', '--format', 'oci', '-o', ociArchive, image.ref]);
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
    await tmp.cleanup();
  });

  /** Runs `fn` with an empty store, removed afterwards. */
  async function withFreshStore(fn: (root: string) => Promise<void>): Promise<void> {
    const fresh = await tempRoot();
    try {
      await fn(fresh.root);
    } finally {
      await fresh.cleanup();
    }
  }

  test('the Docker format: manifest.json first, then the OCI layout, each blob once', async () => {
    const names = await tarNames(dockerArchive);
    expect(names.slice(0, 4)).toEqual(['manifest.json', 'repositories', 'oci-layout', 'index.json']);
    const blobs = names.filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n));
    expect(new Set(blobs).size).toBe(blobs.length);
    // manifest + config + three layers
    expect(blobs).toHaveLength(2 + image.layers.length);
    for (const l of image.layers) expect(blobs).toContain(`blobs/sha256/${l.slice(7)}`);
    const oci = await tarNames(ociArchive);
    expect(oci).not.toContain('manifest.json');
    expect(oci.filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n))).toEqual(blobs);
  });

  test('a round trip through either format, plain or compressed, keeps the image ID, tags and files', async () => {
    const dir = await tmp.dir();
    await execa('sh', ['-c', `gzip -c ${q(dockerArchive)} > ${q(join(dir, 'docker.tar.gz'))}`]);
    await execa('sh', ['-c', `zstd -q -c ${q(ociArchive)} > ${q(join(dir, 'oci.tar.zst'))}`]);
    for (const file of [dockerArchive, ociArchive, join(dir, 'docker.tar.gz'), join(dir, 'oci.tar.zst')]) {
      await withFreshStore(async (root) => {
        expect(await ok(root, ['load', '-i', file])).toBe('Loaded image: roundtrip:1\n');
        const [img] = JSON.parse(await ok(root, ['inspect', 'roundtrip:1'])) as { Id: string; RootFS: { Layers: string[] } }[];
        expect(img!.Id).toBe(image.id);
        expect(img!.RootFS.Layers).toEqual(image.layers);
        expect(await ok(root, ['run', 'roundtrip:1', 'cat', '/run-file'])).toBe('made-by-run\n');
        expect(await readdir(join(root, 'tmp'))).toEqual([]);
      });
    }
  });

  test('save | load through a pipe streams layers straight into the store', async () => {
    await withFreshStore(async (root) => {
      const { stdout, stderr } = await pipeline(
        `${tsbuildCmd(env.root, ['save', image.ref])} | ${tsbuildCmd(root, ['load', '--progress', 'plain'])}`,
      );
      expect(stdout).toBe('Loaded image: roundtrip:1\n');
      for (const l of image.layers) expect(stderr).toContain(`${l.slice(7, 19)}: Loaded`);
      expect(await layerCount(root)).toBe(image.layers.length);
    });
  });

  test('several images, shared layers saved once; a bare name saves every tag of the repository', async () => {
    await ok(env.root, ['tag', image.ref, 'roundtrip:2']);
    const file = join(await tmp.dir(), 'multi.tar');
    await ok(env.root, ['save', '-o', file, 'roundtrip', 'busybox:latest']);
    const manifest = JSON.parse((await execa('tar', ['-xOf', file, 'manifest.json'])).stdout) as { RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(2);
    expect([...manifest[0]!.RepoTags].sort()).toEqual(['roundtrip:1', 'roundtrip:2']);
    expect(manifest[1]!.RepoTags).toEqual(['busybox:latest']);
    expect(manifest[1]!.Layers[0]).toBe(manifest[0]!.Layers[0]);
    const layerBlobs = (await tarNames(file)).filter((n) => manifest[0]!.Layers.includes(n));
    expect(layerBlobs).toHaveLength(image.layers.length);

    await withFreshStore(async (root) => {
      const out = await ok(root, ['load', '-i', file]);
      expect(
        out
          .split('\n')
          .filter((l) => l !== '')
          .sort(),
      ).toEqual(['Loaded image: busybox:latest', 'Loaded image: roundtrip:1', 'Loaded image: roundtrip:2']);
      expect(await layerCount(root)).toBe(image.layers.length);
    });
    await ok(env.root, ['rmi', 'roundtrip:2']);
  });

  test('layers the store already has are not stored again', async () => {
    const before = await layerCount(env.root);
    const r = await tsbuild(env.root, ['load', '--progress', 'plain', '-i', dockerArchive]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('Loaded image: roundtrip:1\n');
    expect(r.stderr.match(/: Already exists/g)).toHaveLength(image.layers.length);
    expect(r.stderr).not.toContain(': Loaded');
    expect(await layerCount(env.root)).toBe(before);

    // A store with only busybox gets the two RUN layers, nothing more.
    const other = await rootWithBusybox();
    try {
      const base = await layerCount(other.root);
      const r2 = await tsbuild(other.root, ['load', '--progress', 'plain', '-i', ociArchive]);
      expect(r2.exitCode).toBe(0);
      expect(r2.stderr.match(/: Already exists/g)).toHaveLength(1);
      expect(await layerCount(other.root)).toBe(base + image.layers.length - 1);
    } finally {
      await other.cleanup();
    }
  });

  test('a layer byte flipped: load fails with a digest error and leaves no image, streamed or spooled', async () => {
    const dir = await tmp.dir();
    // As saved (index first: the layer is checked as it streams in) ...
    const streamed = join(dir, 'streamed.tar');
    await writeFile(streamed, await readFile(dockerArchive));
    await flipByteAt(streamed, 'made-by-run\n');
    // ... with manifest.json last, as Docker writes it (the layer is spooled, then checked) ...
    const unpacked = join(dir, 'unpacked');
    await execa('mkdir', [unpacked]);
    await execa('tar', ['-xf', dockerArchive, '-C', unpacked]);
    const spooled = join(dir, 'spooled.tar');
    await execa('tar', ['-cf', spooled, '-C', unpacked, 'blobs', 'oci-layout', 'index.json', 'repositories', 'manifest.json']);
    await flipByteAt(spooled, 'made-by-run\n');
    // ... and the OCI format.
    const oci = join(dir, 'oci.tar');
    await writeFile(oci, await readFile(ociArchive));
    await flipByteAt(oci, 'made-by-run\n');

    for (const file of [streamed, spooled, oci]) {
      await withFreshStore(async (root) => {
        const r = await tsbuild(root, ['load', '-i', file]);
        expect(r.exitCode).toBe(1);
        expect(r.stderr).toMatch(/digest mismatch/);
        expect(r.stdout).toBe('');
        await expectNothingLoaded(root);
      });
    }
  });

  test('hostile or broken archives are refused with a clear error', async () => {
    const manifest = (layers: string[]) => JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:1'], Layers: layers }]);
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] },
      history: [],
    });
    const cases: { what: string; tar: Buffer; error: RegExp }[] = [
      {
        what: 'a name with ..',
        tar: craftTar([
          { name: '../escape', data: 'x' },
          { name: 'manifest.json', data: manifest(['l.tar']) },
        ]),
        error: /climbs out of the archive/,
      },
      { what: 'an absolute name', tar: craftTar([{ name: '/etc/escape', data: 'x' }]), error: /absolute path "\/etc\/escape"/ },
      {
        what: 'a symlink out of the archive',
        tar: craftTar([{ name: 'l.tar', symlink: '../../etc/passwd' }]),
        error: /points outside the archive/,
      },
      {
        what: 'a manifest naming a missing layer',
        tar: craftTar([
          { name: 'manifest.json', data: manifest(['missing/layer.tar']) },
          { name: 'c.json', data: config },
        ]),
        error: /layer 1 of image 1 in manifest\.json: the archive has no file "missing\/layer\.tar"/,
      },
      {
        what: 'a manifest naming a missing config',
        tar: craftTar([{ name: 'manifest.json', data: manifest(['l.tar']) }]),
        error: /the config of image 1 in manifest\.json: the archive has no file "c\.json"/,
      },
      { what: 'no index at all', tar: craftTar([{ name: 'hello.txt', data: 'hi' }]), error: /neither manifest\.json .* nor index\.json/ },
      {
        what: 'not a tar',
        tar: Buffer.from('this is not an archive, just text that goes on for a while'.repeat(20)),
        error: /not a valid image archive/,
      },
    ];
    const dir = await tmp.dir();
    for (const [k, c] of cases.entries()) {
      const file = join(dir, `case-${k}.tar`);
      await writeFile(file, c.tar);
      await withFreshStore(async (root) => {
        const r = await tsbuild(root, ['load', '-i', file]);
        expect({ what: c.what, exitCode: r.exitCode }).toEqual({ what: c.what, exitCode: 1 });
        expect(r.stderr).toMatch(c.error);
        await expectNothingLoaded(root);
      });
    }
  });

  test('an interrupted load exits 130 and undoes itself', async () => {
    await withFreshStore(async (root) => {
      const archive = await readFile(dockerArchive);
      // The first layer is being unpacked from the pipe when Ctrl-C comes.
      const child = execa('node', [CLI, 'load', '--root', root], { reject: false, stdin: 'pipe', env: { TSBUILD_ROOT: '' } });
      child.stdin!.write(archive.subarray(0, Math.floor(archive.length / 2)));
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode).toBe(130);
      expect(String(r.stderr)).toContain('load interrupted');
      await expectNothingLoaded(root);
    });
  });

  test('a failed save leaves no file, and does not touch an existing one', async () => {
    const dir = await tmp.dir();
    const r = await tsbuild(env.root, ['save', '-o', join(dir, 'none.tar'), 'no-such-image:1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/No such image: no-such-image:1/);
    expect(await readdir(dir)).toEqual([]);

    // A stored layer whose file was changed behind the store's back cannot be saved.
    const broken = await rootWithBusybox();
    try {
      const img = await buildTestImage(broken.root, 'broken:1', tmp);
      const target = join(dir, 'broken.tar');
      await writeFile(target, 'previous contents');
      const found = (await execa('find', [broken.root, '-path', '*/run-file', '-type', 'f'])).stdout.split('\n').filter((l) => l !== '');
      expect(found.length).toBeGreaterThan(0);
      for (const f of found) await writeFile(f, 'changed-after-the-build\n');
      const s = await tsbuild(broken.root, ['save', '-o', target, img.ref]);
      expect(s.exitCode).toBe(1);
      expect(s.stderr).toMatch(/run-file/);
      expect(await readFile(target, 'utf8')).toBe('previous contents');
      expect(await readdir(dir)).toEqual(['broken.tar']);
    } finally {
      await broken.cleanup();
    }
  });

  test('like docker: no archive to a terminal, no archive from one', async () => {
    const save = await execa('script', ['-qec', `${tsbuildCmd(env.root, ['save', image.ref])}`, '/dev/null'], {
      reject: false,
      env: { TSBUILD_ROOT: '' },
    });
    expect(save.exitCode).toBe(1);
    expect(save.stdout).toContain('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const load = await execa('script', ['-qec', `${tsbuildCmd(env.root, ['load'])}`, '/dev/null'], {
      reject: false,
      env: { TSBUILD_ROOT: '' },
    });
    expect(load.exitCode).toBe(1);
    expect(load.stdout).toContain('requested load from stdin, but stdin is empty');
  });
});
