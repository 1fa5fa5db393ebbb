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
// The file exists from a process's first change to the store until it exits (see removeSync).
// Each addition is appended as one JSON line by one write(2) on an O_APPEND file, under the store
// lock, so a reader holding the lock sees whole lines; the lease is their union. (Rewriting the
// file and renaming it cost ~2 ms per build step.) It is not fsynced: leases describe running
// processes, and a power cut ends them all.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../digest.js';
import { TEMP_PREFIX } from '../fs/atomic.js';

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

/**
 * /proc's clock ticks per second (USER_HZ): 100 on every architecture Linux runs Node on; the
 * kernel converts to it for userspace whatever its own HZ.
 */
const USER_HZ = 100;
let bootTimeMs: number | undefined;

/** When process `pid` started, in ms since the epoch (to within a second); undefined if none runs. */
export function startedAtMs(pid: number): number | undefined {
  const ticks = startTimeOf(pid);
  if (ticks === undefined) return undefined;
  if (bootTimeMs === undefined) {
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!btime) return undefined;
    bootTimeMs = Number(btime[1]) * 1000;
  }
  return bootTimeMs + (Number(ticks) * 1000) / USER_HZ;
}

/**
 * Whether the owner of a temporary name (`<what>-<pid>-<random>`) last changed at `changedMs` is
 * gone. Such names carry a PID but no start time, and PIDs come round again (every thread takes
 * one; pid_max may be 32768): a process that has the PID but started after the file was last
 * changed is not its owner. (The second of slack covers btime's and the ticks' rounding; an
 * owner always starts before it writes.) A name without a PID is not judged: it may belong to
 * a live process of an older tsbuild, and removing a live process's file is worse than keeping
 * a dead one's.
 */
export function ownerGone(name: string, changedMs: number): boolean {
  const pid = ownerPid(name);
  if (pid === undefined || pid === process.pid) return false;
  const started = startedAtMs(pid);
  return started === undefined || started > changedMs + 1000;
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

const LEASE_NAME = /^(\d+)-(\d+)$/;

export interface LeaseScan {
  readonly live: LeaseRecord[];
  /** Names of files (leases and their temporaries) left by processes that are gone. */
  readonly dead: string[];
}

/**
 * Reads the leases directory: cheap when it is empty, as it is when no other tsbuild runs.
 * With `contents: false`, only tells live from dead (the live ones' lists stay empty).
 */
export async function scanLeases(dir: string, opts: { contents?: boolean } = {}): Promise<LeaseScan> {
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
    if (opts.contents === false) {
      live.push({ pid, start: m[2]!, chains: [], snapshots: [], images: [] });
      continue;
    }
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch (err) {
      // It exited and removed its lease just now.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const rec = { pid, start: m[2]!, chains: [] as Digest[], snapshots: [] as string[], images: [] as Digest[] };
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let part: Partial<LeaseRecord>;
      try {
        part = JSON.parse(line) as Partial<LeaseRecord>;
      } catch {
        continue; // still being appended: possible only for a reader not holding the lock
      }
      rec.chains.push(...(part.chains ?? []));
      rec.snapshots.push(...(part.snapshots ?? []));
      rec.images.push(...(part.images ?? []));
    }
    live.push(rec);
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
  private handle: Promise<FileHandle> | undefined;
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
    await this.open();
  }

  /** register() for a caller that cannot wait: the file is made now, its handle opened on first use. */
  registerSync(): void {
    if (this.written) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    closeSync(openSync(this.file, 'a', 0o600));
    this.written = true;
  }

  private open(): Promise<FileHandle> {
    this.handle ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(this.file, 'a', 0o600);
      this.written = true;
      return fh;
    })();
    return this.handle;
  }

  /** Adds to the lease; call holding the store lock. Only what is new is written. */
  async add(what: { chains?: readonly Digest[]; snapshots?: readonly string[]; images?: readonly Digest[] }): Promise<void> {
    const chains = (what.chains ?? []).filter((c) => !this.chains.has(c));
    const snapshots = (what.snapshots ?? []).filter((s) => !this.snapshots.has(s));
    const images = (what.images ?? []).filter((i) => !this.images.has(i));
    const fh = await this.open();
    if (chains.length + snapshots.length + images.length === 0) return;
    for (const c of chains) this.chains.add(c);
    for (const s of snapshots) this.snapshots.add(s);
    for (const i of images) this.images.add(i);
    await fh.write(`${JSON.stringify({ chains, snapshots, images })}\n`);
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
