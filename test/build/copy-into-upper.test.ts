// A COPY whose destination directory it creates fills that directory in the overlay's upper dir
// instead of through the mount (builder/copy.ts inUpperDir). The layers must be the ones the
// mount gives: the vfs driver, which has no overlay and writes every file in place, makes the
// same image byte for byte (--reproducible); and a directory re-created over one an earlier
// step deleted shows only what the COPY put there, as through the mount.
import { symlink, link, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof rootWithBusybox>>;
let overlay: Env;
let vfs: Env;
let ctx: string;

/** A small tree with what a copy has to get right: nesting, modes, a symlink, hard links, an empty dir. */
async function writeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'lib', 'deep', 'deeper'), { recursive: true });
  await mkdir(join(dir, 'empty'));
  await writeFile(join(dir, 'a.txt'), 'a\n');
  await writeFile(join(dir, 'lib', 'b.txt'), 'b\n'.repeat(40_000));
  await writeFile(join(dir, 'lib', 'deep', 'deeper', 'c.txt'), 'c\n');
  await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho run\n');
  await chmod(join(dir, 'run.sh'), 0o755);
  await writeFile(join(dir, 'lib', 'private'), 'p\n');
  await chmod(join(dir, 'lib', 'private'), 0o600);
  await symlink('lib/b.txt', join(dir, 'to-b'));
  await link(join(dir, 'a.txt'), join(dir, 'a-again.txt'));
}

beforeAll(async () => {
  [overlay, vfs] = await Promise.all([rootWithBusybox('overlay2'), rootWithBusybox('vfs')]);
  ctx = await tempDir();
  await writeTree(join(ctx, 'tree'));
  await mkdir(join(ctx, 'more'));
  await writeFile(join(ctx, 'more', 'm.txt'), 'm\n');
  await writeFile(join(ctx, 'single.txt'), 's\n');
}, 120_000);

afterAll(async () => {
  await overlay?.cleanup();
  await vfs?.cleanup();
});

test('COPY into directories it creates gives the image the vfs driver gives, byte for byte', async () => {
  await writeFile(
    join(ctx, 'Dockerfile.same'),
    [
      'FROM busybox',
      'RUN mkdir -p /app/kept && echo k > /app/kept/k.txt',
      // New destination directories, with new parents above them.
      'COPY tree/ /app/fresh/',
      'COPY tree /srv/a/b/c',
      // Two sources into one new directory: the first fills it in the upper dir, the second
      // merges into it through the mount.
      'COPY tree/ more/ /app/two/',
      'COPY --chown=1000:1000 --chmod=750 tree/ /app/owned/',
      // Into a directory a lower layer has: through the mount, as before.
      'COPY tree/ /app/kept/',
      'COPY single.txt /app/fresh-file/',
      '',
    ].join('\n'),
  );
  const build = (env: Env): Promise<string> =>
    ok(env.root, ['build', '-q', '--reproducible', '--no-cache', '-f', join(ctx, 'Dockerfile.same'), '-t', 'same:1', ctx]);
  const [fromOverlay, fromVfs] = [await build(overlay), await build(vfs)];
  expect(fromOverlay.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(fromOverlay.trim()).toBe(fromVfs.trim());
  const listing = await ok(overlay.root, [
    'run',
    'same:1',
    'sh',
    '-c',
    'cd /app/two && ls -la . lib && cat /srv/a/b/c/lib/deep/deeper/c.txt',
  ]);
  expect(listing).toMatch(/ m\.txt\n/);
  expect(listing).toMatch(/-rw------- .* private\n/);
  expect(listing).toMatch(/^c$/m);
}, 120_000);

test('a directory COPY re-creates over one an earlier step deleted holds only what the COPY put there', async () => {
  await writeFile(
    join(ctx, 'Dockerfile.gone'),
    [
      'FROM busybox',
      'RUN mkdir -p /app/gone/lib && echo old > /app/gone/old.txt && echo old > /app/gone/lib/old.txt',
      'RUN rm -rf /app/gone',
      'COPY tree/ /app/gone/',
      '',
    ].join('\n'),
  );
  const find = "cd /app/gone && find . | sort && cat lib/b.txt | wc -l && cat a-again.txt && stat -c '%h' a.txt";
  const seen: string[] = [];
  for (const env of [overlay, vfs]) {
    await ok(env.root, ['build', '-q', '--no-cache', '-f', join(ctx, 'Dockerfile.gone'), '-t', 'gone:1', ctx]);
    seen.push(await ok(env.root, ['run', 'gone:1', 'sh', '-c', find]));
  }
  expect(seen[0]).not.toMatch(/old\.txt/);
  expect(seen[0]).toMatch(/^\.\/lib\/deep\/deeper\/c\.txt$/m);
  expect(seen[0]).toMatch(/^40000\na\n2\n$/m);
  expect(seen[0]).toBe(seen[1]);
}, 120_000);
