// One benchmark run's resources: a work directory (inputs, stores, daemons' roots, logs), a
// cpuacct cgroup per tool, and the undo list. Everything the run starts is stopped by PID and
// everything it made is removed, at the end or on Ctrl-C/SIGTERM — including processes that
// daemons left behind (found by their cgroup, which only this run's processes are in).
import { access, mkdir, mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { abortCommands } from './measure.js';
import { journaledWorkFs, type WorkFs } from './workfs.js';

const CGROUP_FS = '/sys/fs/cgroup';

export type Cleanup = () => Promise<void>;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Where CPU time is accounted: cgroup v1's cpuacct hierarchy, or v2's unified one. */
async function cpuHierarchy(): Promise<string | undefined> {
  if (await exists(join(CGROUP_FS, 'cpuacct', 'cpuacct.usage'))) return join(CGROUP_FS, 'cpuacct');
  if (await exists(join(CGROUP_FS, 'cgroup.controllers'))) return CGROUP_FS;
  return undefined;
}

/** The roots of every mounted hierarchy (v1 has one per controller; v2 one in all). */
async function hierarchies(): Promise<string[]> {
  if (await exists(join(CGROUP_FS, 'cgroup.controllers'))) return [CGROUP_FS];
  const names = await readdir(CGROUP_FS).catch(() => []);
  return names.map((n) => join(CGROUP_FS, n));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function terminate(pid: number, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, 5000);
}

/** Mount points at or below `dir`, deepest last (from the kernel's table). */
export async function mountsBelow(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)));
}

export class Session {
  /** cgroup path relative to each hierarchy's root, e.g. `/tsbuild-bench-1234`. */
  readonly cgroupName: string;
  private readonly cleanups: { what: string; fn: Cleanup }[] = [];
  private closing: Promise<void> | undefined;
  readonly problems: string[] = [];

  private constructor(
    readonly dir: string,
    readonly keep: boolean,
    /** The journaled filesystem made for the run (workfs.ts), when `dir` is on one. */
    readonly workFs: WorkFs | undefined,
  ) {
    this.cgroupName = `/tsbuild-bench-${process.pid}`;
  }

  /**
   * A fresh work directory under `base`; short, because Docker's socket paths must fit in 108
   * bytes. `journaled`: on a journaled ext4 made for the run under `base` (workfs.ts), unmounted
   * and removed by close().
   */
  static async create(base: string, keep: boolean, journaled: boolean): Promise<Session> {
    const workFs = journaled ? await journaledWorkFs(base) : undefined;
    try {
      await mkdir(base, { recursive: true });
      const dir = await mkdtemp(join(workFs?.dir ?? base, 'tsb-bench-'));
      const s = new Session(dir, keep, workFs);
      await mkdir(join(dir, 'logs'));
      return s;
    } catch (err) {
      await workFs?.remove();
      throw err;
    }
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /**
   * The cgroup that `tool`'s CPU time is charged to, created on first use: in the cpuacct
   * hierarchy (cgroup v1) or the unified one (v2); undefined when neither can be used.
   */
  async cgroup(tool: string): Promise<string | undefined> {
    const base = await cpuHierarchy();
    if (base === undefined) return undefined;
    const dir = join(base, this.cgroupName, tool);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Registers an undo step; steps run last-registered first. */
  defer(what: string, fn: Cleanup): void {
    this.cleanups.push({ what, fn });
  }

  /** Stops and removes everything; safe to call more than once (later calls wait for the first). */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const child = abortCommands();
    if (child !== undefined) await terminate(child, 10_000);
    for (const { what, fn } of this.cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        this.problems.push(`cleanup: ${what}: ${(err as Error).message}`);
      }
    }
    // Whatever is still in this run's cgroups was started by this run (shims outliving their
    // daemon, a build step a killed builder left): stop it by PID.
    for (let round = 0; round < 3; round++) {
      const pids = await this.cgroupPids();
      if (pids.length === 0) break;
      for (const pid of pids) await terminate(pid, 5000);
    }
    for (const m of (await mountsBelow(this.dir)).reverse()) {
      const r = spawnSync('umount', [m]);
      if (r.status !== 0) spawnSync('umount', ['-l', m]);
    }
    await this.removeCgroups();
    if (this.keep) {
      const on = this.workFs ? ` (on ${this.workFs.image}, still mounted at ${this.workFs.dir}: umount it and remove the image after)` : '';
      process.stderr.write(`bench: kept ${this.dir}${on}\n`);
      return;
    }
    await this.removeDir();
    await this.workFs?.remove().catch((err: Error) => this.problems.push(`removing the work filesystem: ${err.message}`));
  }

  /**
   * Removes the scratch directory. On Ctrl-C, inputs may still be being generated in this
   * process (files written as the directory goes): a few tries, until the writer has failed.
   */
  private async removeDir(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await rm(this.dir, { recursive: true, force: true });
        return;
      } catch (err) {
        if (attempt === 5) {
          this.problems.push(`removing ${this.dir}: ${(err as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** PIDs in this run's cgroups, in every hierarchy (Docker puts its containers in all of them). */
  private async cgroupPids(): Promise<number[]> {
    const pids = new Set<number>();
    const walk = async (dir: string): Promise<void> => {
      const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const l of procs.split('\n')) if (l.trim()) pids.add(Number(l));
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(dir, e.name));
    };
    for (const h of await hierarchies()) await walk(join(h, this.cgroupName));
    pids.delete(process.pid);
    return [...pids];
  }

  private async removeCgroups(): Promise<void> {
    const remove = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await remove(join(dir, e.name));
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.problems.push(`removing cgroup ${dir}: ${err.message}`);
      });
    };
    for (const h of await hierarchies()) await remove(join(h, this.cgroupName));
  }

  /** On SIGINT/SIGTERM: clean up, then exit 130/143. */
  trapSignals(): void {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.stderr.write(`\nbench: ${sig}: stopping what this run started and removing ${this.dir}\n`);
      void this.close().finally(() => {
        for (const p of this.problems) process.stderr.write(`bench: ${p}\n`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
}
