// `mkdir -p` with an owner and an exact mode, for directories COPY/ADD create on the way to a
// destination. It expects a path already resolved with resolveInRoot: every existing component
// is then a real directory, and anything else found on the way is an error, never followed.
import { chmod, lchown, lstat, mkdir } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { hostPath as fsPath } from './bytename.js';
import { displayPath } from './securejoin.js';

export interface Ownership {
  readonly uid: number;
  readonly gid: number;
}

export interface MkdirAllOptions {
  /** Permission bits of created directories, applied with chmod so the umask does not matter. */
  readonly mode: number;
  readonly owner: Ownership;
  /** The root the path lies in, to name paths in errors as the image sees them. */
  readonly root: string;
}

/** Create `hostPath` and its missing parents; returns the directories created, outermost first. */
export async function mkdirAll(hostPath: string, opts: MkdirAllOptions): Promise<string[]> {
  const st = await lstatOrUndefined(hostPath);
  if (st?.isDirectory()) return [];
  if (st) throw new InvalidInputError(`mkdir ${displayPath(relative(opts.root, hostPath))}: not a directory`);
  const parent = dirname(hostPath);
  const created = parent === hostPath ? [] : await mkdirAll(parent, opts);
  try {
    await mkdir(fsPath(hostPath));
  } catch (err) {
    // Lost a race with a sibling creating the same parent: fine if it is a directory now.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await lstatOrUndefined(hostPath))?.isDirectory()) {
      return created;
    }
    throw err;
  }
  await lchown(fsPath(hostPath), opts.owner.uid, opts.owner.gid);
  await chmod(fsPath(hostPath), opts.mode);
  created.push(hostPath);
  return created;
}

async function lstatOrUndefined(p: string) {
  try {
    return await lstat(fsPath(p));
  } catch (err) {
    // ENOTDIR: some ancestor is a file; the recursion reaches it and says so.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
