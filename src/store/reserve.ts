// A full disk must never lock the user out of shrinking the store: removing an image rewrites
// repositories.json (a new file, renamed into place) and records its work in a lease, and with
// 0 bytes free even that fails. So the store keeps `<root>/reserve`, 1 MiB of its own, made
// when there is room; rmi and prune give it back when the disk is all but full, do their work
// in the space it held, and make it again once there is room.
import { open, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';

const RESERVE_BYTES = 1 << 20;

function reservePath(root: string): string {
  return join(root, 'reserve');
}

/** Bytes an unprivileged writer may still use on the filesystem holding `root`. */
async function available(root: string): Promise<number> {
  const s = await statfs(root);
  return s.bavail * s.bsize;
}

/** Makes the reserve if it is missing and the disk has room for it and as much again; never fails. */
export async function keepReserve(root: string): Promise<void> {
  const path = reservePath(root);
  try {
    await stat(path);
    return;
  } catch {
    // missing: made below if there is room
  }
  try {
    if ((await available(root)) < 2 * RESERVE_BYTES) return;
    const tmp = `${path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      // Written, not sparse: the blocks must really be held.
      await fh.write(Buffer.alloc(RESERVE_BYTES));
      await fh.sync();
    } finally {
      await fh.close();
    }
    const { rename } = await import('node:fs/promises');
    await rename(tmp, path).catch(() => rm(tmp, { force: true }));
  } catch {
    await rm(`${path}.tmp-${process.pid}`, { force: true }).catch(() => undefined);
  }
}

/** Gives the reserve back when less than it is free, so that a command that frees space can write. */
export async function releaseReserveIfFull(root: string): Promise<void> {
  try {
    if ((await available(root)) < RESERVE_BYTES) await rm(reservePath(root), { force: true });
  } catch {
    // statfs failed: nothing known, nothing to do
  }
}
