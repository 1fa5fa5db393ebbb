// Device nodes and fifos. Node has no mknod(2), so this runs coreutils' `mknod`, one process per
// node: fine for the handful a build context or an ADD archive may hold. (The native helper's
// batched `apply-ops` would be the place to move this if it ever mattered.)
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hasEscapedBytes, hostPath as fsPath } from './bytename.js';

export type SpecialKind = 'fifo' | 'char' | 'block';

export interface SpecialNode {
  readonly kind: SpecialKind;
  /** Permission bits; setuid/setgid/sticky are best applied by a chmod after any chown. */
  readonly mode: number;
  readonly major: number;
  readonly minor: number;
}

/** Create a device node or fifo at `path` (which must not exist). */
export async function makeSpecialNode(path: string, node: SpecialNode): Promise<void> {
  // A process's arguments are text: a name that is not UTF-8 (bytename.ts) could not be passed
  // to mknod. Such a node is made under a plain name in the deepest directory above it whose
  // path is text (the same filesystem), then renamed into place, bytes and all.
  const made = hasEscapedBytes(path) ? join(textAncestor(path), `.tsbuild-mknod-${process.pid}-${randomBytes(6).toString('hex')}`) : path;
  const mode = (node.mode & 0o777).toString(8);
  const args =
    node.kind === 'fifo'
      ? ['-m', mode, made, 'p']
      : ['-m', mode, made, node.kind === 'char' ? 'c' : 'b', String(node.major), String(node.minor)];
  await (await import('execa')).execa('mknod', args);
  if (made !== path) await rename(made, fsPath(path));
}

/** The deepest directory above `path` whose own path holds no escaped bytes. */
function textAncestor(path: string): string {
  let dir = dirname(path);
  while (hasEscapedBytes(dir)) dir = dirname(dir);
  return dir;
}

/** Split a Linux dev_t (st_rdev) into major and minor, as glibc's gnu_dev_major/minor do. */
export function splitDeviceNumber(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}
