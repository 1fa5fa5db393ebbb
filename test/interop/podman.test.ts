// podman (containers/image) reads what tsbuild saves, in both formats and through both of its
// readers (`podman load` tries the OCI reader first; `podman pull docker-archive:` forces the
// manifest.json one), and tsbuild reads what podman saves: its docker-archive (v1 directories
// whose layer.tar are symlinks) and its oci-archive (gzip layers, full name in ref.name).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireTool } from '../helpers/dockerd.js';
import { ok, rootWithBusybox } from '../helpers/tsbuild.js';
import { buildTestImage, inspectImage, scratch, tarNames, type BuiltImage } from './util.js';

const PODMAN = '/usr/bin/podman';

/** podman with a private store, no systemd, no events journal. */
async function podmanIn(dir: string) {
  const global = [
    '--root',
    join(dir, 'root'),
    '--runroot',
    join(dir, 'run'),
    '--tmpdir',
    join(dir, 'tmp'),
    '--storage-driver',
    'vfs',
    '--cgroup-manager',
    'cgroupfs',
    '--events-backend',
    'none',
  ];
  return async (args: readonly string[]): Promise<string> => {
    // Bounded well inside the test's own timeout: a podman that hangs (seen once in CI, the test
    // timing out with no word of which command) is then named with what it had printed.
    const r = await execa(PODMAN, [...global, ...args], { reject: false, cwd: dir, stdin: 'ignore', timeout: 60_000 });
    if (r.timedOut) throw new Error(`podman ${args.join(' ')} did not finish in 60 s\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    if (r.exitCode !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.exitCode}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return String(r.stdout);
  };
}

/**
 * `--ulimit` values for podman run: its defaults (nofile 1048576, nproc from the host) exceed
 * the hard limits of some sandboxes, and runc then fails to set them.
 */
async function ulimitArgs(): Promise<string[]> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const out: string[] = [];
  for (const [label, name] of [
    ['Max open files', 'nofile'],
    ['Max processes', 'nproc'],
  ] as const) {
    const m = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(limits);
    // Modest values, never above this process's soft limit: some sandboxes refuse even a
    // container's "raise" to the very limit its parent has.
    const n = m && m[1] !== 'unlimited' ? Math.min(1024, Number(m[1])) : 1024;
    out.push('--ulimit', `${name}=${n}:${n}`);
  }
  return out;
}

describe('podman interop', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let image: BuiltImage;
  let podman: (args: readonly string[]) => Promise<string>;
  const tmp = scratch();

  beforeAll(async () => {
    await requireTool(PODMAN, 'podman');
    env = await rootWithBusybox();
    image = await buildTestImage(env.root, 'interop/forpodman:2', tmp);
    podman = await podmanIn(await tmp.dir('tsbuild-podman-'));
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
    await tmp.cleanup();
  });

  async function podmanImage(ref: string): Promise<{ Id: string; RootFS: { Layers: string[] } }> {
    const [img] = JSON.parse(await podman(['image', 'inspect', ref])) as { Id: string; RootFS: { Layers: string[] } }[];
    return img!;
  }

  test('podman load and podman pull docker-archive: take our docker archive with its ID, name and layers', async () => {
    const file = join(await tmp.dir(), 'docker.tar');
    await ok(env.root, ['save', '-o', file, image.ref]);

    expect(await podman(['load', '-i', file])).toContain('Loaded image: docker.io/interop/forpodman:2');
    const loaded = await podmanImage('docker.io/interop/forpodman:2');
    expect(`sha256:${loaded.Id}`).toBe(image.id);
    expect(loaded.RootFS.Layers).toEqual(image.layers);
    await podman(['rmi', '-a', '-f']);

    await podman(['pull', `docker-archive:${file}`]);
    const pulled = await podmanImage(image.id.slice('sha256:'.length));
    expect(pulled.RootFS.Layers).toEqual(image.layers);

    // Running a container needs cgroups and rlimits the sandbox may or may not give; it works here.
    const run = await podman([
      'run',
      '--rm',
      '--network',
      'none',
      ...(await ulimitArgs()),
      image.id.slice('sha256:'.length),
      'cat',
      '/run-file',
    ]);
    expect(run.trim()).toBe('made-by-run');
  });

  test('podman load takes our OCI archive', async () => {
    const file = join(await tmp.dir(), 'oci.tar');
    await ok(env.root, ['save', '--format', 'oci', '-o', file, image.ref]);
    expect(await podman(['load', '-i', file])).toContain('Loaded image: docker.io/interop/forpodman:2');
    expect(`sha256:${(await podmanImage('docker.io/interop/forpodman:2')).Id}`).toBe(image.id);
  });

  test('tsbuild load takes what podman saves, as docker-archive (symlinked layers) and as oci-archive (gzip layers)', async () => {
    // Each command bounded, so that one that hangs is named (this test timed out once in CI).
    const bounded = { timeoutMs: 60_000 };
    const dir = await tmp.dir();
    const file = join(dir, 'ours.tar');
    await ok(env.root, ['save', '-o', file, image.ref], bounded);
    await podman(['load', '-i', file]);

    const dockerArchive = join(dir, 'podman-docker.tar');
    await podman(['save', '--format', 'docker-archive', '-o', dockerArchive, 'docker.io/interop/forpodman:2']);
    expect((await tarNames(dockerArchive)).some((n) => n.endsWith('/layer.tar'))).toBe(true);
    const fresh = await rootWithBusybox();
    try {
      const out = await ok(fresh.root, ['load', '-i', dockerArchive], bounded);
      expect(out).toBe('Loaded image: interop/forpodman:2\n');
      expect((await inspectImage(fresh.root, 'interop/forpodman:2')).id).toBe(image.id);
      expect(await ok(fresh.root, ['run', 'interop/forpodman:2', 'cat', '/d/f'], bounded)).toBe('second\n');

      // podman's OCI archive rewrites the config (so the image ID differs) and gzips the layers;
      // the diffIDs, checked layer by layer, stay ours.
      const ociArchive = join(dir, 'podman-oci.tar');
      await podman(['save', '--format', 'oci-archive', '-o', ociArchive, 'docker.io/interop/forpodman:2']);
      expect(await ok(fresh.root, ['load', '-i', ociArchive], bounded)).toBe('Loaded image: interop/forpodman:2\n');
      expect((await inspectImage(fresh.root, 'interop/forpodman:2')).layers).toEqual(image.layers);
    } finally {
      await fresh.cleanup();
    }
  });
});
