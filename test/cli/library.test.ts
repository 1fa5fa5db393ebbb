// The library's entry point, used as a program would use the package: docs/library.md's example,
// taken from the page as it stands, run with `tsbuild` resolving to this package (its `exports`
// and `main` pointing at the compiled dist/src/index.js).
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO, tempDir, tempRoot } from '../helpers/tsbuild.js';

test('docs/library.md’s example builds, analyzes, saves and loads through the package entry point', async () => {
  const page = await readFile(join(REPO, 'docs/library.md'), 'utf8');
  const example = /```js\n([\s\S]*?)```/.exec(page)?.[1];
  expect(example).toContain("from 'tsbuild'");

  const dir = await tempDir();
  await mkdir(join(dir, 'node_modules'));
  await symlink(REPO, join(dir, 'node_modules', 'tsbuild'));
  await writeFile(join(dir, 'example.mjs'), example!);
  const a = await tempRoot();
  const b = await tempRoot();
  try {
    const r = await execa('node', ['example.mjs'], { cwd: dir, reject: false, all: true, env: { STORE_ROOT: a.root, OTHER_ROOT: b.root } });
    expect({ exit: r.exitCode, output: r.all }).toEqual({ exit: 0, output: expect.stringContaining('same image') });
    const lines = String(r.all).split('\n');
    expect(lines[0]).toBe("[ 'cat', '/greeting' ] 2");
    expect(lines[1]).toMatch(/^sha256:[0-9a-f]{64} \d+$/);
    expect(lines[3]).toMatch(/^efficiency (0|1|0\.\d+)$/);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});
