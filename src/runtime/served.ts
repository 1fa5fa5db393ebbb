// mount, umount, walk and stamp through one long-lived `tsbuild-helper serve` process
// (native/helper/serve.c) instead of a helper launch per call: a launch from Node forks the
// whole Node process and costs several milliseconds, and every RUN or COPY step mounts and
// unmounts its root filesystem and walks its upper directory. A request goes on a helper's
// stdin; the answer is the exit status and stderr that the same subcommand run on its own would
// have given, so callers see the same HelperError either way. A walk's stdout arrives before
// the answer, in data frames, and is streamed to its caller.
//
// Each process answers one request at a time, and a request that finds them all busy starts
// another: calls overlap as separate launches did (on a kernel older than 5.10, which has no
// `volatile`, an overlay's unmount syncs its upper filesystem and can take a second, which a
// mount made meanwhile must not wait for). A build step after step needs one. Between requests
// they do not keep Node's event loop alive; when tsbuild exits or is killed, their stdin closes
// and they exit. One that dies fails the request it was running; its next request starts it
// again.
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { failed, helperPath, HelperError, type HelperOutcome } from './binary.js';

type Unrefable = { ref?(): void; unref?(): void };

interface Pending {
  readonly command: readonly string[];
  /** Where a streaming request's stdout goes; false asks for a pause until `resumeOutput`. */
  readonly data?: (chunk: Buffer) => boolean;
  resolve(outcome: HelperOutcome): void;
  reject(err: Error): void;
}

class HelperServer {
  private child: ChildProcess | undefined;
  private buffered: Buffer = Buffer.alloc(0);
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
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.parse();
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

  /**
   * Parses what has arrived: data frames ("D LEN\n" + LEN bytes of a walk's stdout) and the
   * answer ("STATUS LEN\n" + LEN bytes of stderr), each once all of it is here.
   */
  private parse(): void {
    for (;;) {
      const nl = this.buffered.indexOf(0x0a);
      if (nl < 0) return;
      const head = this.buffered.subarray(0, nl).toString('latin1');
      const data = head.startsWith('D ');
      const [status, length] = (data ? ['0', head.slice(2)] : head.split(' ')).map(Number);
      if (this.buffered.length < nl + 1 + length!) return;
      const body = this.buffered.subarray(nl + 1, nl + 1 + length!);
      this.buffered = this.buffered.subarray(nl + 1 + length!);
      const p = this.pending;
      if (data) {
        if (p?.data?.(body) === false) this.child?.stdout?.pause();
        continue;
      }
      this.pending = undefined;
      if (this.child) this.idle(this.child);
      p?.resolve({ command: p.command, exitCode: status!, stdout: '', stderr: body.toString('utf8') });
    }
  }

  /** Reads the helper's output again after a streaming request's reader paused it. */
  resumeOutput(): void {
    this.child?.stdout?.resume();
  }

  /** Ends the helper, and with it the request `p` if that is the one running (a walk no one reads). */
  stop(p: Pending): void {
    if (this.pending === p) this.child?.kill('SIGKILL');
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
  invoke(args: readonly string[], data?: Pending['data']): { pending: Pending; outcome: Promise<HelperOutcome> } {
    const command = [helperPath(), ...args];
    let pending!: Pending;
    const outcome = new Promise<HelperOutcome>((resolve, reject) => {
      const child = this.start();
      this.hold(child);
      this.pending = pending = { command, ...(data ? { data } : {}), resolve, reject };
      const parts = [Buffer.from(`${args.length}\n`)];
      for (const a of args) parts.push(Buffer.from(a), Buffer.alloc(1));
      (child.stdin as Writable).write(Buffer.concat(parts));
    });
    return { pending, outcome };
  }
}

const pool: HelperServer[] = [];

function idleServer(): HelperServer {
  let server = pool.find((s) => !s.busy);
  if (server === undefined) pool.push((server = new HelperServer()));
  return server;
}

/** Like runHelper: any non-zero exit is a HelperError worded by the helper. */
export async function runServed(args: readonly string[]): Promise<HelperOutcome> {
  const outcome = await idleServer().invoke(args).outcome;
  if (outcome.exitCode !== 0) throw failed(outcome);
  return outcome;
}

/** A served request whose stdout is streamed: a walk or a stamp. */
export interface ServedStream {
  /** The subcommand's stdout; ends when it has exited, is cut short if the helper could not answer. */
  readonly stdout: Readable;
  /** Its exit status and stderr (any status resolves); rejects if the helper could not answer. */
  readonly outcome: Promise<HelperOutcome>;
  /** Ends the subcommand now (its output is no longer wanted); nothing if it has already ended. */
  stop(): void;
}

export function streamServed(args: readonly string[]): ServedStream {
  const server = idleServer();
  const stdout = new PassThrough({ highWaterMark: 1 << 20 });
  const { pending, outcome } = server.invoke(args, (chunk) => stdout.write(chunk));
  stdout.on('drain', () => server.resumeOutput());
  // A helper that could not answer cuts the output short; the outcome says why (its caller may
  // have stopped reading already, and an 'error' with no one listening would be thrown).
  outcome.then(
    () => stdout.end(),
    () => stdout.destroy(),
  );
  return { stdout, outcome, stop: () => server.stop(pending) };
}
