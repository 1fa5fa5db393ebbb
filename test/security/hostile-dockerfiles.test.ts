// Hostile Dockerfiles and contexts through `tsbuild build`: each gives one clear error line with
// its Dockerfile line (or builds, where Docker builds), a non-zero exit, no crash, no hang (jest's
// timeout bounds every case), no mount left and no image made.
import { copyFile, chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, mountsBelow, busyboxStore, tempDir, tsbuild } from '../helpers/tsbuild.js';

const env = busyboxStore();
afterEach(async () => {
  expect(await mountsBelow(env.root)).toEqual([]);
});

async function context(dockerfile: string | Buffer, files: Record<string, string> = {}): Promise<string> {
  const ctx = await tempDir();
  env.removeLater(ctx);
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(ctx, name, '..'), { recursive: true });
    await writeFile(join(ctx, name), content);
  }
  return ctx;
}

async function build(ctx: string, tag = 'hostile') {
  return tsbuild(env.root, ['build', '-t', tag, '--progress', 'plain', ctx]);
}

/** The one error line; the failed build made no image. */
async function refused(r: { exitCode: number; stderr: string }, pattern: RegExp, tag = 'hostile'): Promise<string> {
  expect(r.exitCode).not.toBe(0);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect((await tsbuild(env.root, ['inspect', tag])).exitCode).not.toBe(0);
  return errors[0]!;
}

describe('hostile Dockerfiles', () => {
  test('a binary file named Dockerfile: one short, printable line', async () => {
    const ctx = await context('');
    await copyFile('/bin/busybox', join(ctx, 'Dockerfile'));
    const line = await refused(await build(ctx), /^Error: Dockerfile:1: unknown instruction: \\x7fELF/);
    expect(line.length).toBeLessThan(200);
    // eslint-disable-next-line no-control-regex
    expect(line).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });

  test('a line of 1 MB of garbage: one line naming it, not a megabyte of error', async () => {
    const line = await refused(
      await build(await context(`FROM busybox\n${'x'.repeat(1 << 20)}\n`)),
      /^Error: Dockerfile:2: unknown instruction: x+\.\.\.$/,
    );
    expect(line.length).toBeLessThan(200);
  });

  test('an instruction of 1 MB builds, as in Docker', async () => {
    const r = await build(await context(`FROM busybox\nLABEL big=${'x'.repeat(1 << 20)}\nRUN test -d /\n`), 'big-line');
    expect(r.exitCode).toBe(0);
    const inspect = JSON.parse((await tsbuild(env.root, ['inspect', 'big-line'])).stdout) as {
      Config: { Labels: Record<string, string> };
    }[];
    expect(inspect[0]!.Config.Labels.big).toHaveLength(1 << 20);
  }, 120_000);

  test('10,000 instructions build (bounded by the test timeout only)', async () => {
    // Every ENV refers to the one two lines up, so each step expands against a growing config.
    const lines = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? `LABEL l${i}=v${i}` : `ENV E${i}=\${E${i - 2}:-start}.`));
    const r = await build(await context(`FROM busybox\n${lines.join('\n')}\n`), 'many');
    expect(r.exitCode).toBe(0);
    const inspect = JSON.parse((await tsbuild(env.root, ['inspect', 'many'])).stdout) as {
      Config: { Labels: Record<string, string>; Env: string[] };
    }[];
    expect(Object.keys(inspect[0]!.Config.Labels)).toHaveLength(5_000);
    // E0 reads `${E-2:-start}`: variable E with the default `2:-start`, as BuildKit reads it.
    expect(inspect[0]!.Config.Env).toContain(`E9998=2:-start${'.'.repeat(5_000)}`);
  }, 300_000);

  test('self-referring and undefined variables expand once, to the earlier value or empty', async () => {
    const r = await build(
      await context('FROM busybox\nENV A=$A:x\nENV A=${A}${UNDEFINED}y B=$B$B\nRUN echo "[$A][$B]" > /out && cat /out\n'),
      'vars',
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout + r.stderr).toContain('[:xy][]');
  }, 60_000);

  test('a required variable that is unset: its message, at its line', async () => {
    await refused(
      await build(await context('FROM busybox\n\nWORKDIR ${NOPE:?must be set}\n')),
      /^Error: Dockerfile:3: failed to process "\$\{NOPE:\?must be set\}": NOPE: must be set$/,
    );
  });

  test('an unterminated variable: refused before anything runs', async () => {
    await refused(
      await build(await context('FROM busybox\nRUN touch /ran\nCOPY ${A /x\n')),
      /^Error: Dockerfile:3: failed to process "\$\{A": syntax error: missing '\}'$/,
    );
  });

  test('a NUL byte in RUN: refused at its line, not an exec failure', async () => {
    await refused(await build(await context('FROM busybox\nRUN echo a\0b\n')), /^Error: Dockerfile:2: RUN contains a NUL byte$/);
  });

  test('invalid UTF-8 is kept as Go keeps it: replaced by U+FFFD in the image config', async () => {
    const r = await build(
      await context(Buffer.concat([Buffer.from('FROM busybox\nLABEL a='), Buffer.from([0xff, 0xfe]), Buffer.from('z\n')])),
      'utf8',
    );
    expect(r.exitCode).toBe(0);
    const inspect = JSON.parse((await tsbuild(env.root, ['inspect', 'utf8'])).stdout) as { Config: { Labels: Record<string, string> } }[];
    expect(inspect[0]!.Config.Labels.a).toBe('\ufffd\ufffdz');
  });
});

