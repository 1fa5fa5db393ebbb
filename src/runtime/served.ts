// mount and umount through one long-lived `tsbuild-helper serve` process (native/helper/serve.c)
// instead of a helper launch per call: a launch from Node forks the whole Node process and
// costs several milliseconds, and every RUN or COPY step mounts and unmounts its root
// filesystem. A request goes on a helper's stdin; the answer is the exit status and stderr
// that the same subcommand run on its own would have given, so callers see the same
// HelperError either way.
//
// Each process answers one request at a time, and a request that finds them all busy starts
// another: calls overlap as separate launches did (an overlay's unmount syncs its upper
// filesystem and can take a second, which a mount made meanwhile must not wait for). A build
// step after step needs one. Between requests they do not keep Node's event loop alive; when
// tsbuild exits or is killed, their stdin closes and they exit. One that dies fails the request
// it was running; its next request starts it again.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { failed, helperPath, HelperError, type HelperOutcome } from './binary.js';

type Unrefable = { ref?(): void; unref?(): void };

interface Pending {
  readonly command: readonly string[];
  resolve(outcome: HelperOutcome): void;
  reject(err: Error): void;
}

class HelperServer {
  private child: ChildProcess | undefined;
  private buffered = Buffer.alloc(0);
  private pending: Pending | undefined;

  /** Whether a request is in flight. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(helperPath(), ['serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout!.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.answer();
    });
    const broken = (why: string): void => {
      if (this.child !== child) return;
      this.child = undefined;
      this.buffered = Buffer.alloc(0);
      const p = this.pending;
      this.pending = undefined;
      p?.reject(new HelperError(stderr.trim().split('\n').at(-1) || why, { command: p.command, stderr }));
    };
    child.on('error', (err) => broken(`cannot run tsbuild-helper: ${err.message} (run \`npm run build:helper\`)`));
    child.on('exit', (code, signal) => broken(`tsbuild-helper serve exited (${signal ?? `status ${code}`})`));
    child.stdin!.on('error', () => undefined); // EPIPE once it died: its exit says why
    this.child = child;
    this.idle(child);
    return child;
  }

  /** Parses "STATUS LEN\n" + LEN bytes of stderr, once all of it has arrived. */
  private answer(): void {
    const nl = this.buffered.indexOf(0x0a);
    if (nl < 0) return;
    const [status, length] = this.buffered.subarray(0, nl).toString('latin1').split(' ').map(Number);
    if (this.buffered.length < nl + 1 + length!) return;
    const stderr = this.buffered.subarray(nl + 1, nl + 1 + length!).toString('utf8');
    this.buffered = this.buffered.subarray(nl + 1 + length!);
    const p = this.pending;
    this.pending = undefined;
    if (this.child) this.idle(this.child);
    p?.resolve({ command: p.command, exitCode: status!, stdout: '', stderr });
  }

  private idle(child: ChildProcess): void {
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (Unrefable | null)[]) s?.unref?.();
  }

  private hold(child: ChildProcess): void {
    child.ref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (Unrefable | null)[]) s?.ref?.();
  }

  /** Runs `args` (mount or umount and its arguments) as `tsbuild-helper ARGS` would; one at a time. */
  invoke(args: readonly string[]): Promise<HelperOutcome> {
    const command = [helperPath(), ...args];
    return new Promise<HelperOutcome>((resolve, reject) => {
      const child = this.start();
      this.hold(child);
      this.pending = { command, resolve, reject };
      const parts = [Buffer.from(`${args.length}\n`)];
      for (const a of args) parts.push(Buffer.from(a), Buffer.alloc(1));
      (child.stdin as Writable).write(Buffer.concat(parts));
    });
  }
}

const pool: HelperServer[] = [];

/** Like runHelper: any non-zero exit is a HelperError worded by the helper. */
export async function runServed(args: readonly string[]): Promise<HelperOutcome> {
  let server = pool.find((s) => !s.busy);
  if (server === undefined) pool.push((server = new HelperServer()));
  const outcome = await server.invoke(args);
  if (outcome.exitCode !== 0) throw failed(outcome);
  return outcome;
}
