// Rootless tsbuild: an ordinary user's tsbuild runs as root of a user namespace of its own.
//
// The CLI, started by a user other than root, re-executes itself through `tsbuild-helper
// userns-exec` (native/helper/userns.c) before it opens a store: inside, it is uid 0 with every
// capability over a mount namespace of its own, so the helper's mounts, namespaces and chowns
// work as they do for root, on files the user owns. Nothing setuid of ours is involved.
//
// The ID maps are chosen here (podman's and rootlesskit's rule):
//   - subordinate: root is the user, and 1..N are the user's ranges in /etc/subuid and
//     /etc/subgid, written by the system's newuidmap/newgidmap (Debian's uidmap package). Files
//     of other owners (`chown 1000`, USER nobody, package managers) then work;
//   - single: root is the user and no other ID exists; images build, but every file is root's
//     and a chown to anyone else fails. `tsbuild info` says what is missing and how to add it.
//
// The process inside learns its mapping (and the user's data directory, which $HOME alone could
// not give inside: the passwd entry of uid 0 is root's) from ROOTLESS_ENV.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { helperPath } from './binary.js';

/** Set (to a JSON UserNamespace) in the environment of the process re-executed inside. */
export const ROOTLESS_ENV = 'TSBUILD_ROOTLESS';

/** `count` IDs from `inside` in the namespace are `outside` on the host. */
export interface IdRange {
  readonly inside: number;
  readonly outside: number;
  readonly count: number;
}

export interface UserNamespace {
  readonly kind: 'subordinate' | 'single';
  readonly uidMap: readonly IdRange[];
  readonly gidMap: readonly IdRange[];
  /** With `single`: why the subordinate ranges are not mapped, and how to fix it. */
  readonly missing?: string;
  /** The user's `$XDG_DATA_HOME` (or `~/.local/share`), read before entering. */
  readonly dataHome: string;
}

/** The `/etc/subuid`-style ranges of a user, by name or by numeric ID, in file order. */
export function parseSubordinate(text: string, name: string, id: number): { start: number; count: number }[] {
  const ranges: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === undefined || start === undefined || count === undefined) continue;
    if (owner !== name && owner !== String(id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && c > 0) ranges.push({ start: s, count: c });
  }
  return ranges;
}