describe('hostile contexts', () => {
  test('COPY of a symlink that leads out of the context: refused, naming it', async () => {
    const ctx = await context('FROM busybox\nCOPY escape /x\n');
    await symlink('/etc/passwd', join(ctx, 'escape'));
    const abs = await refused(await build(ctx), /^Error: Dockerfile:2: .*escape/);
    expect(abs).not.toContain('root:x:0:0');
    const ctx2 = await context('FROM busybox\nCOPY up /x\n');
    await symlink('../../..', join(ctx2, 'up'));
    await refused(await build(ctx2), /^Error: Dockerfile:2: .*up/);
  });

  test('COPY of a directory holding such a symlink copies the link itself, as Docker does', async () => {
    const ctx = await context('FROM busybox\nCOPY dir /dir\nRUN readlink /dir/escape && test ! -e /dir/escape/passwd-copy\n', {
      'dir/file': 'x',
    });
    await symlink('/etc', join(ctx, 'dir', 'escape'));
    const r = await build(ctx, 'links');
    expect(r.exitCode).toBe(0);
    expect(r.stdout + r.stderr).toContain('/etc\n');
  }, 60_000);

  test('a file root cannot read (no CAP_DAC_OVERRIDE): one line naming the file and the Dockerfile line', async () => {
    const ctx = await context('FROM busybox\nCOPY secret /secret\n', { secret: 'hidden' });
    await chmod(join(ctx, 'secret'), 0);
    // setpriv (util-linux) drops the capabilities that let root read anything.
    const r = await execa(
      'setpriv',
      [
        '--bounding-set',
        '-dac_override,-dac_read_search',
        '--inh-caps',
        '-all',
        'node',
        CLI,
        'build',
        '--root',
        env.root,
        '-t',
        'hostile',
        ctx,
      ],
      {
        reject: false,
      },
    );
    await refused(
      { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) },
      /^Error: Dockerfile:2: COPY failed: .*permission denied.*secret/i,
    );
  });

  test('a symlink loop in the context: one line', async () => {
    const ctx = await context('FROM busybox\nCOPY loop /x\n');
    await symlink('loop', join(ctx, 'loop'));
    await refused(await build(ctx), /^Error: Dockerfile:2: .*(loop|too many)/i);
  });
});
