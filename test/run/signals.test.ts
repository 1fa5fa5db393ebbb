// Ctrl-C during a RUN: the step's processes die, its half-made layer goes, nothing stays
// mounted, and tsbuild exits 130 (143 for SIGTERM).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { CLI, mountsBelow, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';

/** PIDs of host processes whose command line contains `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) out.push(Number(pid));
  }
  return out;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

describe.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('%s during RUN', (signal, code) => {
  test(`ends the step, removes its layer, unmounts, exits ${code}`, async () => {
    const env = await rootWithBusybox('overlay2');
    try {
      const marker = `tsbuild-signal-${randomBytes(4).toString('hex')}`;
      const ctx = await tempDir();
      // A background child and a foreground one: both must die with the step.
      // `sh -c '...; true' NAME` keeps a shell whose command line carries the marker.
      const sleeper = `sh -c 'sleep 1000; true' ${marker}`;
      await writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nRUN touch /half-made && (${sleeper} &) && ${sleeper}\n`);
      const layersBefore = await readdir(join(env.root, 'overlay2'));
      const layerdb = join(env.root, 'image', 'overlay2', 'layerdb');
      const recordsBefore = await readdir(join(layerdb, 'sha256'));
      const build = execa('node', [CLI, 'build', '--root', env.root, '--progress', 'plain', ctx], { reject: false, all: true });
      await waitFor(async () => (await processesWith(marker)).length >= 2, 30_000);
      build.kill(signal);
      const r = await build;
      expect(r.exitCode).toBe(code);
      expect(r.all).toMatch(/build interrupted/);
      await waitFor(async () => (await processesWith(marker)).length === 0, 5_000);
      expect(await mountsBelow(env.root)).toEqual([]);
      expect((await readdir(join(env.root, 'overlay2'))).sort()).toEqual(layersBefore.sort());
      // No layer record was published, and no half-assembled one is left.
      expect((await readdir(join(layerdb, 'sha256'))).sort()).toEqual(recordsBefore.sort());
      expect(await readdir(join(layerdb, 'tmp')).catch(() => [])).toEqual([]);
      // The step's files are removed by a remover that outlives tsbuild (native/helper/reap.c):
      // it holds them in tmp/ under its lease until it is done.
      for (const n of await readdir(join(env.root, 'tmp')).catch(() => [])) expect(n).toMatch(/^removing-\d+-\d+$/);
      const empty = async (dir: string) => (await readdir(join(env.root, dir)).catch(() => [])).length === 0;
      await waitFor(async () => (await empty('tmp')) && (await empty('leases')), 10_000);
    } finally {
      await env.cleanup();
    }
  }, 120_000);
});
