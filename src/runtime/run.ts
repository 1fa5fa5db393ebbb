// Running one build step, or `tsbuild run`'s command, in its own namespaces through
// `tsbuild-helper run`.
//
// Standard input is /dev/null unless the caller gives a stream (`tsbuild run -i`), whose end
// closes the command's stdin. With a terminal (`tsbuild run -t`) the helper gives the command a
// pseudo-terminal and copies between it and our pipes (native/helper/stdio.c); the window size
// goes at the start on its command line and later on a pipe of its own, one "ROWS COLS" line
// per change.
//
// Secrets (secret mounts and secret environment variables) never go on the helper's command
// line, which every user can read in /proc/PID/cmdline, nor in its environment: each gets a
// pipe of its own, an extra entry of the child's stdio, and the helper reads it to the end
// before the container starts.
import { spawn, type StdioOptions } from 'node:child_process';
import type { Writable } from 'node:stream';
import { InvalidInputError } from '../errors.js';
import { failed, helperPath, notRunning } from './binary.js';
import { collect, exited } from './spawn.js';
import type { RunSpec, StepMount } from './types.js';

export interface RunIO {
  /** Where the step's stdout and stderr go, as they are produced. Omitted: discarded. */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** Aborting kills the step (every process in it) and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** The command's stdin (docker run -i); omitted: /dev/null. Its end closes the command's stdin. */
  readonly stdin?: NodeJS.ReadableStream;
  /** A pseudo-terminal as the command's stdin, stdout and stderr (docker run -t); its output all arrives on `stdout`. */
  readonly terminal?: TerminalIO;
}

export interface WindowSize {
  readonly rows: number;
  readonly columns: number;
}

export interface TerminalIO {
  /** The size at the start; omitted: 0 rows, 0 columns, as Docker's when its output is no terminal. */
  readonly size?: WindowSize;
  /** Calls `listener` with every later size until the function it returns is called. */
  readonly watch?: (listener: (size: WindowSize) => void) => () => void;
}

/** The helper reports a setup failure on this descriptor, apart from the command's own stderr. */
const STATUS_FD = 3;
/** Secrets are written to the descriptors after the status one, in the order of the command line. */
const FIRST_SECRET_FD = STATUS_FD + 1;
/** The helper's exit status for "the container could not be set up". */
const EXIT_SETUP_FAILED = 125;

const MAX_ID = 2 ** 32 - 2;

function checkId(what: string, id: number): string {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new InvalidInputError(`${what} ${id}: not a valid id`);
  return String(id);
}

/** The helper splits its mount arguments at ':'; a target cannot contain one. */
function checkTarget(what: string, target: string | undefined): string {
  if (target === undefined || !target.startsWith('/') || target.includes(':')) {
    throw new InvalidInputError(`run: ${what} target ${target} must be an absolute path without ':'`);
  }
  return target;
}

function bindArg(source: string, target: string | undefined, readonly: boolean | undefined): string {
  checkTarget('bind', target);
  if (!source.startsWith('/')) throw new InvalidInputError(`run: bind source ${source} is not absolute`);
  return `${source}:${target}${readonly ? ':ro' : ''}`;
}

/** The helper's arguments for one step mount; a secret's bytes join SECRETS, its pipe is named by number. */
function mountArgs(mount: StepMount, secrets: Buffer[]): string[] {
  switch (mount.type) {
    case 'bind':
      return ['--bind', bindArg(mount.source, mount.target, mount.readonly)];
    case 'tmpfs': {
      const target = checkTarget('tmpfs', mount.target);
      if (mount.sizeBytes !== undefined && (!Number.isSafeInteger(mount.sizeBytes) || mount.sizeBytes < 1)) {
        throw new InvalidInputError(`run: tmpfs size ${mount.sizeBytes} for ${target} must be a whole number of bytes, at least 1`);
      }
      if (mount.mode !== undefined && (!Number.isInteger(mount.mode) || mount.mode < 0 || mount.mode > 0o7777)) {
        throw new InvalidInputError(`run: tmpfs mode ${mount.mode} for ${target} is not a file mode`);
      }
      const size = mount.sizeBytes === undefined ? '' : `:${mount.sizeBytes}`;
      const mode = mount.mode === undefined ? '' : `${size === '' ? ':' : ''}:${mount.mode.toString(8)}`;
      return ['--tmpfs', `${target}${size}${mode}`];
    }
    case 'secret': {
      const target = checkTarget('secret', mount.target);
      if (!Number.isInteger(mount.mode) || mount.mode < 0 || mount.mode > 0o7777) {
        throw new InvalidInputError(`run: secret mode ${mount.mode} for ${target} is not a file mode`);
      }
      const fd = FIRST_SECRET_FD + secrets.push(mount.data) - 1;
      const owner = `${checkId('secret uid', mount.uid)}:${checkId('secret gid', mount.gid)}`;
      return ['--secret-file', `${fd}:${target}:${mount.mode.toString(8).padStart(4, '0')}:${owner}`];
    }
  }
}