async function readSubordinate(file: string, name: string, id: number): Promise<{ start: number; count: number }[]> {
  try {
    return parseSubordinate(await readFile(file, 'utf8'), name, id);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function onPath(program: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...dirs, '/usr/bin', '/bin'].some((d) => existsSync(join(d, program)));
}

/** Root is `self`; the ranges follow from 1, in order. */
function mapOf(self: number, ranges: readonly { start: number; count: number }[]): IdRange[] {
  const map: IdRange[] = [{ inside: 0, outside: self, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    map.push({ inside: next, outside: r.start, count: r.count });
    next += r.count;
  }
  return map;
}

/** The namespace the current (non-root) user gets: subordinate ranges when the system gives them. */
export async function planUserNamespace(): Promise<UserNamespace> {
  const user = userInfo();
  const dataHome = process.env.XDG_DATA_HOME || join(process.env.HOME || homedir(), '.local', 'share');
  const subuids = await readSubordinate('/etc/subuid', user.username, user.uid);
  const subgids = await readSubordinate('/etc/subgid', user.username, user.uid);
  const single = (missing: string): UserNamespace => ({
    kind: 'single',
    uidMap: mapOf(user.uid, []),
    gidMap: mapOf(user.gid, []),
    missing,
    dataHome,
  });
  if (subuids.length === 0 || subgids.length === 0) {
    const files = [subuids.length === 0 ? '/etc/subuid' : '', subgids.length === 0 ? '/etc/subgid' : ''].filter(Boolean);
    return single(
      `${user.username} has no range in ${files.join(' and ')}; as root: ` +
        `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.username} (pick a free range)`,
    );
  }
  if (!onPath('newuidmap') || !onPath('newgidmap')) {
    return single('newuidmap and newgidmap are not installed; as root: apt-get install uidmap');
  }
  return { kind: 'subordinate', uidMap: mapOf(user.uid, subuids), gidMap: mapOf(user.gid, subgids), dataHome };
}

/** The namespace this process was re-executed into, or undefined when it was not. */
export function rootlessNamespace(): UserNamespace | undefined {
  const text = process.env[ROOTLESS_ENV];
  if (!text) return undefined;
  try {
    return JSON.parse(text) as UserNamespace;
  } catch {
    return undefined;
  }
}

function isMapped(map: readonly IdRange[], id: number): boolean {
  return map.some((r) => id >= r.inside && id < r.inside + r.count);
}

/**
 * Why a file owned by `uid`:`gid` cannot be made in this process's user namespace (the kernel
 * refuses chown to an ID the map lacks, with EINVAL), or undefined when it can or when tsbuild
 * is not rootless. Names the IDs and how to map them.
 */
export function unmappedOwner(uid: number, gid: number): string | undefined {
  const ns = rootlessNamespace();
  if (!ns) return undefined;
  const ids = [isMapped(ns.uidMap, uid) ? '' : `uid ${uid}`, isMapped(ns.gidMap, gid) ? '' : `gid ${gid}`].filter(Boolean);
  if (ids.length === 0) return undefined;
  const top = (map: readonly IdRange[]): number => Math.max(...map.map((r) => r.inside + r.count)) - 1;
  const fix =
    ns.kind === 'single'
      ? `tsbuild maps a single ID (0) because ${ns.missing ?? 'no subordinate range is mapped'}`
      : `the subordinate ranges map uids 0-${top(ns.uidMap)} and gids 0-${top(ns.gidMap)}: give the user a larger range in /etc/subuid and /etc/subgid`;
  return `${ids.join(' and ')} ${ids.length > 1 ? 'are' : 'is'} not mapped in tsbuild's user namespace (rootless): ${fix}`;
}

/** Whether tsbuild runs for an ordinary user: not root, or root only of the namespace tsbuild made. */
export function isRootless(): boolean {
  return rootlessNamespace() !== undefined || (process.getuid !== undefined && process.getuid() !== 0);
}

/** The user's data directory, where a rootless store lives by default. */
export function rootlessDataHome(): string {
  return rootlessNamespace()?.dataHome ?? (process.env.XDG_DATA_HOME || join(process.env.HOME || homedir(), '.local', 'share'));
}

/**
 * Whether this process is in a user namespace other than the initial one. The initial
 * namespace's map is the identity over all 2^32-1 IDs; any other map means the kernel grants
 * our capabilities only over this namespace, so overlayfs must keep its bookkeeping in user.*
 * xattrs (trusted.* needs CAP_SYS_ADMIN in the initial namespace). A small procfs file, read once.
 */
let inUserNsCache: boolean | undefined;
export function inUserNamespace(): boolean {
  if (inUserNsCache !== undefined) return inUserNsCache;
  let map: string;
  try {
    map = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return (inUserNsCache = false);
  }
  const lines = map.trim().split('\n');
  const fields = lines[0]?.trim().split(/\s+/) ?? [];
  inUserNsCache = !(lines.length === 1 && fields[0] === '0' && fields[1] === '0' && fields[2] === '4294967295');
  return inUserNsCache;
}

/** The map as `tsbuild info` shows it: `0 -> 1000 (1), 1 -> 100000 (65536)`. */
export function describeMap(map: readonly IdRange[]): string {
  return map.map((r) => `${r.inside} -> ${r.outside}${r.count > 1 ? ` (${r.count})` : ''}`).join(', ');
}

/**
 * Runs `node <this script> ...argv` again as root of a new user namespace and resolves with its
 * exit status. A signal that killed it kills us the same way, so our parent sees what it would
 * have seen. SIGTERM and SIGHUP are passed on; SIGINT is left to the terminal, which sends it
 * to the whole foreground group, the process inside included.
 */
export async function reexecInUserNamespace(argv: readonly string[]): Promise<number> {
  const ns = await planUserNamespace();
  const maps = [
    ...ns.uidMap.map((r) => `--uid-map=${r.inside}:${r.outside}:${r.count}`),
    ...ns.gidMap.map((r) => `--gid-map=${r.inside}:${r.outside}:${r.count}`),
  ];
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot re-execute tsbuild: process.argv[1] is not set');
  const child = spawn(helperPath(), ['userns-exec', ...maps, '--', process.execPath, ...process.execArgv, '--', script, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, [ROOTLESS_ENV]: JSON.stringify(ns) },
  });
  const ignore = (): void => {};
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(`tsbuild-helper not found at ${helperPath()}: run \`npm run build:helper\` or set TSBUILD_HELPER`)
          : err,
      ),
    );
    child.once('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  process.off('SIGINT', ignore);
  process.off('SIGTERM', forward);
  process.off('SIGHUP', forward);
  if (signal !== null) {
    process.kill(process.pid, signal);
    return 128;
  }
  return code ?? 1;
}
