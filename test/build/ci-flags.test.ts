// What CI scripts rely on in `build`: a fully cached rebuild is the same image (same ID, no new
// untagged image), --label, --iidfile, --metadata-file, --output of the final filesystem
// (type=local, type=tar) and of a tag (type=image), and --pull asking the registry for a base
// the store already has.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { CLI, ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

async function context(files: Record<string, string>): Promise<string> {
  const ctx = await tempDir();
  for (const [name, content] of Object.entries(files)) await writeFile(join(ctx, name), content);
  return ctx;
}

const DOCKERFILE = [
  'FROM busybox',
  'ENV APP_HOME=/app',
  'LABEL stage=one',
  'WORKDIR /app',
  'COPY hello.txt .',
  'RUN echo running-step && echo built > /app/built.txt',
  'RUN true',
  'EXPOSE 8080',
  'CMD ["cat", "/app/hello.txt"]',
  '',
].join('\n');

describe('build for CI', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox();
  });
  afterAll(async () => env?.cleanup());

  test('a fully cached rebuild gives the same image ID and stores no new image', async () => {
    const ctx = await context({ Dockerfile: DOCKERFILE, 'hello.txt': 'hello\n' });
    const first = (await ok(env.root, ['build', '-q', '-t', 'ci-same:1', ctx])).trim();
    // The stored image IDs (images -q prints one a row, an ID tagged twice twice, as docker's).
    const stored = async () => [...new Set((await ok(env.root, ['images', '-q', '--no-trunc'])).split('\n'))];
    const images = await stored();
    // A second, third build: the same ID each time, tagged again, nothing new stored.
    await new Promise((r) => setTimeout(r, 1100)); // a new second: a fresh `created` would show
    const second = (await ok(env.root, ['build', '-q', '-t', 'ci-same:2', ctx])).trim();
    expect(second).toBe(first);
    const out = await ok(env.root, ['build', '--progress', 'plain', '-t', 'ci-same:1', ctx]);
    expect(out).not.toMatch(/^running-step$/m); // the RUN did not run again
    expect(out).toMatch(/--> CACHED/);
    expect(await stored()).toEqual(images);
    expect(await ok(env.root, ['images'])).not.toContain('<none>');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'ci-same:2']));
    expect(img.Id).toBe(first);
    // A changed file is a new image, and the metadata steps after it get new times.
    await writeFile(join(ctx, 'hello.txt'), 'changed\n');
    const third = (await ok(env.root, ['build', '-q', ctx])).trim();
    expect(third).not.toBe(first);
  });

  test('SOURCE_DATE_EPOCH builds stay reproducible across the metadata cache', async () => {
    // The WORKDIR's layer is cached from the builds above, made without the epoch: not reused.
    const ctx = await context({ Dockerfile: DOCKERFILE, 'hello.txt': 'epoch\n' });
    const a = (await ok(env.root, ['build', '-q', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } })).trim();
    const b = (await ok(env.root, ['build', '-q', '--no-cache', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } })).trim();
    const c = (await ok(env.root, ['build', '-q', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } })).trim();
    expect([b, c]).toEqual([a, a]);
    const [img] = JSON.parse(await ok(env.root, ['inspect', a]));
    expect(img.Created).toMatch(/^2023-11-14T22:13:20/);
  });

  test('--label, --iidfile and --metadata-file', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nLABEL a=from-dockerfile b=kept\n' });
    const out = await tempDir();
    await ok(env.root, [
      'build',
      '-t',
      'ci-label',
      '--label',
      'a=from-flag',
      '--label',
      'org.opencontainers.image.revision=abc=def',
      '--iidfile',
      join(out, 'iid'),
      '--metadata-file',
      join(out, 'meta.json'),
      ctx,
    ]);
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'ci-label']));
    expect(img.Config.Labels).toEqual({ a: 'from-flag', b: 'kept', 'org.opencontainers.image.revision': 'abc=def' });
    expect(await readFile(join(out, 'iid'), 'utf8')).toBe(img.Id);
    expect(JSON.parse(await readFile(join(out, 'meta.json'), 'utf8'))).toEqual({
      'containerimage.config.digest': img.Id,
      'containerimage.digest': img.Id,
      'image.name': 'ci-label',
    });
    const bad = await tsbuild(env.root, ['build', '--label', 'novalue', ctx]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid --label "novalue": want KEY=VALUE/);
  });

  test('--output type=local and type=tar write the final filesystem; type=image tags', async () => {
    const ctx = await context({
      Dockerfile: 'FROM busybox AS build\nRUN mkdir /out && echo artefact > /out/app.txt\nFROM scratch\nCOPY --from=build /out/ /\n',
    });
    const out = await tempDir();
    await ok(env.root, [
      'build',
      '-o',
      `type=local,dest=${join(out, 'dir')}`,
      '--output',
      `type=tar,dest=${join(out, 'fs.tar')}`,
      '--output',
      'type=image,name=ci-output:1',
      ctx,
    ]);
    expect(await readdir(join(out, 'dir'))).toEqual(['app.txt']);
    expect(await readFile(join(out, 'dir', 'app.txt'), 'utf8')).toBe('artefact\n');
    const listing = await execa('tar', ['-tf', join(out, 'fs.tar')]);
    expect(listing.stdout.split('\n')).toEqual(['app.txt']);
    expect(await ok(env.root, ['images'])).toMatch(/^ci-output +1 /m);
    // -o -: the tar on stdout, the build's messages on stderr.
    const piped = await execa('node', [CLI, 'build', '--root', env.root, '--progress', 'plain', '-o', '-', ctx], {
      encoding: 'buffer',
      reject: false,
      env: { TSBUILD_ROOT: '' },
    });
    expect(piped.exitCode).toBe(0);
    expect(Buffer.from(piped.stderr).toString()).toMatch(/Successfully built/);
    const fromStdout = join(out, 'stdout.tar');
    await writeFile(fromStdout, piped.stdout);
    expect((await execa('tar', ['-tf', fromStdout])).stdout.split('\n')).toEqual(['app.txt']);
    const bad = await tsbuild(env.root, ['build', '-o', 'type=tar', ctx]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/--output type=tar needs dest=FILE/);
  });

  test('--output type=docker|oci,dest=- write the image archive to stdout (load takes it back), type=local,dest=- a tar', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nRUN echo archived > /a.txt\n' });
    const iid = join(await tempDir(), 'iid');
    const piped = async (output: string) => {
      const r = await execa('node', [CLI, 'build', '--root', env.root, '--iidfile', iid, '-t', 'to-stdout:1', '-o', output, ctx], {
        encoding: 'buffer',
        reject: false,
        env: { TSBUILD_ROOT: '' },
      });
      expect(r.exitCode).toBe(0);
      const file = join(await tempDir(), 'out.tar');
      await writeFile(file, r.stdout);
      return { file, stderr: Buffer.from(r.stderr).toString() };
    };
    const docker = await piped('type=docker,dest=-');
    expect(docker.stderr).toContain('Wrote docker archive to stdout');
    const other = await tempRoot();
    try {
      expect(await ok(other.root, ['load', '-i', docker.file])).toBe('Loaded image: to-stdout:1\n');
      const [img] = JSON.parse(await ok(other.root, ['inspect', 'to-stdout:1'])) as [{ Id: string }];
      expect(img.Id).toBe(await readFile(iid, 'utf8'));
    } finally {
      await other.cleanup();
    }
    const oci = await piped('type=oci,dest=-');
    expect((await execa('tar', ['-tf', oci.file])).stdout.split('\n')).toEqual(expect.arrayContaining(['index.json', 'oci-layout']));
    const local = await piped('type=local,dest=-');
    expect((await execa('tar', ['-tf', local.file])).stdout.split('\n')).toContain('a.txt');
    const two = await tsbuild(env.root, ['build', '-o', 'type=docker,dest=-', '-o', '-', ctx]);
    expect(two.exitCode).toBe(2);
    expect(two.stderr).toMatch(/only one --output can go to stdout/);
  });

  describe('--pull', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startRegistry();
    });
    afterAll(async () => registry?.stop());

    test('asks the registry for a base the store already has', async () => {
      const base = `${registry.host}/ci-base:1`;
      // The registry's base says "new"; the store holds an older image under the same name.
      await ok(env.root, ['build', '-t', base, await context({ Dockerfile: 'FROM busybox\nRUN echo new > /version\n' })]);
      await ok(env.root, ['push', base]);
      await ok(env.root, ['build', '-t', base, await context({ Dockerfile: 'FROM busybox\nRUN echo old > /version\n' })]);
      const ctx = await context({ Dockerfile: `FROM ${base}\nRUN cat /version\n` });
      expect(await ok(env.root, ['build', '--progress', 'plain', '--no-cache', ctx])).toMatch(/^old$/m);
      expect(await ok(env.root, ['build', '--progress', 'plain', '--no-cache', '--pull', ctx])).toMatch(/^new$/m);
      // And --pull with no registry behind the name is an error at the FROM line.
      const gone = await context({ Dockerfile: `FROM ${registry.host}/ci-missing:1\n` });
      const r = await tsbuild(env.root, ['build', '--pull', gone]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/Dockerfile:1: base image .*ci-missing:1 could not be pulled \(--pull\)/);
    });
  });
});
