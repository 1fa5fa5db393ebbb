// Temporary directories for the context/copy/users tests: real files under os.tmpdir(), removed
// after each test. The tests run as root, so chown and mknod work.
import { chmod, mkdtemp, mkdir, rm, writeFile, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const made: string[] = [];

export async function tempDir(prefix = 'tsbuild-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** A tree described as path → content (string = file, null = directory, { link } = symlink). */
export type Tree = Record<string, string | null | { link: string } | { file: string; mode: number }>;

export async function writeTree(root: string, tree: Tree): Promise<void> {
  for (const [path, spec] of Object.entries(tree)) {
    const p = join(root, path);
    await mkdir(dirname(p), { recursive: true });
    if (spec === null) await mkdir(p, { recursive: true });
    else if (typeof spec === 'string') await writeFile(p, spec);
    else if ('link' in spec) await symlink(spec.link, p);
    else {
      await writeFile(p, spec.file);
      await chmod(p, spec.mode); // exact, whatever the umask
    }
  }
}

/** Give a path a fixed mtime (seconds since the epoch). */
export async function setMtime(path: string, seconds: number): Promise<void> {
  await utimes(path, seconds, seconds);
}
