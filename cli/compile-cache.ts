// Node's on-disk cache of compiled modules (module.enableCompileCache, Node 22.1 and later):
// V8's bytecode for our bundle is kept between runs, so a build does not compile the same
// ~2 MB of JavaScript again each time it starts.
//
// Where: $XDG_CACHE_HOME/tsbuild/node-compile-cache (default ~/.cache/...), a directory of the
// user's own. The cache holds code that Node runs without reading our sources, and Node checks
// only that an entry matches the source's hash, not who wrote it: a cache another user can
// write to would let them run code as us (as root, for a rootful tsbuild, whose HOME may be a
// user's under sudo). So the directory and every directory above it must belong to us or root
// and be writable by no one else (a sticky, world-writable one like /tmp only protects what is
// ours inside it, so it is accepted as a parent too); otherwise the cache is not used.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; a NODE_COMPILE_CACHE set by the user wins.
import { lstatSync, mkdirSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';

/** Node 22.1's module.enableCompileCache; absent from Node 20 (and its types). */
type EnableCompileCache = (dir?: string) => { status: number; directory?: string };

/** The default cache directory for this user: an absolute path, or undefined when there is no home. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'tsbuild', 'node-compile-cache');
  const home = env.HOME || homedir();
  return home && isAbsolute(home) ? join(home, '.cache', 'tsbuild', 'node-compile-cache') : undefined;
}

const STICKY = 0o1000;

/**
 * Whether only `uid` (and root) can change what DIR holds: DIR and each directory above it is
 * a real directory (not a symlink), owned by uid or root, and writable by group or others only
 * when sticky, DIR itself never.
 */
export function isPrivateDir(dir: string, uid: number): boolean {
  for (let p = dir; ; p = dirname(p)) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return false;
    }
    if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0)) return false;
    const shared = (st.mode & 0o022) !== 0;
    if (shared && (p === dir || (st.mode & STICKY) === 0)) return false;
    if (p === dirname(p)) return true;
  }
}

/**
 * Turns the compile cache on for what this process loads from now on, and for the tsbuild that
 * a rootless start re-executes (through NODE_COMPILE_CACHE in the environment it passes on).
 * Does nothing on Node 20, without a usable directory, or when the user chose otherwise.
 */
export function enableCompileCache(): void {
  const enable = (module as unknown as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  const env = process.env;
  if (enable === undefined || env.NODE_COMPILE_CACHE !== undefined || env.NODE_DISABLE_COMPILE_CACHE !== undefined) return;
  const uid = process.getuid?.();
  const dir = compileCacheDir();
  if (uid === undefined || dir === undefined) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return; // a read-only or missing home: run without the cache
  }
  if (!isPrivateDir(dir, uid)) return;
  enable(dir);
  env.NODE_COMPILE_CACHE = dir;
}