function sizeText(size: WindowSize | undefined, sep: string): string {
  const clamp = (n: number): number => (Number.isInteger(n) && n > 0 ? Math.min(n, 0xffff) : 0);
  return size ? `${clamp(size.rows)}${sep}${clamp(size.columns)}` : `0${sep}0`;
}

/**
 * The helper's command line for SPEC, and the secrets to write to descriptors FIRST_SECRET_FD,
 * FIRST_SECRET_FD+1...; with a terminal, its size changes go to the descriptor after the secrets.
 */
function invocation(spec: RunSpec, terminal?: TerminalIO): { args: string[]; secrets: Buffer[] } {
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
  if (spec.privileged) args.push('--privileged');
  for (const entry of spec.env) args.push('--env', entry);
  // The init files first, then the step's mounts in their order: the helper applies them as listed.
  for (const bind of spec.binds) args.push('--bind', bindArg(bind.source, bind.target, bind.readonly));
  const secrets: Buffer[] = [];
  for (const mount of spec.mounts ?? []) args.push(...mountArgs(mount, secrets));
  for (const { name, value } of spec.secretEnv ?? []) {
    args.push('--secret-env', `${FIRST_SECRET_FD + secrets.push(value) - 1}:${name}`);
  }
  if (terminal) {
    args.push('--tty', '--winsize', sizeText(terminal.size, ':'));
    if (terminal.watch) args.push('--winsize-fd', String(FIRST_SECRET_FD + secrets.length));
  }
  args.push('--', ...spec.argv);
  return { args, secrets };
}

/** The helper's command line for SPEC. Exported for tests and debugging output; it never holds a secret. */
export function runArgs(spec: RunSpec): string[] {
  return invocation(spec).args;
}

/**
 * Run SPEC like `docker build` runs a RUN instruction. Resolves with the command's exit code
 * (128+N if signal N killed it): a failing command is a result, not an exception. Rejects
 * with a HelperError if the container could not be set up, and with `signal.reason` if
 * aborted, once every process of the step is gone.
 */
export async function runInContainer(spec: RunSpec, io: RunIO = {}): Promise<{ exitCode: number }> {
  const { args, secrets } = invocation(spec, io.terminal);
  io.signal?.throwIfAborted();
  const file = helperPath();
  const watch = io.terminal?.watch;
  const stdio: StdioOptions = [
    io.stdin ? 'pipe' : 'ignore',
    io.stdout ? 'pipe' : 'ignore',
    io.stderr ? 'pipe' : 'ignore',
    'pipe',
    ...secrets.map(() => 'pipe' as const),
    ...(watch ? ['pipe' as const] : []),
  ];
  const child = spawn(file, args, { stdio });
  const done = exited(child);
  if (io.stdin && child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE once the command stops reading
    io.stdin.pipe(child.stdin);
  }
  let unwatch: (() => void) | undefined;
  if (watch) {
    const sizes = child.stdio[FIRST_SECRET_FD + secrets.length] as Writable;
    sizes.on('error', () => undefined);
    unwatch = watch((size) => sizes.write(`${sizeText(size, ' ')}\n`));
  }
  secrets.forEach((data, i) => {
    const pipe = child.stdio[FIRST_SECRET_FD + i] as Writable | null | undefined;
    // EPIPE when the helper exits before reading (a bad rootfs, say): its status says why.
    pipe?.on('error', () => undefined);
    pipe?.end(data);
  });
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
    unwatch?.();
    // The caller's stdin (often process.stdin) outlives the command: let go of it.
    if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
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
