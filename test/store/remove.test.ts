// rmi and prune never leave a layer record whose parent is gone. A layer no image uses can stand
// on a layer an image does use: an intermediate stage's RUN on a shared COPY, or what an
// interrupted build published. Removing the image must keep the layer that other one stands on,
// and prune must then take both, top first.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxStore, ok, tempDir } from '../helpers/tsbuild.js';
import { inconsistencies, leftovers } from '../reliability/store-check.js';

const env = busyboxStore();

async function layerCount(root: string): Promise<number> {
  return Number(/Layers: (\d+)/.exec(await ok(root, ['info']))![1]);
}

test('rmi keeps a layer an unused layer stands on; prune then removes both', async () => {
  const root = env.root;
  const ctx = await tempDir();
  await writeFile(join(ctx, 'f'), 'shared\n');
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      'FROM busybox AS base',
      'COPY f /f',
      'FROM base AS helper',
      'RUN echo helper > /h',
      'FROM base',
      'COPY --from=helper /h /copied',
      '',
    ].join('\n'),
  );
  const before = await layerCount(root);
  await ok(root, ['build', '-t', 'app:1', ctx]);
  // COPY f and COPY --from are the image's; the helper stage's RUN stands on COPY f, in no image.
  // (COPY --from to another path than the RUN wrote: the same file at the same path would be
  // the same layer as the RUN's, shared.)
  expect(await layerCount(root)).toBe(before + 3);

  await ok(root, ['rmi', 'app:1']);
  expect(await inconsistencies(root)).toEqual([]);
  // The image's top layer went; COPY f stays, the helper's RUN stands on it.
  expect(await layerCount(root)).toBe(before + 2);

  // The helper's RUN, then COPY f: top first, each once.
  const out = await ok(root, ['prune', '-f']);
  expect(out.match(/^deleted: sha256:/gm)).toHaveLength(2);
  expect(await layerCount(root)).toBe(before);
  expect(await inconsistencies(root)).toEqual([]);
  expect(await leftovers(root)).toEqual([]);
});
