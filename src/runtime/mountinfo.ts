// Reading this process's mount table, to find what a crashed run left mounted.
import { readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';

/** mountinfo escapes space, tab, newline and backslash in paths as \ooo octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function canonical(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch (err) {
    // A directory that does not exist has nothing mounted below it; its lexical path still compares right.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(dir);
    throw err;
  }
}

/**
 * Mount points at or below DIR in this mount namespace, most recent first: the order to
 * unmount them in (a path mounted twice appears twice). DIR itself is included when it is
 * a mount point, so `(await mountsUnder(d)).includes(d)` tells whether d is mounted.
 */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = await canonical(dir);
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of table.split('\n')) {
    // Fields: id parent major:minor root mount-point options ... (proc(5)).
    const mountPoint = line.split(' ')[4];
    if (mountPoint === undefined) continue;
    const path = unescape(mountPoint);
    if (path === root || path.startsWith(prefix)) found.push(path);
  }
  return found.reverse();
}
