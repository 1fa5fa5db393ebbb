// What the kill -9 tests share: a seeded generator for the kill points (printed, so a failing
// sequence can be replayed) and a runner that starts tsbuild in its own process group and kills
// the whole group.
import { spawn } from 'node:child_process';
import { CLI, REPO } from '../helpers/tsbuild.js';

/** mulberry32: a small seeded generator, so a failing sequence of kill points can be replayed. */
export function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Outcome {
  readonly killed: boolean;
  readonly ms: number;
}

/**
 * Runs tsbuild in its own process group; with `killAfter`, sends SIGKILL to the whole group
 * (tsbuild, its helpers, the step's processes) after that many milliseconds, unless it ended first.
 */
export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  killAfter?: number | ((kill: () => void) => () => void),
  nodeArgs: readonly string[] = [CLI],
): Promise<Outcome & { code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('node', [...nodeArgs, ...args], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, TSBUILD_ROOT: '' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    let killed = false;
    const kill = (): void => {
      if (killed || child.exitCode !== null) return;
      killed = true;
      process.kill(-child.pid!, 'SIGKILL');
    };
    // A number: kill after that many ms; a function: it arms its own trigger and returns its disarm.
    let disarm: () => void = () => {};
    if (typeof killAfter === 'number') {
      const timer = setTimeout(kill, killAfter);
      disarm = () => clearTimeout(timer);
    } else if (killAfter) {
      disarm = killAfter(kill);
    }
    child.on('error', reject);
    child.on('close', (code) => {
      disarm();
      resolve({ killed, ms: Date.now() - started, code, output });
    });
  });
}

/** A PID no process has now, well away from the ones being handed out. */
