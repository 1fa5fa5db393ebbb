// Running the real CLI against temporary store roots, as a user would.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const CLI = join(REPO, 'dist', 'bin', 'tsbuild.js');

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tsbuild ARGS` with --root ROOT; never throws on a non-zero exit. */
export async function tsbuild(
  root: string,
  args: readonly string[],
  opts: { cwd?: string; input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  // --root goes right after the command name: for `run`, what follows the image is its command.
  const withRoot = args[0]?.startsWith('-') ? ['--root', root, ...args] : [...args.slice(0, 1), '--root', root, ...args.slice(1)];
  const r = await execa('node', [CLI, ...withRoot], {
    reject: false,
    stripFinalNewline: false,
    cwd: opts.cwd ?? REPO,
    env: { ...opts.env, TSBUILD_ROOT: '' },
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
  });
  // Killed at the deadline: said so, rather than as an exit code.
  const stderr = r.timedOut ? `${String(r.stderr)}\n(killed: not finished in ${opts.timeoutMs} ms)` : String(r.stderr);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr };
}

/** Like tsbuild(), but fails the test with the command's output if it did not exit 0. */
export async function ok(root: string, args: readonly string[], opts: Parameters<typeof tsbuild>[2] = {}): Promise<string> {
  const r = await tsbuild(root, args, opts);
  if (r.exitCode !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.exitCode}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/** Mount points at or below dir, from the kernel's own table. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)));
}

/** A fresh store root; `cleanup` fails the test if anything is still mounted below it. */
export async function tempRoot(): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'tsbuild-test-'));
  return {
    root,
    async cleanup() {
      const left = await mountsBelow(root);
      for (const m of left.reverse()) await execa('umount', ['-l', m], { reject: false });
      await rm(root, { recursive: true, force: true });
      if (left.length) throw new Error(`mounts left behind under ${root}: ${left.join(', ')}`);
    },
  };
}

/**
 * A temp root that already holds busybox:latest, stored with the given driver (later commands
 * keep using it, as Docker keeps using the driver that holds its images).
 */
export async function rootWithBusybox(driver?: 'overlay2' | 'vfs'): Promise<{ root: string; cleanup(): Promise<void> }> {
  const t = await tempRoot();
  await ok(t.root, ['bootstrap', 'busybox', ...(driver ? ['--storage-driver', driver] : [])]);
  return t;
}

/** Every tempDir() of the running test file: removed after its last test (test/helpers/setup.ts). */
const tempDirs: string[] = [];

export async function tempDir(prefix = 'tsbuild-ctx-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/**
 * Removes what tempDir() made. A directory with something still mounted below it is left to
 * the cleanup that owns the mount (tempRoot's fails the test for it): removing through a
 * mount would reach into the mounted filesystem.
 */
export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) {
    if ((await mountsBelow(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A busybox store root shared by one test file: made in beforeAll, removed in afterAll with
 * every path handed to removeLater.
 */
export function busyboxStore(): { readonly root: string; removeLater(path: string): void } {
  let store: { root: string; cleanup(): Promise<void> } | undefined;
  const paths: string[] = [];
  beforeAll(async () => {
    store = await rootWithBusybox();
  });
  afterAll(async () => {
    for (const p of paths) await rm(p, { recursive: true, force: true });
    await store?.cleanup();
  });
  return {
    get root(): string {
      if (!store) throw new Error('busyboxStore: the root is made in beforeAll');
      return store.root;
    },
    removeLater: (path) => void paths.push(path),
  };
}

/** A build context in a tempDir() holding `files` (paths relative to it, parents made). */
export async function contextOf(files: Record<string, string>): Promise<string> {
  const ctx = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(ctx, name)), { recursive: true });
    await writeFile(join(ctx, name), content);
  }
  return ctx;
}
