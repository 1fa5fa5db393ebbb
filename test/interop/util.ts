// What the interop tests share: an image built by tsbuild with RUN steps (a file made, a file
// deleted), shell pipelines between tsbuild and a peer, and reading the archives they exchange.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, ok } from '../helpers/tsbuild.js';

/** The test image: busybox plus two RUN layers, one file deleted again, one ENV step. */
export const TEST_DOCKERFILE = [
  'FROM busybox',
  'RUN echo made-by-run > /run-file && echo doomed > /gone',
  'ENV GREETING=hello',
  'RUN rm /gone && mkdir -p /d && echo second > /d/f',
  'CMD ["/bin/sh"]',
  '',
].join('\n');

export interface BuiltImage {
  readonly ref: string;
  readonly id: string;
  /** diffIDs, bottom first. */
  readonly layers: readonly string[];
}

/** Temporary directories under os.tmpdir(), all removed by cleanup(). */
export interface Scratch {
  dir(prefix?: string): Promise<string>;
  cleanup(): Promise<void>;
}

export function scratch(): Scratch {
  const dirs: string[] = [];
  return {
    async dir(prefix = 'tsbuild-interop-') {
      const d = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    async cleanup() {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

export async function buildTestImage(root: string, ref: string, tmp: Scratch, dockerfile = TEST_DOCKERFILE): Promise<BuiltImage> {
  const ctx = await tmp.dir('tsbuild-interop-ctx-');
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  await ok(root, ['build', '-q', '-t', ref, ctx]);
  return inspectImage(root, ref);
}

export async function inspectImage(root: string, ref: string): Promise<BuiltImage> {
  const [img] = JSON.parse(await ok(root, ['inspect', ref])) as { Id: string; RootFS: { Layers: string[] } }[];
  return { ref, id: img!.Id, layers: img!.RootFS.Layers };
}

/** Single-quotes a word for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `tsbuild ARGS` as a shell word list, with --root after the command name. */
export function tsbuildCmd(root: string, args: readonly string[]): string {
  return ['node', q(CLI), q(args[0]!), '--root', q(root), ...args.slice(1).map(q)].join(' ');
}

/** Runs a bash pipeline with pipefail; fails with its output when any part fails. */
export async function pipeline(script: string, env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const r = await execa('bash', ['-o', 'pipefail', '-c', script], {
    reject: false,
    stripFinalNewline: false,
    env: { ...env, TSBUILD_ROOT: '' },
  });
  if (r.exitCode !== 0) throw new Error(`${script}\nexited ${r.exitCode}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Names of the entries of a tar file, in order (GNU tar's listing). */
export async function tarNames(file: string): Promise<string[]> {
  const r = await execa('tar', ['-tf', file]);
  return String(r.stdout)
    .split('\n')
    .filter((l) => l !== '');
}

/** Names of the symlink entries of a tar file (GNU tar's verbose listing: `l` in the mode column). */
export async function tarSymlinks(file: string): Promise<string[]> {
  const r = await execa('tar', ['-tvf', file]);
  return String(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('l'))
    .map((l) => l.replace(/^.*\d\d:\d\d (.*) -> .*$/, '$1'));
}

/** One file of a tar, read with GNU tar. */
export async function tarFile(file: string, name: string): Promise<Buffer> {
  const r = await execa('tar', ['-xOf', file, name], { encoding: 'buffer' });
  return Buffer.from(r.stdout as Uint8Array);
}

/** The rows of `tsbuild history --format json`, newest first. */
export async function tsbuildHistory(root: string, ref: string): Promise<{ CreatedBy: string; Size: number }[]> {
  const out = await ok(root, ['history', '--format', 'json', ref]);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { CreatedBy: string; Size: number });
}

/** Flips one byte of `file` where `marker` occurs (it must occur exactly once: a file's content in a layer, say). */
export async function flipByteAt(file: string, marker: string): Promise<void> {
  const data = await readFile(file);
  const at = data.indexOf(marker);
  if (at < 0 || data.indexOf(marker, at + 1) >= 0) throw new Error(`${marker} must occur exactly once in ${file}`);
  data[at]! ^= 0x01;
  await writeFile(file, data);
}
