// The differ reading an upper dir in fuse-overlayfs's conventions (src/layer/whiteout.ts): each
// of its marks, laid out by hand as fuse-overlayfs 1.x leaves them, gives the entries the kernel's
// upper dir of the same change would. test/rootless checks the same end to end, through builds.
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { overlayChanges } from '../../src/layer/changes.js';
import { cleanup, tempDir } from './fixtures.js';

let work: string;
let lower: string;
let upper: string;

async function whiteoutDevice(path: string): Promise<void> {
  await execa('mknod', ['-m', '700', path, 'c', '0', '0']);
}

beforeAll(async () => {
  work = await tempDir('tsbuild-fuse-');
  lower = join(work, 'lower');
  upper = join(work, 'upper');
  // Below: a file, a directory with a file, a file to delete through a `.wh.` file.
  await mkdir(join(lower, 'replaced'), { recursive: true });
  await writeFile(join(lower, 'replaced', 'old'), 'old');
  await writeFile(join(lower, 'gone'), 'x');
  await writeFile(join(lower, 'gone-too'), 'x');

  await mkdir(upper);
  // rm /gone: a 0/0 device; rm /gone-too where mknod was refused: an empty `.wh.` file.
  await whiteoutDevice(join(upper, 'gone'));
  await writeFile(join(upper, '.wh.gone-too'), '');
  // rm -rf /replaced && mkdir /replaced && touch /replaced/new: the marker file, the xattr,
  // and a whiteout of `.wh..opq` (the marker file read as a whiteout of that name).
  await mkdir(join(upper, 'replaced'));
  await writeFile(join(upper, 'replaced', '.wh..wh..opq'), '');
  await whiteoutDevice(join(upper, 'replaced', '.wh..opq'));
  await execa('setfattr', ['-n', 'user.fuseoverlayfs.opaque', '-v', 'y', join(upper, 'replaced')]);
  await writeFile(join(upper, 'replaced', 'new'), 'new');
  // mkdir /fresh && touch /fresh/f: fuse-overlayfs marks a new directory opaque too.
  await mkdir(join(upper, 'fresh'));
  await writeFile(join(upper, 'fresh', '.wh..wh..opq'), '');
  await writeFile(join(upper, 'fresh', 'f'), 'f');
  // touch /tmp-file && rm /tmp-file in one step: a whiteout of a name no lower layer has.
  await whiteoutDevice(join(upper, 'made-and-removed'));
});
afterAll(async () => cleanup(work));

test('whiteouts, opaque directories and fuse-overlayfs bookkeeping commit as the kernel upper dir would', async () => {
  const seen: string[] = [];
  for await (const c of overlayChanges(upper, [lower], 'trusted.overlay.', 'fuse-overlayfs')) {
    seen.push(c.kind === 'entry' ? `${c.name}${c.record.type === 'd' ? '/' : ''}` : `${c.kind} ${c.name}`);
    if (c.kind === 'entry') expect(Object.keys(c.record.xattrs ?? {})).not.toContain('user.fuseoverlayfs.opaque');
  }
  expect(seen.sort()).toEqual(
    ['fresh/', 'fresh/f', 'opaque replaced', 'replaced/', 'replaced/new', 'whiteout gone', 'whiteout gone-too'].sort(),
  );
});
