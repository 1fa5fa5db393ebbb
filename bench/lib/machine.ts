// What the numbers were measured on: CPU, memory, kernel, filesystem, load, and which tsbuild.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  workFs: string;
  cgroups: string;
  loadavg: number[];
}

function sh(argv: string[], cwd?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

export async function describeMachine(workDir: string): Promise<Machine> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    os: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown',
    node: process.version,
    workFs: sh(['findmnt', '-no', 'FSTYPE,SOURCE', '-T', workDir]).trim().replace(/\s+/g, ' '),
    cgroups: sh(['stat', '-fc', '%T', '/sys/fs/cgroup']).trim() === 'cgroup2fs' ? 'v2' : 'v1',
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export interface Revision {
  /** Where the measured tsbuild came from. */
  source: string;
  commit: string;
  /** Tracked files that differ from the commit (working-tree runs only). */
  modified: string[];
}

export function describeRevision(repo: string, rev: string | undefined): Revision {
  if (rev !== undefined) return { source: `git archive of ${rev}`, commit: sh(['git', 'rev-parse', rev], repo).trim(), modified: [] };
  const status = sh(['git', 'status', '--porcelain', '--untracked-files=no'], repo);
  return {
    source: 'working tree (npm run build)',
    commit: sh(['git', 'rev-parse', 'HEAD'], repo).trim(),
    // Porcelain lines are "XY PATH": two status letters (either may be a space), then the path.
    modified: status
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3)),
  };
}
