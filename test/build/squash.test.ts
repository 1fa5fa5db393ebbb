// `build --squash` (src/builder/squash.ts): the layers a Dockerfile made merged into one on the
// base image's, history kept one entry per instruction plus Docker's merge entry, nothing wasted
// by the Dockerfile's own steps; checked from the image (inspect, history, analyze, run, save).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { busyboxStore, ok, tempDir, tsbuild } from '../helpers/tsbuild.js';

interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const env = busyboxStore();
const inspect = async (ref: string): Promise<Json> => JSON.parse(await ok(env.root, ['inspect', ref]))[0];
const config = async (ref: string): Promise<Json> => {
  const dir = await tempDir('tsbuild-squash-save-');
  env.removeLater(dir);
  await ok(env.root, ['save', '-o', join(dir, 'img.tar'), ref]);
  return JSON.parse((await execa('skopeo', ['inspect', '--config', `docker-archive:${join(dir, 'img.tar')}`])).stdout);
};

async function context(dockerfile: string): Promise<string> {
  const ctx = await tempDir('tsbuild-squash-');
  env.removeLater(ctx);
  await writeFile(join(ctx, 'big'), randomBytes(2_000_000));
  await writeFile(join(ctx, 'small'), 'small\n');
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
}

const WASTEFUL = [
  'FROM busybox',
  'COPY big /data/big',
  'RUN rm /data/big && echo a > /a',
  'COPY small /data/small',
  'RUN echo b > /b && chmod 600 /a',
  'ENV GREETING=hi',
  '',
].join('\n');

test('merges the Dockerfile’s layers into one on the base’s: same files, nothing wasted, history kept', async () => {
  const ctx = await context(WASTEFUL);
  await ok(env.root, ['build', '-q', '-t', 'plain', ctx]);
  await ok(env.root, ['build', '-q', '--squash', '-t', 'squashed', ctx]);
  const plain = await inspect('plain');
  const squashed = await inspect('squashed');
  const base = await inspect('busybox');
  // The base's layers, then one.
  expect(squashed.RootFS.Layers).toHaveLength(base.RootFS.Layers.length + 1);
  expect(squashed.RootFS.Layers.slice(0, -1)).toEqual(base.RootFS.Layers);
  expect(plain.RootFS.Layers).toHaveLength(base.RootFS.Layers.length + 4);
  expect(squashed.Config.Env).toEqual(plain.Config.Env);

  // History: each instruction's entry, now empty_layer, and Docker's merge entry for the new layer.
  const cfg = await config('squashed');
  const own = cfg.history.slice(base.RootFS.Layers.length);
  expect(own.slice(0, -1).map((h: Json) => [/\b(COPY|RUN|ENV)\b/.exec(h.created_by)?.[1], h.empty_layer])).toEqual([
    ['COPY', true],
    ['RUN', true],
    ['COPY', true],
    ['RUN', true],
    ['ENV', true],
  ]);
  expect(own.at(-1).comment).toMatch(new RegExp(`^merge sha256:[0-9a-f]{64} to ${base.Id}$`));
  expect(own.at(-1).empty_layer).toBeUndefined();

  // The same filesystem, without the deleted 2 MB.
  const files = 'ls -ln /a /b /data; cat /a /b /data/small; test -e /data/big || echo no-big';
  expect(await ok(env.root, ['run', 'squashed', 'sh', '-c', files])).toBe(await ok(env.root, ['run', 'plain', 'sh', '-c', files]));
  expect(await ok(env.root, ['run', 'squashed', 'sh', '-c', files])).toContain('no-big');
  expect(squashed.Size).toBeLessThan(plain.Size - 1_900_000);

  // analyze: the merged layer is the Dockerfile's, named by its lines, and wastes nothing.
  const a = JSON.parse(await ok(env.root, ['analyze', '--json', 'squashed']));
  expect(a.wastedBytes).toBe(0);
  expect(a.layers.at(-1).origin).toMatchObject({ base: false, line: 2, text: '(--squash) the layers of lines 2-5, merged' });
  // Unsquashed: the deleted 2 MB, and /a ("a\n") stored again by the chmod.
  expect(JSON.parse(await ok(env.root, ['analyze', '--json', 'plain'])).wastedBytes).toBe(2_000_002);
});

test('--reproducible: the squashed image is the same twice', async () => {
  const ctx = await context(WASTEFUL);
  const once = (await ok(env.root, ['build', '-q', '--squash', '--reproducible', '--no-cache', ctx])).trim();
  const twice = (await ok(env.root, ['build', '-q', '--squash', '--reproducible', '--no-cache', ctx])).trim();
  expect(twice).toBe(once);
});

test('FROM scratch: one layer, "create new from"; no layer made: the image as without --squash', async () => {
  const scratch = await context('FROM scratch\nCOPY small /s1\nCOPY small /s2\n');
  await ok(env.root, ['build', '-q', '--squash', '-t', 'from-scratch', scratch]);
  expect((await inspect('from-scratch')).RootFS.Layers).toHaveLength(1);
  expect((await config('from-scratch')).history.at(-1).comment).toMatch(/^create new from sha256:[0-9a-f]{64}$/);

  const meta = await context('FROM busybox\nENV A=1\nLABEL b=2\n');
  const squashed = (await ok(env.root, ['build', '-q', '--squash', '--reproducible', meta])).trim();
  expect((await ok(env.root, ['build', '-q', '--reproducible', meta])).trim()).toBe(squashed);
});

test('--squash with an inline cache is refused in one line, before anything is built', async () => {
  const ctx = await context(WASTEFUL);
  const r = await tsbuild(env.root, ['build', '--squash', '--cache-to', 'type=inline', '-t', 'never', ctx]);
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toBe('Error: --squash cannot be used with --cache-to type=inline: the inline cache names the layers squashing merges\n');
  expect((await tsbuild(env.root, ['inspect', 'never'])).exitCode).not.toBe(0);
});
