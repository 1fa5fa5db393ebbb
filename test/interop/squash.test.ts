// `build --squash` beside Docker's classic builder's (an experimental daemon's `docker build
// --squash`): the same Dockerfile squashed by both gives a merged layer with the same entries
// (names, types, modes, owners, sizes, link targets, whiteouts), and the same history shape.
// Times differ by nature (each RUN runs at its own moment), so they are not compared.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startDockerd, DOCKER, type Dockerd } from '../helpers/dockerd.js';
import { ok, rootWithBusybox } from '../helpers/tsbuild.js';
import { pipeline, scratch, tarFile, tsbuildCmd } from './util.js';

let dockerd: Dockerd;
let env: Awaited<ReturnType<typeof rootWithBusybox>>;
const tmp = scratch();

beforeAll(async () => {
  [dockerd, env] = await Promise.all([startDockerd({ experimental: true }), rootWithBusybox()]);
  await pipeline(`${tsbuildCmd(env.root, ['save', 'busybox:latest'])} | ${DOCKER} load`, dockerd.env);
}, 180_000);

afterAll(async () => {
  await dockerd?.stop();
  await env?.cleanup();
  await tmp.cleanup();
}, 120_000);

/** The last layer of a docker-archive: each entry's name, type, mode, owner, size and link. */
async function lastLayerEntries(archive: string): Promise<string[]> {
  const [item] = JSON.parse((await tarFile(archive, 'manifest.json')).toString()) as { Layers: string[] }[];
  const layer = join(await tmp.dir('tsbuild-squash-layer-'), 'layer.tar');
  await writeFile(layer, await tarFile(archive, item!.Layers.at(-1)!));
  // GNU tar's verbose listing without its date and time columns.
  const { stdout } = await execa('tar', ['--numeric-owner', '-tvf', layer]);
  return stdout.split('\n').map((l) => {
    const [mode, owner, size, _date, _time, ...name] = l.split(/\s+/);
    return [mode, owner, size, ...name].join(' ');
  });
}

test('the merged layer has the entries Docker’s classic builder squashes into it', async () => {
  const ctx = await tmp.dir('tsbuild-squash-ctx-');
  await writeFile(join(ctx, 'big'), 'x'.repeat(100_000));
  await writeFile(join(ctx, 'small'), 'small\n');
  // A file added then deleted, a base file deleted (a whiteout), a directory replaced, a file
  // rewritten and re-moded, a symlink.
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      'FROM busybox:latest',
      'COPY big /data/big',
      'RUN rm /data/big /bin/zcat && mkdir -p /o/old && echo a > /o/a && echo 1 > /n',
      'COPY small /data/small',
      'RUN rm -rf /o && mkdir /o && echo b > /o/b && echo 22 > /n && chmod 640 /n && ln -s /o/b /link',
      'ENV DONE=1',
      '',
    ].join('\n'),
  );
  await dockerd.ok(['build', '--squash', '--network', 'none', '-t', 'squashed:1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
  await ok(env.root, ['build', '--squash', '-t', 'squashed:1', ctx]);

  const dockerArchive = join(await tmp.dir('tsbuild-squash-d-'), 'd.tar');
  await dockerd.ok(['save', '-o', dockerArchive, 'squashed:1']);
  const ourArchive = join(await tmp.dir('tsbuild-squash-t-'), 't.tar');
  await ok(env.root, ['save', '-o', ourArchive, 'squashed:1']);

  const theirs = await lastLayerEntries(dockerArchive);
  expect(theirs).toContain('---------- 0/0 0 bin/.wh.zcat');
  expect(await lastLayerEntries(ourArchive)).toEqual(theirs);

  // The same history: one empty entry per instruction, then the merge entry.
  const history = async (run: (args: string[]) => Promise<string>) =>
    JSON.parse(await run(['inspect', 'squashed:1']))[0].RootFS.Layers.length as number;
  expect(await history((a) => ok(env.root, a))).toBe(await history((a) => dockerd.ok(['image', ...a])));
  // tsbuild's history --format json has docker's keys, Size in bytes (docker's is humanized);
  // its steps' entries carry BuildKit's comment, the classic builder's none.
  const shape = (rows: { Comment: string; Size: number | string; CreatedBy: string }[]) =>
    rows.map((r) => [
      r.Comment.replace(/sha256:[0-9a-f]{64}/g, 'ID').replace('buildkit.dockerfile.v0', ''),
      /^0(B)?$/.test(String(r.Size)) ? 'empty' : 'layer',
    ]);
  const lines = (out: string) =>
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const dockerRows = shape(lines(await dockerd.ok(['history', '--no-trunc', '--format', '{{json .}}', 'squashed:1'])));
  expect(dockerRows[0]).toEqual(['merge ID to ID', 'layer']);
  expect(shape(lines(await ok(env.root, ['history', '--format', 'json', 'squashed:1'])))).toEqual(dockerRows);
}, 300_000);
