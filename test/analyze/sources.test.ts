// analyze, history, inspect and diff on images beside the store: the same images saved with
// `tsbuild save` (a docker archive, an OCI archive, that OCI archive unpacked as a layout
// directory) and pushed to a real registry on 127.0.0.1 give the answers the stored images give
// (analyze's numbers equal, diff's lines equal), with a store root that does not exist before and
// still does not after; history and inspect of a registry's image download no layer; bad input
// is one line and a non-zero exit.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { busyboxStore, CLI, ok, tempDir, tsbuild } from '../helpers/tsbuild.js';
import { buildPair, context, EXPECTED_LINES, type Json } from './pair.js';

describe('image sources beside the store', () => {
  const env = busyboxStore();
  let registry: TestRegistry;
  let dir: string;
  /** A store root that must never come into being. */
  let none: string;

  /** `save` to a docker archive, an OCI archive and (unpacked) an OCI layout; tag and push to the registry. */
  async function publish(image: string): Promise<void> {
    await ok(env.root, ['save', '-o', join(dir, `${image}.tar`), image]);
    await ok(env.root, ['save', '--format', 'oci', '-o', join(dir, `${image}-oci.tar`), image]);
    await mkdir(join(dir, `${image}-oci`));
    await execa('tar', ['-xf', join(dir, `${image}-oci.tar`), '-C', join(dir, `${image}-oci`)]);
    await ok(env.root, ['tag', image, `${registry.host}/${image}:1`]);
    await ok(env.root, ['push', `${registry.host}/${image}:1`]);
  }
  const sources = (image: string): string[] => [
    `docker-archive:${join(dir, `${image}.tar`)}`,
    `oci-archive:${join(dir, `${image}-oci.tar`)}`,
    `oci:${join(dir, `${image}-oci`)}`,
    `oci:${join(dir, `${image}-oci`)}:latest`,
    `docker://${registry.host}/${image}:1`,
    `oci-archive:${join(dir, `${image}-oci.tar`)}:latest`,
  ];

  beforeAll(async () => {
    registry = await startRegistry();
    dir = await tempDir('tsbuild-sources-');
    none = join(dir, 'no-store');
    // An image with waste: a 2 MB file deleted later, a file stored again to chown it.
    const ctx = await context({}, [
      'FROM busybox',
      'COPY big.bin small.txt /tmp/',
      'RUN rm /tmp/big.bin && chown 1000 /tmp/small.txt && ln /tmp/small.txt /tmp/hard',
    ]);
    await writeFile(join(ctx, 'big.bin'), randomBytes(2_000_000));
    await writeFile(join(ctx, 'small.txt'), randomBytes(1_500_000));
    await ok(env.root, ['build', '-q', '-t', 'app', ctx]);
    await buildPair(env.root);
    const touched = await context({}, ['FROM after', 'LABEL x=y', 'RUN touch /data/a.txt /data/same.txt /data/new.txt']);
    await ok(env.root, ['build', '-q', '-t', 'touched', touched]);
    for (const image of ['app', 'before', 'after', 'touched']) await publish(image);
  });
  afterAll(async () => {
    await registry?.stop();
  });
  afterEach(() => {
    expect(existsSync(none)).toBe(false);
  });

  /** analyze --json without what only a build record gives (Dockerfile lines, their wording). */
  const numbers = (a: Json): Json => ({
    id: a.id,
    size: a.size,
    userSize: a.userSize,
    storedBytes: a.storedBytes,
    wastedBytes: a.wastedBytes,
    userWastedBytes: a.userWastedBytes,
    userWastedPercent: a.userWastedPercent,
    efficiency: a.efficiency,
    layers: (a.layers as Json[]).map(({ origin, ...l }) => ({ ...l, base: origin.base })),
    inefficientPaths: a.inefficientPaths,
    hints: (a.hints as Json[]).map(({ message, fix, ...h }) => h),
  });

  test('analyze: the same numbers from every source as from the store', async () => {
    const stored = JSON.parse(await ok(env.root, ['analyze', '--json', 'app'])) as Json;
    expect(stored.wastedBytes).toBe(2_000_000 + 1_500_000);
    expect((stored.hints as Json[]).map((h) => h.kind).sort()).toEqual(['chown-chmod-later', 'deleted-later']);
    for (const source of sources('app')) {
      const a = JSON.parse(await ok(none, ['analyze', '--json', source])) as Json;
      expect({ source, ...numbers(a) }).toEqual({ source, ...numbers(stored) });
      expect(a.notes[0]).toMatch(/^no build record for this image/);
    }
    const text = await ok(none, ['analyze', sources('app')[0]!]);
    expect(text).toMatch(/^Image app:latest \([0-9a-f]{12}\)\n/);
    // The HTML report reads the same analysis.
    const page = join(dir, 'app.html');
    await ok(none, ['analyze', '--html', page, sources('app')[4]!]);
    expect(await readFile(page, 'utf8')).toContain(stored.id);
  });

  test("layouts and archives other tools write: skopeo's oci:DIR:TAG and docker-archive give the same numbers", async () => {
    // skopeo writes the config anew (another image ID); the layers are the same.
    const { id: _id, ...stored } = numbers(JSON.parse(await ok(env.root, ['analyze', '--json', 'app'])) as Json);
    const layout = join(dir, 'skopeo-oci');
    const archive = join(dir, 'skopeo.tar');
    const from = ['copy', '--src-tls-verify=false', `docker://${registry.host}/app:1`];
    await execa('skopeo', [...from, `oci:${layout}:v1`]);
    await execa('skopeo', [...from, `docker-archive:${archive}:app:1`]);
    for (const source of [`oci:${layout}:v1`, `oci:${layout}`, `docker-archive:${archive}`]) {
      const { id: _i, ...a } = numbers(JSON.parse(await ok(none, ['analyze', '--json', source])) as Json);
      expect({ source, ...a }).toEqual({ source, ...stored });
    }
    expect(await tsbuild(none, ['diff', `oci:${layout}:v1`, `docker-archive:${archive}`])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
  });

  test('history and inspect: the same answers; a registry gives its compressed sizes and is asked for no layer', async () => {
    const history = (root: string, name: string): Promise<Json[]> =>
      ok(root, ['history', '--format', 'json', '--no-trunc', name]).then((out) =>
        out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Json),
      );
    const inspect = async (root: string, name: string): Promise<Json> => (JSON.parse(await ok(root, ['inspect', name])) as Json[])[0]!;
    const storedHistory = await history(env.root, 'app');
    // The store's image has been tagged and pushed since it was saved: its names are the store's own.
    const { Parent: _p, GraphDriver: _g, RepoTags: _t, RepoDigests: _d, ...storedInspect } = await inspect(env.root, 'app');
    for (const source of sources('app').slice(0, 4)) {
      expect({ source, h: await history(none, source) }).toEqual({ source, h: storedHistory });
      const i = await inspect(none, source);
      expect({ source, i }).toEqual({ source, i: { ...storedInspect, Parent: '', RepoTags: ['app:latest'], RepoDigests: [] } });
    }

    const remote = sources('app')[4]!;
    const before = await registry.requests();
    const h = await history(none, remote);
    const i = await inspect(none, remote);
    const blobGets = (await registry.requests()).slice(before.length).filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
    expect(blobGets.map((r) => r.url)).toEqual([`/v2/app/blobs/${storedInspect.Id}`, `/v2/app/blobs/${storedInspect.Id}`]);
    const manifest = (await (
      await fetch(`http://${registry.host}/v2/app/manifests/1`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).json()) as Json;
    const compressed = (manifest.layers as Json[]).map((l) => l.size as number);
    expect(h.map(({ Size: _s, ...r }) => r)).toEqual(storedHistory.map(({ Size: _s, ...r }) => r));
    expect(h.filter((r) => r.Size > 0).map((r) => r.Size)).toEqual([...compressed].reverse());
    expect(i).toEqual({
      ...storedInspect,
      Parent: '',
      RepoTags: [`${registry.host}/app:1`],
      RepoDigests: [expect.stringMatching(new RegExp(`^${registry.host}/app@sha256:[0-9a-f]{64}$`))],
      Size: compressed.reduce((n, s) => n + s, 0),
    });
  });

  test('diff across sources: the same lines as between the stored images; the same files under other IDs are no difference', async () => {
    const [beforeSources, afterSources] = [sources('before'), sources('after')];
    for (const [a, b] of [
      ['before', afterSources[0]!],
      [beforeSources[1]!, 'after'],
      [beforeSources[2]!, afterSources[4]!],
      [beforeSources[4]!, afterSources[3]!],
    ]) {
      const root = a === 'before' || b === 'after' ? env.root : none;
      const r = await tsbuild(root, ['diff', a!, b!]);
      expect({ a, b, ...r }).toEqual({ a, b, exitCode: 1, stdout: `${EXPECTED_LINES}\n`, stderr: '' });
    }
    // Two images in one archive: skopeo's docker-archive:FILE:REF picks one.
    const both = join(dir, 'both.tar');
    await ok(env.root, ['save', '-o', both, 'before', 'after']);
    const picked = await tsbuild(none, ['diff', `docker-archive:${both}:before`, `docker-archive:${both}:after:latest`]);
    expect(picked).toEqual({ exitCode: 1, stdout: `${EXPECTED_LINES}\n`, stderr: '' });
    const unnamed = await tsbuild(none, ['diff', `docker-archive:${both}`, 'after']);
    expect(unnamed.stderr).toBe(
      `Error: ${both} holds 2 images (before:latest; after:latest): name one as docker-archive:${both}:NAME[:TAG]\n`,
    );
    const absent = await tsbuild(none, ['diff', `docker-archive:${both}:other`, 'after']);
    expect(absent.stderr).toBe(`Error: ${both} has no image tagged other:latest (it holds before:latest; after:latest)\n`);
    // Files stored again unchanged (new mtimes): the stored layer's CRC-64 and the streamed one agree.
    for (const t of sources('touched')) {
      expect(await tsbuild(env.root, ['diff', 'after', t])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    }
    expect(await tsbuild(none, ['diff', sources('after')[0]!, sources('touched')[4]!])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
  });

  test('Ctrl-C while an archive is read: exit 130, and its scratch directory is gone', async () => {
    const ctx = await context({}, ['FROM busybox', 'COPY big.bin /']);
    await writeFile(join(ctx, 'big.bin'), randomBytes(200_000_000));
    await ok(env.root, ['build', '-q', '-t', 'big', ctx]);
    const archive = join(dir, 'big.tar');
    await ok(env.root, ['save', '-o', archive, 'big']);
    await rm(join(ctx, 'big.bin'));
    const scratch = async (): Promise<string[]> => (await readdir(tmpdir())).filter((n) => n.startsWith('tsbuild-source-'));
    const child = execa('node', [CLI, 'analyze', '--root', none, `docker-archive:${archive}`], { reject: false });
    while ((await scratch()).length === 0) {
      if (child.exitCode !== null) throw new Error(`analyze ended before it was interrupted: ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGINT');
    const r = await child;
    expect({ code: r.exitCode, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 130, stderr: 'Error: interrupted', stdout: '' });
    expect(await scratch()).toEqual([]);
    await rm(archive);
  });

  test('bad input: one line and a non-zero exit, for every command', async () => {
    const notArchive = join(dir, 'not-an-archive.tar');
    await writeFile(notArchive, 'hello\n'.repeat(200));
    const cases: [string, RegExp][] = [
      ['oci-archive:/nonexistent/x.tar', /^Error: oci-archive: no such file: \/nonexistent\/x\.tar$/],
      ['oci:/nonexistent/dir', /^Error: no such directory: \/nonexistent\/dir$/],
      [`oci:${join(dir, 'app-oci')}:v9`, /^Error: the OCI layout has no image tagged "v9" \(its tags: latest\)$/],
      [`oci-archive:${join(dir, 'app-oci.tar')}:v9`, /^Error: the OCI layout has no image tagged "v9" \(its tags: latest\)$/],
      [`docker-archive:${notArchive}`, /^Error: not a valid image archive: .+$/],
      [`docker-archive:${dir}`, /^Error: docker-archive: .* is a directory$/],
      ['ftp://example.com/x', /^Error: unknown transport "ftp:\/\/" in "ftp:\/\/example.com\/x": use docker:\/\/, .+$/],
      ['docker://Bad_Ref', /^Error: invalid reference format .+$/],
      [`docker://${registry.host}/nosuch:1`, /^Error: manifest for 127\.0\.0\.1:\d+\/nosuch:1 not found: .+$/],
      ['oci-archive:', /^Error: "oci-archive:" names nothing: write oci-archive:FILE$/],
    ];
    for (const command of ['analyze', 'history', 'inspect']) {
      for (const [name, message] of cases) {
        const r = await tsbuild(none, [command, name]);
        expect({ command, name, code: r.exitCode === 0 ? 0 : 'non-zero', stdout: r.stdout }).toEqual({
          command,
          name,
          code: 'non-zero',
          stdout: '',
        });
        expect({ command, name, stderr: r.stderr }).toEqual({ command, name, stderr: expect.stringMatching(/\n$/) });
        expect(r.stderr.trimEnd()).toMatch(message);
        expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      }
    }
    // Scratch space (archive spools, registry downloads) is gone after every command.
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('tsbuild-source-'))).toEqual([]);
  });
});
