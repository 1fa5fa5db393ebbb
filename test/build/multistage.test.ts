// Multi-stage builds: stages the target does not need are not built; COPY --from reads an
// earlier stage by name or index, or an image, with symlinks resolved inside that root.
import { join } from 'node:path';
import { ok, REPO, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

const CONTEXT = join(REPO, 'testdata/contexts/multistage');

test('multi-stage build, --target, and COPY --from', async () => {
  const env = await rootWithBusybox('overlay2');
  try {
    const out = await ok(env.root, ['build', '--progress', 'plain', '-t', 'multi', CONTEXT]);
    expect(out).not.toContain('this stage must not run');
    const r = await tsbuild(env.root, ['run', 'multi']);
    expect(r.stdout).toBe('built\nbuilt\n');
    const listing = await tsbuild(env.root, [
      'run',
      'multi',
      '/bin/busybox',
      'sh',
      '-c',
      'readlink /app/abs-link; test -L /app/followed || echo followed-is-a-file',
    ]);
    expect(listing.stdout).toBe('/out/artifact\nfollowed-is-a-file\n');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'multi']));
    expect(img.RootFS.Layers).toHaveLength(4); // FROM scratch: one layer per COPY
  } finally {
    await env.cleanup();
  }
});

test('--target builds that stage and what it needs only', async () => {
  const env = await rootWithBusybox('overlay2');
  try {
    const out = await ok(env.root, ['build', '--progress', 'plain', '--target', 'builder', '-t', 'just-builder', CONTEXT]);
    expect(out).toMatch(/^STEP 1\/2: FROM \$\{BASE\} AS builder$/m);
    expect(out).not.toContain('FROM scratch');
    const r = await tsbuild(env.root, ['run', 'just-builder', 'cat', '/out/artifact']);
    expect(r.stdout).toBe('built\n');
    const bad = await tsbuild(env.root, ['build', '--target', 'nosuch', CONTEXT]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/target stage "nosuch" could not be found/);
  } finally {
    await env.cleanup();
  }
});
