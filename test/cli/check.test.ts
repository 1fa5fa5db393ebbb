// `tsbuild build --check` as a user runs it: as `nobody`, with no store, with a context it could
// not read as a whole; docker build --check's report on stdout, errors on stderr, and its exit
// codes (warnings 0; errors and violations under error=true 1).
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, REPO, tempDir } from '../helpers/tsbuild.js';

interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `tsbuild build --check ARGS` as the user nobody (setpriv, from util-linux). */
async function checkAsNobody(args: readonly string[], store: string): Promise<Run> {
  const setpriv = await execa('setpriv', ['--version'], { reject: false });
  if (setpriv.exitCode !== 0) throw new Error('setpriv is missing: install the apt package util-linux');
  const r = await execa(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', CLI, 'build', '--root', store, '--check', ...args],
    {
      reject: false,
      stripFinalNewline: false,
      cwd: REPO,
      env: { TSBUILD_ROOT: '', HOME: '/nonexistent' },
      stdin: 'ignore',
    },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A context that nobody can read the Dockerfile and ignore file of, and nothing else. */
async function context(dockerfile: string, ignore = 'secret.txt\n'): Promise<{ dir: string; store: string }> {
  const dir = await tempDir('tsbuild-check-');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, '.dockerignore'), ignore);
  // A directory nobody cannot read: a build's context scan would fail on it; the check never looks.
  await mkdir(join(dir, 'private'), { mode: 0o700 });
  await writeFile(join(dir, 'private', 'data'), 'x');
  await chmod(dir, 0o755);
  return { dir, store: join(dir, 'store') };
}

test('warnings are reported as docker build --check does, exit 0, without a store', async () => {
  const { dir, store } = await context(
    'FROM alpine:3.20 as build\nCOPY secret.txt private /x/\nRUN echo hi\nFROM scratch\nCOPY --from=build /x /x\n',
  );
  const r = await checkAsNobody([dir], store);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe(
    [
      'Check complete, 2 warnings have been found!',
      '',
      'WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/',
      "'as' and 'FROM' keywords' casing do not match",
      'Dockerfile:1',
      '--------------------',
      '   1 | >>> FROM alpine:3.20 as build',
      '   2 |     COPY secret.txt private /x/',
      '   3 |     RUN echo hi',
      '--------------------',
      '',
      'WARNING: CopyIgnoredFile - https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/',
      'Attempting to Copy file "secret.txt" that is excluded by .dockerignore',
      'Dockerfile:2',
      '--------------------',
      '   1 |     FROM alpine:3.20 as build',
      '   2 | >>> COPY secret.txt private /x/',
      '   3 |     RUN echo hi',
      '   4 |     FROM scratch',
      '--------------------',
      '',
    ].join('\n'),
  );
  await expect(access(store)).rejects.toThrow(/ENOENT/);
});

test('an instruction of several lines is shown whole', async () => {
  const { dir, store } = await context('FROM alpine AS build\nRUN echo a && \\\n\n    echo b\n');
  const r = await checkAsNobody([dir], store);
  expect(r.stdout).toBe(
    [
      'Check complete, 1 warning has been found!',
      '',
      'WARNING: NoEmptyContinuation - https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
      'Empty continuation line',
      'Dockerfile:2',
      '--------------------',
      '   1 |     FROM alpine AS build',
      '   2 | >>> RUN echo a && \\',
      '   3 | >>> ',
      '   4 | >>>     echo b',
      '   5 |     ',
      '--------------------',
      '',
    ].join('\n'),
  );
  expect(r.exitCode).toBe(0);
});

test('a clean Dockerfile: no warnings, exit 0', async () => {
  const { dir, store } = await context('FROM scratch\nCOPY a /a\nCMD ["/a"]\n');
  const r = await checkAsNobody([dir], store);
  expect([r.exitCode, r.stdout, r.stderr]).toEqual([0, 'Check complete, no warnings found.\n', '']);
});

test('error=true turns the warnings into a failure naming the rules', async () => {
  const { dir, store } = await context('# check=error=true\nFROM alpine as build\nMAINTAINER me\n');
  const r = await checkAsNobody([dir], store);
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toMatch(/^Check complete, 2 warnings have been found!\n/);
  expect(r.stderr).toBe('Error: lint violation found for rules: FromAsCasing, MaintainerDeprecated\n');
  const skipped = await checkAsNobody(['--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=all', dir], store);
  expect([skipped.exitCode, skipped.stdout]).toEqual([0, 'Check complete, no warnings found.\n']);
});

test('what tsbuild could not build is one error line with its Dockerfile line, exit 1', async () => {
  const { dir, store } = await context('FROM alpine\nCOPY --from=2 /a /b\n');
  const r = await checkAsNobody([dir], store);
  expect([r.exitCode, r.stdout, r.stderr]).toEqual([1, '', 'Error: Dockerfile:2: invalid from flag value 2: index out of bounds\n']);
  const valid = await context('FROM alpine AS build\n');
  const target = await checkAsNobody(['--target', 'nope', valid.dir], valid.store);
  expect([target.exitCode, target.stderr]).toEqual([1, 'Error: target stage "nope" could not be found\n']);
});
