// testdata/dockerfiles/heredoc: its steps, carried out on the host with this module's recipes
// (COPY: the heredoc files written to the destination; RUN: the argv run by the host's shell,
// /dest and /dev/pipes moved into a temporary directory), give exactly expected/. This checks
// the recipes and the expected files that an end-to-end build is compared against.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyHeredocFiles, heredocRun, PIPES_DIR, writePipes } from '../../../src/builder/heredoc.js';
import { expandWord, parseDockerfile } from '../../../src/parse/index.js';

const DIR = join(process.cwd(), 'testdata/dockerfiles/heredoc');

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), `${path}/`)));
    else out.push(path);
  }
  return out.sort();
}

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-heredoc-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

test('the heredoc Dockerfile, step by step, gives expected/', async () => {
  const plan = parseDockerfile(await readFile(join(DIR, 'Dockerfile'), 'utf8'));
  expect(plan.syntax).toBe('docker/dockerfile:1');
  expect(plan.warnings).toBeUndefined();

  const dest = join(work, 'dest');
  const pipes = join(work, 'pipes');
  const env = new Map<string, string>();
  let shell = ['/bin/sh', '-c'];
  const onHost = (arg: string): string => arg.replaceAll('/dest', dest).replaceAll(PIPES_DIR, pipes);

  for (const step of plan.stages[0]?.steps ?? []) {
    switch (step.kind) {
      case 'ARG':
        for (const arg of step.args) env.set(arg.name, expandWord(arg.default ?? '', env));
        break;
      case 'WORKDIR':
        await mkdir(dest, { recursive: true });
        break;
      case 'SHELL':
        shell = [...step.argv];
        break;
      case 'COPY':
        expect(step.sources).toEqual([]);
        for (const file of copyHeredocFiles(step.heredocs ?? [], env)) {
          const target = step.dest.endsWith('/') ? join(dest, step.dest, file.name) : join(dest, step.dest);
          await mkdir(join(target, '..'), { recursive: true });
          await writeFile(target, file.content);
          await chmod(target, step.chmod === undefined ? file.mode : parseInt(step.chmod, 8));
        }
        break;
      case 'RUN': {
        if (step.cmd.form !== 'shell') throw new Error('shell form expected');
        const run = heredocRun({ shell, command: step.cmd.command, heredocs: step.heredocs ?? [] });
        if (run.pipes) {
          await rm(pipes, { recursive: true, force: true });
          await mkdir(pipes);
          await writePipes(
            pipes,
            run.pipes.map((f) => ({ ...f, content: Buffer.from(onHost(f.content.toString())) })),
          );
        }
        const argv = run.argv.map(onHost);
        execFileSync(argv[0] as string, argv.slice(1), { cwd: dest, env: { ...process.env, ...Object.fromEntries(env) } });
        break;
      }
      default:
        throw new Error(`unexpected ${step.kind}`);
    }
  }

  const expected = join(DIR, 'expected');
  const names = await listFiles(expected);
  expect(await listFiles(dest)).toEqual(names);
  for (const name of names) {
    // `id -u` says who ran the step: root in a build, whoever runs the tests here.
    const want = name === 'basic' ? `i am\n${process.getuid?.() ?? 0}\n` : await readFile(join(expected, name), 'utf8');
    expect([name, await readFile(join(dest, name), 'utf8')]).toEqual([name, want]);
    // Git keeps only the executable bit: 0755 or 0644.
    const mode = (await stat(join(expected, name))).mode & 0o100 ? 0o755 : 0o644;
    expect([name, (await stat(join(dest, name))).mode & 0o777]).toEqual([name, mode]);
  }
});
