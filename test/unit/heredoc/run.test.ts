// What a RUN with heredocs executes, from the Dockerfile text to the argv (and the files
// mounted at /dev/pipes), for the cases of moby/buildkit's dockerfile_heredoc_test.go. The
// argv is then run by the host's /bin/sh, to check that the script does what BuildKit's does.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heredocRun, inlineFilesKey, PIPES_DIR, writePipes, type HeredocRun } from '../../../src/builder/heredoc.js';
import { parseDockerfile, type RunStep } from '../../../src/parse/index.js';

const SH = ['/bin/sh', '-c'];

/** The single RUN of `body` turned into what runs, with SHELL `shell`. */
function planRun(body: string, shell: readonly string[] = SH): HeredocRun {
  const steps = parseDockerfile(`FROM busybox\n${body}`).stages[0]?.steps ?? [];
  const run = steps.find((s): s is RunStep => s.kind === 'RUN');
  if (run?.cmd.form !== 'shell') throw new Error('expected a shell-form RUN');
  return heredocRun({ shell, command: run.cmd.command, heredocs: run.heredocs ?? [] });
}

/** Runs argv on the host in `cwd`; what the script wrote to stdout. */
function execute(argv: readonly string[], cwd: string): string {
  return execFileSync(argv[0] as string, argv.slice(1), { cwd, encoding: 'utf8' });
}

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-heredoc-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('argv, as dispatchRun builds it', () => {
  const cases: ReadonlyArray<readonly [string, string, HeredocRun]> = [
    ['no heredoc: the command as usual', 'RUN echo "<<EOF"', { argv: [...SH, 'echo "<<EOF"'] }],
    [
      'one heredoc: its body is the script',
      'RUN <<EOF\necho "i am" >> /dest\nwhoami >> /dest\nEOF',
      { argv: [...SH, 'echo "i am" >> /dest\nwhoami >> /dest\n'], summary: 'echo "i am" >> /dest...' },
    ],
    [
      'quoted or not, a RUN body is not expanded by the builder',
      'RUN <<EOF\necho "${greeting} ${name}!"\nEOF',
      { argv: [...SH, 'echo "${greeting} ${name}!"\n'], summary: 'echo "${greeting} ${name}!"' },
    ],
    [
      '<<- strips the tabs before the shell sees the script',
      'RUN <<-EOF\necho "\n\tbar" > /dest/bar-run\nEOF',
      { argv: [...SH, 'echo "\nbar" > /dest/bar-run\n'], summary: 'echo "...' },
    ],
    ['a descriptor on a lone heredoc changes nothing', 'RUN 3<<EOF\ntrue\nEOF', { argv: [...SH, 'true\n'], summary: 'true' }],
    ['an empty heredoc is an empty script', 'RUN <<EOF\nEOF', { argv: [...SH, ''], summary: '' }],
    [
      'a command with a heredoc: the shell gets the line, the body and the delimiter',
      "RUN python3 <<'EOF'\nprint('hi')\nEOF",
      { argv: [...SH, "python3 <<'EOF'\nprint('hi')\nEOF"] },
    ],
    [
      'several heredocs, in order; `<<-` bodies are left to the shell',
      'RUN <<EOF 3<<IN1 4<<-IN2 awk -f -\nBEGIN {}\nEOF\nhello\nIN1\n\tHELLO\n\tIN2',
      { argv: [...SH, '<<EOF 3<<IN1 4<<-IN2 awk -f -\nBEGIN {}\nEOF\nhello\nIN1\n\tHELLO\nIN2'] },
    ],
  ];
  test.each(cases)('%s', (_, body, expected) => {
    expect(planRun(body)).toEqual(expected);
  });

  test('a shebang script is mounted at /dev/pipes and run by path through the shell', () => {
    const plan = planRun('RUN <<-EOF\n\t#!/bin/awk -f\n\tBEGIN {\n\t\tprint "hello"\n\t}\nEOF');
    expect(plan).toEqual({
      argv: [...SH, '/dev/pipes/EOF'],
      pipes: [{ name: 'EOF', content: Buffer.from('#!/bin/awk -f\nBEGIN {\nprint "hello"\n}\n'), mode: 0o755 }],
      summary: '#!/bin/awk -f...',
    });
    expect(PIPES_DIR).toBe('/dev/pipes');
  });

  test('SHELL applies: with SHELL ["/bin/awk"] the body is an awk program', () => {
    expect(planRun('SHELL ["/bin/awk"]\nRUN <<EOF\nBEGIN {\n\tprint "foo" > "/dest"\n}\nEOF', ['/bin/awk'])).toEqual({
      argv: ['/bin/awk', 'BEGIN {\n\tprint "foo" > "/dest"\n}\n'],
      summary: 'BEGIN {...',
    });
  });

  test('a shebang delimiter that is a path cannot become a file', () => {
    expect(() => planRun('RUN <<a/b\n#!/bin/sh\na/b')).toThrow('heredoc "a/b" cannot be made into a file');
  });

  test('the script is part of the cache key', () => {
    const a = planRun('RUN <<EOF\n#!/bin/sh\necho a\nEOF').pipes ?? [];
    const b = planRun('RUN <<EOF\n#!/bin/sh\necho b\nEOF').pipes ?? [];
    expect(inlineFilesKey(a)).not.toBe(inlineFilesKey(b));
    expect(inlineFilesKey(a)).toBe(inlineFilesKey(planRun('RUN <<EOF\n#!/bin/sh\necho a\nEOF').pipes ?? []));
  });
});

