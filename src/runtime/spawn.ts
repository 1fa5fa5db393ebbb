// A child process with node:child_process alone. The helper is started several times per build
// step (mount, run, umount, walk); execa costs ~70 ms of module loading on every tsbuild start,
// more than all those calls together, so the hot path does without it.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface Exited {
  /** Undefined when the process could not be started or died by a signal. */
  readonly exitCode: number | undefined;
  readonly signal?: string;
  /** The spawn error's code (ENOENT, EACCES...), when it could not be started. */
  readonly code?: string;
  readonly originalMessage?: string;
}

/** Resolves once `child` has exited and its stdio are closed; never rejects. */
export function exited(child: ChildProcess): Promise<Exited> {
  return new Promise((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve({ exitCode: undefined, ...(err.code !== undefined ? { code: err.code } : {}), originalMessage: err.message });
    });
    child.once('close', (code, signal) => {
      resolve(code === null ? { exitCode: undefined, ...(signal ? { signal } : {}) } : { exitCode: code });
    });
  });
}

/** Everything a stream says, as text (utf8), once it ends. */
export function collect(stream: NodeJS.ReadableStream | null | undefined): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export interface Finished extends Exited {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args` to completion with its output buffered; `input` is written to its stdin. */
export async function runBuffered(file: string, args: readonly string[], input?: Uint8Array): Promise<Finished> {
  const stdio: StdioOptions = [input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  const child = spawn(file, args, { stdio });
  const done = exited(child);
  const [stdout, stderr] = [collect(child.stdout), collect(child.stderr)];
  if (input !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE when the process exits without reading: its exit says why
    child.stdin.end(input);
  }
  const result = await done;
  return { ...result, stdout: await stdout, stderr: await stderr };
}
