// How long the COPY/ADD cache key of a large context takes: cold (no metadata cache, every file
// read), warm (an unchanged context, cache file on disk, a fresh BuildContext as in a new
// build), and after touching a few files. A report, not a test: numbers depend on the machine.
// Wall time is what a build waits; CPU time (this process, libuv's threads included) is the
// better figure on a busy machine, where wall time mostly measures the other processes.
//
//   node bench/context-checksum.mjs [files=20000] [dirs=200] [largeMiB=64]
//
// The context: `files` small files spread over `dirs` directories, plus `largeMiB` of 4 MiB
// files, where skipping the reads matters most.
//
// It compiles src/ into a temporary directory first (tsc), so dist/ is left alone.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

process.env.UV_THREADPOOL_SIZE ??= '16'; // as cli/main.ts sets it

const repo = fileURLToPath(new URL('..', import.meta.url));
const files = Number(process.argv[2] ?? 20_000);
const dirs = Number(process.argv[3] ?? 200);
const largeMiB = Number(process.argv[4] ?? 64);

const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-'));
try {
  const out = join(work, 'js');
  // The compiled modules resolve packages and module type as they would in the repo.
  await symlink(join(repo, 'node_modules'), join(work, 'node_modules'));
  await writeFile(join(work, 'package.json'), '{"type":"module"}\n');
  execFileSync(
    join(repo, 'node_modules/.bin/tsc'),
    [
      ...['src/builder/checksum.ts', 'src/context/index.ts'].map((f) => join(repo, f)),
      ...['--outDir', out, '--rootDir', repo, '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
      ...['--esModuleInterop', '--skipLibCheck', '--types', 'node'],
    ],
    { cwd: repo, stdio: 'inherit' },
  );
  const { openContext } = await import(pathToFileURL(join(out, 'src/context/index.js')).href);
  const { sourcesChecksum } = await import(pathToFileURL(join(out, 'src/builder/checksum.js')).href);

  const ctxDir = join(work, 'ctx');
  const cacheDir = join(work, 'contexthash');
  for (let d = 0; d < dirs; d++) await mkdir(join(ctxDir, `d${d}`), { recursive: true });
  for (let i = 0; i < files; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, files - i) }, (_, j) =>
        writeFile(join(ctxDir, `d${(i + j) % dirs}`, `f${i + j}.txt`), `file ${i + j}\n`.repeat(20)),
      ),
    );
  }
  await mkdir(join(ctxDir, 'large'));
  for (let i = 0; i < largeMiB / 4; i++) await writeFile(join(ctxDir, 'large', `l${i}.bin`), randomBytes(4 << 20));
  // Files younger than the racy margin are not remembered; wait it out, as real contexts are.
  await new Promise((r) => setTimeout(r, 3_500));

  const time = async (label, opts) => {
    const ctx = await openContext(ctxDir); // a new build: nothing in memory
    const t = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const digest = await sourcesChecksum(ctx, ['.'], opts);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(`${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms wall ${cpuMs.toFixed(0).padStart(6)} ms cpu  ${digest.slice(7, 19)}`);
    return digest;
  };

  console.log(`${files} files in ${dirs} directories + ${largeMiB} MiB in 4 MiB files, ${process.env.UV_THREADPOOL_SIZE} libuv threads`);
  const none = await time('no cache (every file read)', {});
  const cold = await time('cold cache (every file read, cache written)', { cacheDir });
  const { size } = await stat(join(cacheDir, (await readdir(cacheDir))[0]));
  for (let i = 1; i <= 3; i++) await time(`warm cache, unchanged (run ${i})`, { cacheDir });
  for (let i = 0; i < 10; i++) await writeFile(join(ctxDir, `d${i % dirs}`, `f${i}.txt`), `changed ${i}\n`);
  const changed = await time('warm cache, 10 files changed', { cacheDir });
  console.log(
    `cache file: ${(size / 1024).toFixed(0)} KiB; same digest with and without cache: ${none === cold}; changed: ${changed !== cold}`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
