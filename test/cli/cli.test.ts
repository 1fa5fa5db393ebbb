// What a user sees from the CLI itself: help, version, the docker-like tables, the short form;
// and that the bundled CLI (dist/bin) runs the code paths a bundler can break.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { CLI, ok, REPO, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

describe('cli', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox();
  });
  afterAll(async () => env?.cleanup());

  test('--help lists the commands; each command has its own help', async () => {
    const help = await ok(env.root, ['--help']);
    for (const c of ['build', 'images', 'history', 'inspect', 'tag', 'rmi', 'import', 'run', 'info', 'version']) {
      expect(help).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    }
    expect(await ok(env.root, ['build', '--help'])).toMatch(/Usage: {2}tsbuild build \[OPTIONS\] PATH/);
  });

  test('version', async () => {
    expect(await ok(env.root, ['--version'])).toMatch(/^tsbuild version \d+\.\d+\.\d+\n$/);
    expect(await ok(env.root, ['-v'])).toMatch(/^tsbuild version \d+\.\d+\.\d+\n$/);
    // Nobody reading (the pipe's reader closed it first): no stack trace, exit 0.
    const r = await execa('sh', ['-c', '(node "$0" --version; echo "rc=$?" >&2) | (exec 0<&-; sleep 0.3)', CLI], { reject: false });
    expect(r.stderr).toBe('rc=0');
  });

  test('an unknown command or flag is one error and a non-zero exit', async () => {
    const r = await tsbuild(env.root, ['frob']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^Error: unknown command "frob"/);
    const f = await tsbuild(env.root, ['images', '--frob']);
    expect(f.exitCode).not.toBe(0);
    expect(f.stderr).toMatch(/^Error: Unknown option '--frob'/);
  });

  test('a near miss gets a did-you-mean, in one line: commands, flags, instructions, stages', async () => {
    const lines = (r: { stderr: string }) => r.stderr.trimEnd().split('\n');
    expect(lines(await tsbuild(env.root, ['buidl', '.']))).toEqual([
      `Error: unknown command "buidl" for "tsbuild" (did you mean "build"?). Run 'tsbuild --help' for usage.`,
    ]);
    expect(lines(await tsbuild(env.root, ['build', '--no-cahce', '.']))).toEqual([
      `Error: Unknown option '--no-cahce' (did you mean --no-cache?). See 'tsbuild build --help'.`,
    ]);
    // Far from every flag: no guess.
    expect(lines(await tsbuild(env.root, ['images', '--frobnicate']))).toEqual([
      `Error: Unknown option '--frobnicate'. See 'tsbuild images --help'.`,
    ]);
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox AS builder\nCOPPY a /a\n');
    const typo = await tsbuild(env.root, ['build', ctx]);
    expect(lines(typo)).toEqual(['Error: Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)']);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox AS builder\nRUN true\nFROM buidler\n');
    const stage = await tsbuild(env.root, ['build', '--target', 'buidler', ctx]);
    expect(lines(stage)).toEqual(['Error: target stage "buidler" could not be found (did you mean "builder"?)']);
    // A FROM naming an image that is one typo away from a stage: said before the pull's error.
    const from = await tsbuild(env.root, ['build', ctx], { env: { TSBUILD_REGISTRY_TIMEOUT: '1' } });
    expect(lines(from)).toHaveLength(1);
    expect(from.stderr).toMatch(
      /^Error: Dockerfile:3: base image buidler \(did you mean the stage "builder"\?\) is not in the store \(without a registry: tsbuild bootstrap busybox, /,
    );
  });

  test('`tsbuild -t NAME PATH` is short for build; images and history read like docker’s', async () => {
    const out = await ok(env.root, ['-t', 'short:form', '--progress', 'plain', join(REPO, 'testdata/contexts/copy-basic')]);
    expect(out).toMatch(/^STEP 1\/5: FROM busybox$/m);
    expect(out).toMatch(/^STEP 2\/5: COPY a\.txt \/a\.txt$/m);
    expect(out).toMatch(/^Successfully tagged short:form$/m);
    const images = await ok(env.root, ['images']);
    expect(images.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(images).toMatch(/^short\s+form\s+[0-9a-f]{12}\s+.+ ago\s+\d/m);
    const history = (await ok(env.root, ['history', 'short:form'])).trim().split('\n');
    expect(history[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    // newest first: CMD, ENV, COPY dir, COPY a.txt, then busybox's import
    expect(history[1]).toMatch(/^[0-9a-f]{12}\s+.*CMD \["cat","\/a\.txt"\]\s+0B/);
    expect(history[2]).toMatch(/^<missing>\s+.*ENV GREETING=hello\s+0B/);
    expect(history[3]).toMatch(/^<missing>\s+.*COPY dir \/opt\/dir\/ # buildkit\s+(\d+B)/);
    expect(history).toHaveLength(6);
  });

  test('info names the driver and why', async () => {
    const info = await ok(env.root, ['info']);
    expect(info).toMatch(/^Storage driver: overlay2$/m);
    expect(info).toMatch(/Why: .+/);
    expect(info).toContain(`Store root: ${env.root}`);
  });

  test('--root relative to the working directory is the same store: a RUN builds, info names it absolute', async () => {
    // The helper mounts and runs in directories of its own: a relative root must not reach it as such.
    const rel = { cwd: dirname(env.root) };
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a /a\nRUN cat /a > /b\n');
    await writeFile(join(ctx, 'a'), 'relative\n');
    await ok(basename(env.root), ['build', '-q', '-t', 'relative:root', ctx], rel);
    expect(await ok(basename(env.root), ['run', 'relative:root', 'cat', '/b'], rel)).toBe('relative\n');
    expect(await ok(basename(env.root), ['info'], rel)).toContain(`Store root: ${env.root}\n`);
    expect(await ok(env.root, ['images'])).toMatch(/^relative\s+root\s/m);
  });

  test('a RUN writing a file big enough for the crc64 worker thread builds from the bundle', async () => {
    // The worker runs code sent as source text: a bundler that rewrites it breaks only big files.
    const ctx = await mkdtemp(join(tmpdir(), 'tsbuild-cli-big-'));
    try {
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=40 2>/dev/null\n');
      await ok(env.root, ['build', '-q', '-t', 'big:file', ctx]);
      const size = await ok(env.root, ['run', 'big:file', 'stat', '-c', '%s', '/big']);
      expect(size.trim()).toBe(String(40 << 20));
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
  });
});