describe('the argv does what BuildKit does (run by the host shell)', () => {
  test.each([
    ['RUN <<EOF\necho "i am"\necho there\nEOF', 'i am\nthere\n'],
    ['RUN <<EOF\necho "\n\tfoo"\nEOF', '\n\tfoo\n'],
    ['RUN <<-EOF\necho "\n\tbar"\nEOF', '\nbar\n'],
    ['RUN <<EOF sh\necho "\n\tfoo"\nEOF', '\n\tfoo\n'],
    ['RUN <<-EOF sh\necho "\n\tbar"\nEOF', '\nbar\n'],
    ['RUN <<EOF\ngreeting="Hello"\nname=world\necho "${greeting} ${name}!"\nEOF', 'Hello world!\n'],
    ["RUN cat <<'EOF'\n$HOME\nEOF", '$HOME\n'],
    [
      "RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]'; \\\n\tcat <<EOF2 | tr '[:lower:]' '[:upper:]'\nhello WORLD\nEOF1\nHELLO world\nEOF2",
      'hello world\nHELLO WORLD\n',
    ],
    [
      'RUN <<EOF 3<<IN1 4<<IN2 awk -f -\nBEGIN {\n\twhile ((getline line < "/proc/self/fd/3") > 0) print tolower(line)\n\twhile ((getline line < "/proc/self/fd/4") > 0) print toupper(line)\n}\nEOF\nhello WORLD\nIN1\nHELLO world\nIN2',
      'hello world\nHELLO WORLD\n',
    ],
  ])('%j', (body, output) => {
    expect(execute(planRun(body).argv, work)).toBe(output);
  });

  test('a shebang script written by writePipes runs with its interpreter', async () => {
    const plan = planRun('RUN <<EOF\n#!/usr/bin/awk -f\nBEGIN {\n\tprint "hello"\n\tprint "world"\n}\nEOF');
    const pipes = join(work, 'pipes');
    await mkdir(pipes, { mode: 0o700 });
    await writePipes(pipes, plan.pipes ?? []);
    expect((await stat(pipes)).mode & 0o777).toBe(0o755);
    const script = join(pipes, 'EOF');
    expect((await stat(script)).mode & 0o777).toBe(0o755);
    expect(await readFile(script, 'utf8')).toBe('#!/usr/bin/awk -f\nBEGIN {\n\tprint "hello"\n\tprint "world"\n}\n');
    // What the step runs, with the mount's path swapped for where the test wrote it.
    const argv = plan.argv.map((arg) => arg.replace(PIPES_DIR, pipes));
    expect(execute(argv, work)).toBe('hello\nworld\n');
  });
});
