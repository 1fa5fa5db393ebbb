// Mount stubs: the directories and empty files a step's mounts need as mount points, made by the
// helper in the writable rootfs when the image lacks them. They belong to the mounts, not to the
// step: after the step, each one that is still empty is removed again (deepest first), as
// BuildKit does (executor/stubs.go, MountStubsCleaner). The existing directory they were made in
// gets its times back when it holds again just what it held before the step, so that the layer
// does not record a change the Dockerfile never made (layer/changes.ts leaves such a directory out).
import { lstat, readdir, rmdir, unlink, utimes } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolveInRoot } from '../fs/securejoin.js';

export interface MountStubs {
  /** Paths (absolute in the rootfs) that do not exist yet, deepest first. */
  readonly paths: readonly string[];
  /** The existing directories the topmost stubs go into: their entries and times before the step. */
  readonly parents: readonly { readonly path: string; readonly names: string; readonly atimeNs: bigint; readonly mtimeNs: bigint }[];
}

/** What the mounts at `targets` will have to make in `rootfs`. */
export async function findStubs(rootfs: string, targets: readonly string[]): Promise<MountStubs> {
  const paths: string[] = [];
  const parents: MountStubs['parents'][number][] = [];
  for (const target of targets) {
    // Walk up from the target to the first path that exists: everything below it will be made.
    for (let p = posix.resolve('/', target); p !== '/'; p = posix.dirname(p)) {
      if (await existsInRoot(rootfs, p)) break;
      if (!paths.includes(p)) paths.push(p);
      const parent = posix.dirname(p);
      if (!parents.some((e) => e.path === parent) && (await existsInRoot(rootfs, parent))) {
        const host = await resolveInRoot(rootfs, parent);
        const st = await lstat(host, { bigint: true });
        if (st.isDirectory()) parents.push({ path: parent, names: await namesOf(host), atimeNs: st.atimeNs, mtimeNs: st.mtimeNs });
      }
    }
  }
  return { paths: paths.sort((a, b) => b.split('/').length - a.split('/').length), parents };
}

/** Removes the stubs that are still empty; a stub the step filled stays, with its parents. */
export async function removeStubs(rootfs: string, stubs: MountStubs): Promise<void> {
  for (const stub of stubs.paths) {
    let host: string;
    try {
      host = await resolveInRoot(rootfs, stub);
    } catch {
      continue; // the step replaced a parent with something else: not ours any more
    }
    const st = await lstat(host).catch(() => undefined);
    if (!st) continue;
    const empty = st.isDirectory() ? (await readdir(host)).length === 0 : st.isFile() && st.size === 0;
    if (empty) await (st.isDirectory() ? rmdir(host) : unlink(host));
  }
  for (const parent of stubs.parents) {
    const host = await resolveInRoot(rootfs, parent.path).catch(() => undefined);
    if (host === undefined || (await namesOf(host).catch(() => undefined)) !== parent.names) continue;
    // Seconds as a double, not a Date: a Date would round the times to the millisecond.
    await utimes(host, Number(parent.atimeNs) / 1e9, Number(parent.mtimeNs) / 1e9).catch(() => undefined);
  }
}

async function namesOf(dir: string): Promise<string> {
  return (await readdir(dir)).sort().join('\0');
}

async function existsInRoot(rootfs: string, path: string): Promise<boolean> {
  try {
    await lstat(await resolveInRoot(rootfs, path));
    return true;
  } catch {
    return false;
  }
}
