// ONBUILD triggers, --cache-from, and reproducible builds.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { contextOf, ok, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

const context = contextOf;

describe('build features', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  test('ONBUILD triggers are recorded, run in the child build, and not inherited', async () => {
    await ok(env.root, [
      'build',
      '-t',
      'onbuild-base',
      await context({ Dockerfile: 'FROM busybox\nONBUILD RUN echo triggered > /from-trigger\nONBUILD ENV FROM_TRIGGER=yes\n' }),
    ]);
    const [base] = JSON.parse(await ok(env.root, ['inspect', 'onbuild-base']));
    expect(base.Config.OnBuild).toEqual(['RUN echo triggered > /from-trigger', 'ENV FROM_TRIGGER=yes']);
    const out = await ok(env.root, [
      'build',
      '--progress',
      'plain',
      '-t',
      'onbuild-child',
      await context({ Dockerfile: 'FROM onbuild-base\nRUN cat /from-trigger\n' }),
    ]);
    expect(out).toMatch(/--> ONBUILD RUN echo triggered > \/from-trigger/);
    expect(out).toMatch(/^triggered$/m);
    const [child] = JSON.parse(await ok(env.root, ['inspect', 'onbuild-child']));
    expect(child.Config.OnBuild).toBeUndefined();
    expect(child.Config.Env).toContain('FROM_TRIGGER=yes');
  });

  test('--cache-from reuses RUN layers of a given image when the local cache is gone', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nRUN echo expensive > /result\nWORKDIR /app\n' });
    await ok(env.root, ['build', '-t', 'cached-app', ctx]);
    const [first] = JSON.parse(await ok(env.root, ['inspect', 'cached-app']));
    // A fresh machine that pulled cached-app: it has the image but not our cache records.
    await rm(join(env.root, 'image/overlay2/buildcache'), { recursive: true, force: true });
    const without = await ok(env.root, ['build', '--progress', 'plain', '-t', 'not-cached', ctx]);
    expect(without).not.toMatch(/CACHED/);
    await rm(join(env.root, 'image/overlay2/buildcache'), { recursive: true, force: true });
    const withCache = await ok(env.root, ['build', '--progress', 'plain', '--cache-from', 'cached-app', '-t', 'from-cache', ctx]);
    expect(withCache.match(/--> CACHED/g)).toHaveLength(2);
    const [again] = JSON.parse(await ok(env.root, ['inspect', 'from-cache']));
    expect(again.RootFS.Layers).toEqual(first.RootFS.Layers);
  });

  test('a rebuild of an unchanged project prints CACHED for every layer step', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nWORKDIR /w\nRUN cat /a.txt > /w/b\nENV X=1\n',
      'a.txt': 'a\n',
    });
    await ok(env.root, ['build', '-t', 'rebuild', ctx]);
    const out = await ok(env.root, ['build', '--progress', 'plain', '-t', 'rebuild', ctx]);
    expect(out.match(/--> CACHED/g)).toHaveLength(3);
    await writeFile(join(ctx, 'a.txt'), 'changed\n');
    const changed = await ok(env.root, ['build', '--progress', 'plain', '-t', 'rebuild', ctx]);
    expect(changed).not.toMatch(/CACHED/); // the COPY changed, and every later step runs again
  });
});

test('two clean reproducible builds give the same image ID', async () => {
  const ctx = await context({
    Dockerfile:
      'FROM busybox\nCOPY app.txt /app/\nRUN echo built > /app/out && mkdir -p /var/lib/x && touch /var/lib/x/f\nENV A=1\nCMD ["cat", "/app/out"]\n',
    'app.txt': 'app\n',
  });
  const ids: string[] = [];
  for (const run of [1, 2]) {
    const env = await rootWithBusybox('overlay2');
    try {
      const out = await ok(env.root, ['build', '-q', '--reproducible', '-t', 'repro', ctx]);
      ids.push(out.trim());
      const [img] = JSON.parse(await ok(env.root, ['inspect', 'repro']));
      expect(img.Created).toBe('1970-01-01T00:00:00Z');
      if (run === 1) await new Promise((r) => setTimeout(r, 1100)); // a different second for the second build
    } finally {
      await env.cleanup();
    }
  }
  expect(ids[0]).toMatch(/^sha256:/);
  expect(ids[1]).toBe(ids[0]);
  // SOURCE_DATE_EPOCH must be a number
  const env = await rootWithBusybox();
  try {
    const r = await tsbuild(env.root, ['build', ctx], { env: { SOURCE_DATE_EPOCH: 'yesterday' } });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/invalid SOURCE_DATE_EPOCH/);
  } finally {
    await env.cleanup();
  }
});
