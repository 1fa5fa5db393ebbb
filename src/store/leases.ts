// In-use leases: `<root>/leases/<pid>-<starttime>`, one file per live tsbuild process that
// changes the store, naming what it depends on and has not yet handed to an image:
//   chains     layers it builds on or has just published (their ancestors are kept with them)
//   snapshots  snapshot directories it prepared, committed or not
//   images     images it stored and has not tagged yet
// rmi, prune and startup repair read them under the store lock and leave all of it alone.
// A file whose process is gone (no /proc/<pid>, or a different start time: the PID was reused)
// is a dead lease: ignored, and its presence is what tells the next command to repair
// (src/store/repair.ts), so a command that finds no dead lease knows there is nothing to repair.
//
// The file exists from a process's first change to the store until it exits; it is rewritten
// whole (temp name, rename) on each change and removed at exit. It is not fsynced: leases
// describe running processes, and a power cut ends them all.
import { readFileSync, unlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Digest } from '../digest.js';
import { TEMP_PREFIX } from './atomic.js';

export interface LeaseRecord {
  readonly pid: number;
  readonly start: string;
  readonly chains: readonly Digest[];
  readonly snapshots: readonly string[];
  readonly images: readonly Digest[];
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

/** Whether process `pid` runs (and, given `start`, is the same process that started then). */
export function isAlive(pid: number, start?: string): boolean {
  if (pid === process.pid) return true;
  const now = startTimeOf(pid);
  return now !== undefined && (start === undefined || now === start);
}

/**
 * The PID that tsbuild's temporary names carry: `<what>-<pid>-<random>`. Undefined for a name
 * that carries none (made by a tsbuild from before PIDs were added, or not by tsbuild).
 */
export function ownerPid(name: string): number | undefined {
  const m = /-(\d+)-[A-Za-z0-9]{6,}$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A temporary name of this process's: `<prefix>-<pid>-<random>`. */
export function ownedName(prefix: string, randomChars = 12): string {
  return `${prefix}-${process.pid}-${randomBytes(Math.ceil(randomChars / 2)).toString('hex').slice(0, randomChars)}`;
}

const LEASE_NAME = /^(\d+)-(\d+)$/;

export interface LeaseScan {
  readonly live: LeaseRecord[];
  /** Names of files (leases and their temporaries) left by processes that are gone. */
  readonly dead: string[];
}

/** Reads the leases directory: cheap when it is empty, as it is when no other tsbuild runs. */
export async function scanLeases(dir: string): Promise<LeaseScan> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { live: [], dead: [] };
    throw err;
  }
  const live: LeaseRecord[] = [];
  const dead: string[] = [];
  for (const name of names) {
    const m = LEASE_NAME.exec(name);
    if (!m) {
      const pid = name.startsWith(TEMP_PREFIX) ? ownerPid(name) : undefined;
      if (pid === undefined || !isAlive(pid)) dead.push(name);
      continue;
    }
    const pid = Number(m[1]);
    if (!isAlive(pid, m[2])) {
      dead.push(name);
      continue;
    }
    if (pid === process.pid) continue; // this process's own, known in memory
    let rec: Partial<LeaseRecord>;
    try {
      rec = JSON.parse(await readFile(join(dir, name), 'utf8')) as Partial<LeaseRecord>;
    } catch (err) {
      // It exited and removed its lease just now.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    live.push({ pid, start: m[2]!, chains: rec.chains ?? [], snapshots: rec.snapshots ?? [], images: rec.images ?? [] });
  }
  return { live, dead };
}

/** This process's lease on one store. One per store root per process (see leaseFor). */
export class Lease {
  readonly file: string;
  private readonly chains = new Set<Digest>();
  private readonly snapshots = new Set<string>();
  private readonly images = new Set<Digest>();
  private written = false;
  private writes: Promise<void> = Promise.resolve();
  /**
   * Set by the store: whether this process leaves work behind (a snapshot it neither committed
   * nor removed, a temp dir). Then its lease stays at exit, so that the next command repairs.
   */
  leavesWork: () => boolean = () => false;

  constructor(readonly dir: string) {
    this.file = join(dir, `${process.pid}-${startTimeOf(process.pid) ?? '0'}`);
  }

  /** What this process holds, as others would read it. */
  record(): LeaseRecord {
    return { pid: process.pid, start: '', chains: [...this.chains], snapshots: [...this.snapshots], images: [...this.images] };
  }

  /** Makes the lease file exist (this process counts as changing the store from now on). */
  async register(): Promise<void> {
    if (!this.written) await this.write();
  }

  async add(what: { chains?: readonly Digest[]; snapshots?: readonly string[]; images?: readonly Digest[] }): Promise<void> {
    for (const c of what.chains ?? []) this.chains.add(c);
    for (const s of what.snapshots ?? []) this.snapshots.add(s);
    for (const i of what.images ?? []) this.images.add(i);
    await this.write();
  }

  /** Writes are queued: each writes the whole state as it is when its turn comes. */
  private write(): Promise<void> {
    this.written = true;
    const next = this.writes.then(async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const tmp = join(this.dir, ownedName(`${TEMP_PREFIX}lease`));
      const r = this.record();
      await writeFile(tmp, JSON.stringify({ chains: r.chains, snapshots: r.snapshots, images: r.images }));
      await rename(tmp, this.file);
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** At exit: the lease goes, unless work is left behind for the next command to repair. */
  removeSync(): void {
    if (!this.written || this.leavesWork()) return;
    try {
      unlinkSync(this.file);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

const leases = new Map<string, Lease>();
let exitHookInstalled = false;

/** The process's lease on the store whose leases live in `dir`, removed when the process exits. */
export function leaseFor(dir: string): Lease {
  let lease = leases.get(dir);
  if (!lease) {
    lease = new Lease(dir);
    leases.set(dir, lease);
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const l of leases.values()) l.removeSync();
    });
  }
  return lease;
}
