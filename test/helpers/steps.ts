// For tests that run real steps through the helper and watch them from the host: output
// collected as it arrives, and the step's processes found in the host's /proc.
import { readdir, readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { runInContainer } from '../../src/runtime/helper.js';
import type { RunSpec } from '../../src/runtime/types.js';

/** A stream that keeps what it is given, and says when a given text has arrived. */
export class Collector extends Writable {
  text = '';
  private readonly waiters: { needle: string; resolve: () => void }[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    for (const w of this.waiters.filter((w) => this.text.includes(w.needle))) w.resolve();
    done();
  }
  /** Resolves once NEEDLE has been written. */
  seen(needle: string): Promise<void> {
    if (this.text.includes(needle)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ needle, resolve }));
  }
}

/** PIDs of the host's processes, as listed in its /proc. */
export async function allPids(): Promise<number[]> {
  return (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
}

/** Host PIDs of processes whose argv is exactly ARGV (read from the host's /proc). */
export async function hostPids(argv: readonly string[]): Promise<number[]> {
  const wanted = argv.join('\0') + '\0';
  const pids: number[] = [];
  for (const pid of await allPids()) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === wanted) pids.push(pid);
  }
  return pids;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A `sleep` argv nobody else runs: busybox sleep adds its arguments, so the marker is just more seconds. */
export function uniqueSleep(): string[] {
  return ['sleep', '1000', String(process.pid) + String(Math.floor(Math.random() * 1e6))];
}

/**
 * Steps in one test rootfs: `spec` fills every RunSpec field with a default (root, `/`, the host
 * network, no binds), `sh` runs a script there and collects its output.
 */
export function stepsIn(rootfs: () => string, defaults: Partial<RunSpec> = {}) {
  const spec = (overrides: Partial<RunSpec> = {}): RunSpec => ({
    rootfs: rootfs(),
    argv: ['true'],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    groups: [],
    hostname: 'step',
    network: 'host',
    binds: [],
    ...defaults,
    ...overrides,
  });
  const sh = async (script: string, overrides: Partial<RunSpec> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> => {
    const stdout = new Collector();
    const stderr = new Collector();
    const { exitCode } = await runInContainer(spec({ argv: ['sh', '-c', script], ...overrides }), { stdout, stderr });
    return { exitCode, stdout: stdout.text, stderr: stderr.text };
  };
  return { spec, sh };
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The host's network interfaces, sorted, as its /proc/net/dev lists them. */
export async function hostInterfaces(): Promise<string[]> {
  return (await readFile('/proc/net/dev', 'utf8'))
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean)
    .sort();
}
