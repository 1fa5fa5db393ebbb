// `tag` refuses a target that pins a digest, as Docker does: a digest names content, so a tag
// `name:tag@sha256:...` could only ever be a lie about what it points at. The refusal is one
// line with Docker's wording, a non-zero exit, and repositories.json as it was.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxStore, ok, tsbuild } from '../helpers/tsbuild.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('tag with a digest', () => {
  const store = busyboxStore();

  test.each([`name:tag@${DIGEST}`, `name@${DIGEST}`, `127.0.0.1:5000/app:1@${DIGEST}`])(
    'tag busybox %s is refused with Docker’s message; the store is unchanged',
    async (target) => {
      const driver = (await readdir(join(store.root, 'image')))[0]!;
      const file = join(store.root, 'image', driver, 'repositories.json');
      const before = await readFile(file, 'utf8');
      const imagesBefore = await ok(store.root, ['images']);
      const r = await tsbuild(store.root, ['tag', 'busybox', target]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trimEnd().split('\n')).toEqual(['Error: refusing to create a tag with a digest reference']);
      expect(await readFile(file, 'utf8')).toBe(before);
      expect(await ok(store.root, ['images'])).toBe(imagesBefore);
    },
  );

  test('build -t and --output type=image,name= with a digest are refused before anything is built', async () => {
    for (const flags of [
      ['-t', `app:1@${DIGEST}`],
      ['--output', `type=image,name=app@${DIGEST}`],
    ]) {
      const r = await tsbuild(store.root, ['build', ...flags, '/nonexistent-context']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toEqual(['Error: refusing to create a tag with a digest reference']);
    }
  });
});
