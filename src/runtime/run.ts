// Running one build step in its own namespaces through `tsbuild-helper run`.
import { spawn } from 'node:child_process';
import { InvalidInputError } from '../errors.js';
import { failed, helperPath, notRunning } from './binary.js';
import { collect, exited } from './spawn.js';
import type { RunSpec } from './types.js';

export interface RunIO {
  /** Where the step's stdout and stderr go, as they are produced. Omitted: discarded. */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** Aborting kills the step (every process in it) and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The helper reports a setup failure on this descriptor, apart from the command's own stderr. */
const STATUS_FD = 3;
/** The helper's exit status for "the container could not be set up". */
const EXIT_SETUP_FAILED = 125;

const MAX_ID = 2 ** 32 - 2;

function checkId(what: string, id: number): string {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new InvalidInputError(`${what} ${id}: not a valid id`);
  return String(id);
}

/** The helper's command line for SPEC. Exported for tests and debugging output. */
export function runArgs(spec: RunSpec): string[] {
  if (spec.argv.length === 0) throw new InvalidInputError('run: empty command');
  if (!spec.cwd.startsWith('/')) throw new InvalidInputError(`run: working directory ${spec.cwd} is not absolute`);
  const args = [
    'run',
    '--status-fd',
    String(STATUS_FD),
    '--rootfs',
    spec.rootfs,
    '--cwd',
    spec.cwd,
    '--uid',
    checkId('uid', spec.uid),
    '--gid',
    checkId('gid', spec.gid),
    '--groups',
    spec.groups.map((g) => checkId('group', g)).join(','),
    '--hostname',
    spec.hostname,
    '--network',
    spec.network,
  ];
  for (const entry of spec.env) args.push('--env', entry);
  for (const bind of spec.binds) {
    // The helper splits SOURCE:TARGET at the last colon; a target cannot contain one.
    if (bind.target === undefined || !bind.target.startsWith('/') || bind.target.includes(':')) {
      throw new InvalidInputError(`run: bind target ${bind.target} must be an absolute path without ':'`);
    }
    if (!bind.source.startsWith('/')) throw new InvalidInputError(`run: bind source ${bind.source} is not absolute`);
    args.push('--bind', `${bind.source}:${bind.target}${bind.readonly ? ':ro' : ''}`);
  }
  args.push('--', ...spec.argv);
  return args;
}

/**
 * Run SPEC like `docker build` runs a RUN instruction. Resolves with the command's exit code
 * (128+N if signal N killed it): a failing command is a result, not an exception. Rejects
 * with a HelperError if the container could not be set up, and with `signal.reason` if
 * aborted, once every process of the step is gone.
 */
export async function runInContainer(spec: RunSpec, io: RunIO = {}): Promise<{ exitCode: number }> {
  const args = runArgs(spec);
  io.signal?.throwIfAborted();
  const file = helperPath();
  const child = spawn(file, args, { stdio: ['ignore', io.stdout ? 'pipe' : 'ignore', io.stderr ? 'pipe' : 'ignore', 'pipe'] });
  const done = exited(child);
  // Output is streamed to the caller, never accumulated; only the status line is kept.
  const statusText = collect(child.stdio[STATUS_FD] as NodeJS.ReadableStream | null);
  // end: false: the caller's streams (often process.stdout) outlive the step.
  if (io.stdout) child.stdout?.pipe(io.stdout, { end: false });
  if (io.stderr) child.stderr?.pipe(io.stderr, { end: false });

  // SIGTERM to the helper, which SIGKILLs the namespace's PID 1; the kernel kills the rest.
  const onAbort = (): void => {
    child.kill('SIGTERM');
  };
  io.signal?.addEventListener('abort', onAbort, { once: true });
  let result;
  try {
    result = await done;
  } finally {
    io.signal?.removeEventListener('abort', onAbort);
  }
  if (io.signal?.aborted) throw io.signal.reason;

  const command = [file, ...args];
  const status = await statusText;
  if (result.exitCode === undefined) throw notRunning(command, result, status);
  if (result.exitCode === EXIT_SETUP_FAILED && status.trim() !== '') {
    throw failed({ command, exitCode: result.exitCode, stderr: status }, status);
  }
  return { exitCode: result.exitCode };
}
