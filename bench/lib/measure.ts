// Running one command and measuring it: wall time (spawn to exit, in this process), CPU time
// of everything it caused (a cpuacct cgroup per tool: the command, its children, and for
// Docker the daemon and its containers, which are not the client's children), and, when
// asked, the peak resident memory: GNU time's maximum RSS (the kernel's ru_maxrss of the
// command and every process it waited for, i.e. the largest process of the tree, counted
// exactly at exit), or without /usr/bin/time the command's own VmHWM, polled.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';

/** A command line to run, and where its CPU time is accounted. */
export interface Command {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** cpuacct cgroup directory to start the command in (its CPU is read from this group). */
  readonly cgroup?: string;
}

export interface Sample {
  readonly ok: boolean;
  /** Seconds, spawn to exit. */
  readonly wall: number;
  /** Seconds of CPU (user + system) charged to the tool's cgroup during the run, if known. */
  readonly cpu?: number;
  /** Peak resident set in KiB (GNU time's maximum RSS, else the command's VmHWM), when asked. */
  readonly peakKiB?: number;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly error?: string;
}

export class CommandFailed extends Error {
  constructor(
    readonly command: Command,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly output: string,
  ) {
    super(`${command.argv.join(' ')} exited ${signal ?? exitCode}:\n${output}`);
  }
}

const POLL_MS = 10;
const GNU_TIME = '/usr/bin/time';
let memoryFiles = 0;

/** The process this harness is waiting for right now, so Ctrl-C can stop it by PID. */
let current: { pid: number } | undefined;
let aborted = false;

export class Aborted extends Error {
  constructor() {
    super('the bench was interrupted');
  }
}

/**
 * From now on no command starts (measure() throws Aborted); returns the PID of the one
 * running, for the caller to stop.
 */
/** Throws Aborted once the run is being stopped (for work done in this process, like generating inputs). */
export function checkAborted(): void {
  if (aborted) throw new Aborted();
}

export function abortCommands(): number | undefined {
  aborted = true;
  return current?.pid;
}

/** CPU time charged to a cgroup and its descendants: cpuacct.usage (v1) or cpu.stat (v2). */
export async function cgroupUsageNs(cgroup: string): Promise<bigint> {
  const v1 = await readFile(`${cgroup}/cpuacct.usage`, 'utf8').catch(() => undefined);
  if (v1 !== undefined) return BigInt(v1.trim());
  const m = /^usage_usec (\d+)$/m.exec(await readFile(`${cgroup}/cpu.stat`, 'utf8'));
  return BigInt(m?.[1] ?? '0') * 1000n;
}

async function vmHwmKiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs `cmd` with its output appended to `logFile`; never throws for a non-zero exit (the
 * sample says ok: false and carries the output's tail).
 */
export async function measure(cmd: Command, opts: { logFile: string; memory?: boolean; timeoutMs: number }): Promise<Sample> {
  if (aborted) throw new Aborted();
  const log = await open(opts.logFile, 'a');
  const start = (await log.stat()).size;
  await log.write(`\n$ ${cmd.argv.join(' ')}\n`);
  // The shell moves itself into the cgroup and then becomes the command (same PID), so the
  // command and all it starts are charged there, and VmHWM read at that PID is the command's.
  // GNU time writes the peak RSS of the tree it waited for into a file of its own (the
  // command's output stays in the log, unmixed); it costs one fork and exec, ~1 ms.
  const rssFile = opts.memory && existsSync(GNU_TIME) ? `${opts.logFile}.maxrss-${process.pid}-${memoryFiles++}` : undefined;
  const inner = rssFile ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...cmd.argv] : [...cmd.argv];
  const argv = cmd.cgroup ? ['/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cmd.cgroup, ...inner] : inner;
  const before = cmd.cgroup ? await cgroupUsageNs(cmd.cgroup) : 0n;
  const t0 = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: cmd.cwd,
    env: { ...process.env, ...cmd.env },
    stdio: ['ignore', log.fd, log.fd],
  });
  let peak: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    if (child.pid !== undefined) current = { pid: child.pid };
    if (opts.memory && !rssFile && child.pid !== undefined) {
      const pid = child.pid;
      poll = setInterval(() => {
        void vmHwmKiB(pid).then((v) => {
          if (v !== undefined && (peak === undefined || v > peak)) peak = v;
        });
      }, POLL_MS);
    }
    const { code, signal, error } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
      timer = setTimeout(() => {
        child.kill('SIGKILL');
      }, opts.timeoutMs);
    });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cmd.cgroup ? Number((await cgroupUsageNs(cmd.cgroup)) - before) / 1e9 : undefined;
    if (rssFile) {
      const text = await readFile(rssFile, 'utf8').catch(() => '');
      await rm(rssFile, { force: true });
      // GNU time says "Command exited with non-zero status N" first when it did; %M is last.
      const kib = Number(text.trim().split('\n').at(-1));
      if (Number.isFinite(kib) && kib > 0) peak = kib;
    }
    const ok = code === 0 && !error;
    let output: string | undefined;
    if (!ok) {
      const text = await readFile(opts.logFile, 'utf8');
      output = tail(text.slice(start)) + (error ? `\n${error.message}` : '');
    }
    return {
      ok,
      wall,
      ...(cpu !== undefined ? { cpu } : {}),
      ...(peak !== undefined ? { peakKiB: peak } : {}),
      exitCode: code,
      signal,
      ...(output !== undefined ? { error: output } : {}),
    };
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    current = undefined;
    await log.close();
  }
}

/** Runs an untimed command (setup, tagging, cleanup); throws CommandFailed with its output. */
export async function run(cmd: Command, opts: { logFile: string; timeoutMs?: number }): Promise<void> {
  const s = await measure(cmd, { logFile: opts.logFile, timeoutMs: opts.timeoutMs ?? 30 * 60_000 });
  if (!s.ok) throw new CommandFailed(cmd, s.exitCode ?? null, s.signal ?? null, s.error ?? '');
}

/** Runs a command and returns its stdout (for versions and the like); throws on failure. */
export async function capture(argv: readonly string[], env?: Record<string, string>): Promise<string> {
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${tail(err || out, 5)}`);
  return out;
}
