// Contexts that are not a local directory, as docker build takes them: a tar or a lone Dockerfile
// on stdin (`-`), a Git repository served by a `git daemon` on 127.0.0.1 (`#ref:subdir`), an
// HTTP tarball; `--build-context` for FROM, COPY --from and RUN --mount from=; and
// `<Dockerfile>.dockerignore` winning over the context's .dockerignore in build and analyze.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { serve, startServer } from '../copy/httpserver.js';
import { freePort } from '../helpers/registry.js';
import { CLI, contextOf, ok, REPO, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

const context = contextOf;

/** `tsbuild build ARGS` with bytes on stdin (the helper's input is text). */
async function buildWithStdin(root: string, args: readonly string[], input: Buffer | string) {
  const r = await execa('node', [CLI, 'build', '--root', root, ...args], { input, reject: false, cwd: REPO, env: { TSBUILD_ROOT: '' } });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The files of an image's filesystem under `dir`, through --output type=local. */
async function filesOf(root: string, args: readonly string[], dir: string): Promise<string[]> {
  const out = join(await tempDir(), 'fs');
  await ok(root, ['build', '-o', `type=local,dest=${out}`, ...args]);
  return (await readdir(join(out, dir))).sort();
}

describe('build contexts', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox();
  });
  afterAll(async () => env?.cleanup());

  test('- reads a tar context from stdin, or a lone Dockerfile', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/sub/a.txt\n', 'sub/a.txt': 'from the tar\n' });
    const tar = (await execa('tar', ['-C', ctx, '-czf', '-', '.'], { encoding: 'buffer' })).stdout as unknown as Buffer;
    const r = await buildWithStdin(env.root, ['--progress', 'plain', '-'], tar);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^from the tar$/m);

    const lone = await buildWithStdin(env.root, ['--progress', 'plain', '-'], 'FROM busybox\nRUN echo lone dockerfile\n');
    expect(lone.exitCode).toBe(0);
    expect(lone.stdout).toMatch(/^lone dockerfile$/m);
    // The context is empty then: COPY finds nothing.
    const empty = await buildWithStdin(env.root, ['-'], 'FROM busybox\nCOPY a.txt /\n');
    expect(empty.exitCode).not.toBe(0);
    expect(empty.stderr).toMatch(/Dockerfile:2: .*a\.txt/);

    const both = await tsbuild(env.root, ['build', '-f', '-', '-'], { input: 'FROM busybox\n' });
    expect(both.exitCode).not.toBe(0);
    expect(both.stderr).toMatch(/cannot both be read from stdin/);
  });

  describe('from a git daemon', () => {
    let daemon: ChildProcess | undefined;
    let base = '';
    let featureCommit = '';
    beforeAll(async () => {
      const git = await execa('git', ['--version'], { reject: false });
      if (git.exitCode !== 0) throw new Error('git is needed for these tests (apt package git)');
      const served = await tempDir('tsbuild-git-');
      const repo = join(served, 'repo');
      const g = (...args: string[]) =>
        execa('git', ['-C', repo, ...args], {
          env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
        });
      await mkdir(join(repo, 'app'), { recursive: true });
      await execa('git', ['init', '-q', '-b', 'main', repo]);
      await writeFile(join(repo, 'app', 'Dockerfile'), 'FROM busybox\nCOPY . /src/\nRUN cat /src/version.txt && ls -a /src\n');
      await writeFile(join(repo, 'app', 'version.txt'), 'main branch\n');
      await writeFile(join(repo, 'Dockerfile'), 'FROM busybox\nCOPY app/version.txt /\nRUN cat /version.txt\n');
      await g('add', '.');
      await g('commit', '-q', '-m', 'main');
      await g('checkout', '-q', '-b', 'feature');
      await writeFile(join(repo, 'app', 'version.txt'), 'feature branch\n');
      await g('commit', '-q', '-am', 'feature');
      featureCommit = (await g('rev-parse', 'HEAD')).stdout.trim();
      await g('checkout', '-q', 'main');
      const port = await freePort();
      daemon = spawn(
        'git',
        ['daemon', '--reuseaddr', '--export-all', `--base-path=${served}`, '--listen=127.0.0.1', `--port=${port}`, served],
        { stdio: 'ignore' },
      );
      base = `git://127.0.0.1:${port}/repo`;
      const deadline = Date.now() + 10_000;
      while (!(await canConnect(port))) {
        if (Date.now() > deadline) throw new Error('git daemon did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    afterAll(() => {
      if (daemon?.pid) process.kill(daemon.pid);
    });

    test('a git URL is the context: #ref picks the branch, :subdir the directory, .git is left out', async () => {
      expect(await ok(env.root, ['build', '--progress', 'plain', base])).toMatch(/^main branch$/m);
      const out = await ok(env.root, ['build', '--progress', 'plain', `${base}#feature:app`]);
      expect(out).toMatch(/^feature branch$/m);
      expect(out).not.toMatch(/^\.git$/m);
      // A commit ID the server does not advertise: the history is fetched, then the commit checked out.
      expect(await ok(env.root, ['build', '--progress', 'plain', '--no-cache', `${base}#${featureCommit}:app`])).toMatch(
        /^feature branch$/m,
      );
      const missing = await tsbuild(env.root, ['build', `${base}#no-such-branch`]);
      expect(missing.exitCode).not.toBe(0);
      expect(missing.stderr.trim().split('\n')).toHaveLength(1);
      expect(missing.stderr).toMatch(/git context .*no-such-branch/);
    });

    test('--build-context NAME=git URL, read by COPY --from', async () => {
      const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY --from=src version.txt /v\nRUN cat /v\n' });
      const out = await ok(env.root, ['build', '--progress', 'plain', '--build-context', `src=${base}#feature:app`, ctx]);
      expect(out).toMatch(/^feature branch$/m);
    });
  });

  test('an HTTP(S) tarball is the context', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\n', 'hello.txt': 'over http\n' });
    const tar = (await execa('tar', ['-C', ctx, '-czf', '-', '.'], { encoding: 'buffer' })).stdout as unknown as Buffer;
    const server = await startServer({ '/ctx.tar.gz': serve(tar) });
    try {
      expect(await ok(env.root, ['build', '--progress', 'plain', `${server.base}/ctx.tar.gz`])).toMatch(/^over http$/m);
      const r = await tsbuild(env.root, ['build', `${server.base}/missing.tar.gz`]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/unable to download the context .*missing\.tar\.gz: 404/);
    } finally {
      await server.close();
    }
  });

  test('--build-context NAME=DIR and NAME=docker-image://REF for FROM, COPY --from and RUN --mount', async () => {
    const extra = await context({ 'file.txt': 'extra context\n', 'hidden.txt': 'x', '.dockerignore': 'hidden.txt\n' });
    const ctx = await context({
      Dockerfile: [
        'FROM base',
        'COPY --from=extra file.txt /copied.txt',
        'RUN --mount=from=extra,target=/x cat /x/file.txt && ! test -e /x/hidden.txt',
        'RUN cat /copied.txt',
        'COPY --from=base /bin/busybox /from-image',
        'RUN --mount=from=base,target=/b test -x /b/bin/busybox && test -x /from-image && echo image context mounted',
        '',
      ].join('\n'),
    });
    const out = await ok(env.root, [
      'build',
      '--progress',
      'plain',
      '--build-context',
      `extra=${extra}`,
      '--build-context',
      'base=docker-image://busybox',
      ctx,
    ]);
    expect(out.match(/^extra context$/gm)).toHaveLength(2);
    expect(out).toMatch(/^image context mounted$/m);
    const bad = await tsbuild(env.root, ['build', '--build-context', 'x=s3://bucket/ctx', ctx]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/unsupported --build-context x=s3:/);
  });

  test('--build-context NAME=oci-layout://DIR: the image of the layout stands in for NAME, untagged', async () => {
    await ok(env.root, ['build', '-t', 'oci-src', await context({ Dockerfile: 'FROM busybox\nRUN echo from the layout > /origin\n' })]);
    const dir = await tempDir();
    await ok(env.root, ['save', '--format', 'oci', '-o', join(dir, 'img.tar'), 'oci-src']);
    await ok(env.root, ['rmi', 'oci-src']);
    const layout = join(dir, 'layout');
    await mkdir(layout);
    await execa('tar', ['-C', layout, '-xf', join(dir, 'img.tar')]);
    const ctx = await context({ Dockerfile: 'FROM base\nRUN cat /origin\n' });
    const out = await ok(env.root, ['build', '--progress', 'plain', '--build-context', `base=oci-layout://${layout}`, ctx]);
    expect(out).toMatch(/^from the layout$/m);
    expect(await ok(env.root, ['images'])).not.toMatch(/^oci-src /m);
    const missing = await tsbuild(env.root, ['build', '--build-context', `base=oci-layout://${dir}/nowhere`, ctx]);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/oci-layout:\/\/.*nowhere: not a directory/);
  });

  test('--build-context NAME=oci-layout://DIR:TAG and DIR@DIGEST pick one image of several', async () => {
    await ok(env.root, ['build', '-t', 'pick-a:one', await context({ Dockerfile: 'FROM busybox\nRUN echo image one > /which\n' })]);
    await ok(env.root, ['build', '-t', 'pick-b:two', await context({ Dockerfile: 'FROM busybox\nRUN echo image two > /which\n' })]);
    const dir = await tempDir();
    await ok(env.root, ['save', '--format', 'oci', '-o', join(dir, 'two.tar'), 'pick-a:one', 'pick-b:two']);
    const layout = join(dir, 'layout');
    await mkdir(layout);
    await execa('tar', ['-C', layout, '-xf', join(dir, 'two.tar')]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const ctx = await context({ Dockerfile: 'FROM base\nRUN cat /which\n' });
    const build = (value: string) => tsbuild(env.root, ['build', '--progress', 'plain', '--build-context', `base=${value}`, ctx]);
    expect((await build(`oci-layout://${layout}:two`)).stdout).toMatch(/^image two$/m);
    expect((await build(`oci-layout://${layout}@${index.manifests[0]!.digest}`)).stdout).toMatch(/^image one$/m);
    const both = await build(`oci-layout://${layout}`);
    expect(both.exitCode).toBe(1);
    expect(both.stderr).toMatch(/holds 2 images: name one as oci-layout:\/\/DIR:TAG or oci-layout:\/\/DIR@DIGEST\n$/);
    const none = await build(`oci-layout://${layout}:three`);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/:three: no such image in the layout \(its tags: one, two\)\n$/);
  });

  test('FROM a --build-context directory starts from its files', async () => {
    const files = await context({ 'data.txt': 'data\n', 'secret.txt': 's', '.dockerignore': 'secret.txt\n' });
    const ctx = await context({
      Dockerfile: 'FROM busybox AS tools\nFROM files\nCOPY --from=tools /bin/busybox /bin/cat\nRUN ["/bin/cat", "/data.txt"]\n',
    });
    const out = await ok(env.root, ['build', '--progress', 'plain', '--build-context', `files=${files}`, '-t', 'from-files', ctx]);
    expect(out).toMatch(/^data$/m);
    expect(await filesOf(env.root, ['--build-context', `files=${files}`, ctx], '.')).toEqual(['.dockerignore', 'bin', 'data.txt']);
    // The context's layer is cached like a COPY's: the same files, the same image.
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'from-files']));
    const again = await ok(env.root, ['build', '-q', '--build-context', `files=${files}`, ctx]);
    expect(again.trim()).toBe(img.Id);
  });

  test('a --build-context named like a stage replaces the stage', async () => {
    const deps = await context({ 'dep.txt': 'from the context\n' });
    const ctx = await context({
      Dockerfile: 'FROM busybox AS deps\nRUN echo from the stage > /dep.txt\nFROM busybox\nCOPY --from=deps /dep.txt /\nRUN cat /dep.txt\n',
    });
    const out = await ok(env.root, ['build', '--progress', 'plain', '--build-context', `deps=${deps}`, ctx]);
    expect(out).toMatch(/^from the context$/m);
    expect(out).not.toMatch(/echo from the stage/); // the replaced stage is not built
    expect(await ok(env.root, ['build', '--progress', 'plain', ctx])).toMatch(/^from the stage$/m);
  });

  test('<Dockerfile>.dockerignore wins over .dockerignore, in build and in analyze', async () => {
    const ctx = await context({ 'keep.txt': 'k', 'secret.txt': 's', 'big.bin': 'b'.repeat(11_000_000), '.dockerignore': 'keep.txt\n' });
    // The Dockerfile lives outside the context, with its own ignore file beside it.
    const dfDir = await context({
      'app.Dockerfile': 'FROM busybox\nCOPY . /ctx/\n',
      'app.Dockerfile.dockerignore': 'secret.txt\nbig.bin\n',
    });
    const args = ['-t', 'ignore-per-dockerfile', '-f', join(dfDir, 'app.Dockerfile'), ctx];
    expect(await filesOf(env.root, args, 'ctx')).toEqual(['.dockerignore', 'keep.txt']);
    const a = JSON.parse(await ok(env.root, ['analyze', '--json', 'ignore-per-dockerfile']));
    expect(a.hints.filter((h: { kind: string }) => h.kind === 'unused-context-file')).toEqual([]);
    // Without it, the context's .dockerignore applies.
    const plain = await context({
      Dockerfile: 'FROM busybox\nCOPY . /ctx/\n',
      'keep.txt': 'k',
      'secret.txt': 's',
      '.dockerignore': 'keep.txt\n',
    });
    expect(await filesOf(env.root, [plain], 'ctx')).toEqual(['.dockerignore', 'Dockerfile', 'secret.txt']);
  });
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
