// CI builds that never touch a local daemon: `build --push` sends the image to a registry, and
// a Dockerfile FROM an image the store lacks pulls it first, as `docker build` does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ok, REPO, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => registry?.stop());

test('build --push, then a fresh store builds FROM the pushed image by pulling it', async () => {
  const builder = await rootWithBusybox('overlay2');
  const fresh = await tempRoot();
  try {
    const name = `${registry.host}/ci/hello:1`;
    const out = await ok(builder.root, ['build', '--progress', 'plain', '--push', '-t', name, join(REPO, 'examples/hello')]);
    expect(out).toMatch(new RegExp(`Pushed ${name.replace(/[.]/g, '\\.')}: digest: sha256:[0-9a-f]{64} size: \\d+`));
    const [pushed] = JSON.parse(await ok(builder.root, ['inspect', name]));

    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${name}\nRUN /app/hello.sh > /app/said\nCMD ["cat", "/app/said"]\n`);
    const built = await ok(fresh.root, ['build', '--progress', 'plain', '-t', 'derived', ctx]);
    expect(built).toContain(`--> pulling ${name}`);
    const [base] = JSON.parse(await ok(fresh.root, ['inspect', name]));
    expect(base.Id).toBe(pushed.Id);
    const r = await tsbuild(fresh.root, ['run', 'derived']);
    expect(r.stdout).toBe('Hello from an image built by tsbuild!\nbuilt by tsbuild on x86_64\n');
  } finally {
    await builder.cleanup();
    await fresh.cleanup();
  }
});
