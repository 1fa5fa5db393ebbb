// Locating and invoking the native helper (native/helper/*.c), and the error it raises.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../errors.js';
import { runBuffered } from './spawn.js';

let packageRootCache: string | undefined;

/**
 * The directory holding tsbuild's package.json. This module runs from src/runtime (tests,
 * through ts-jest), from dist/src/runtime (compiled) and from dist/bin (the bundle, whose own
 * package.json only says its entry is CommonJS), so walk up instead of assuming a depth.
 */
function packageRoot(): string {
  if (packageRootCache !== undefined) return packageRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!isPackageRoot(dir)) {
    const parent = dirname(dir);
    if (parent === dir) throw new TsbuildError(`cannot find tsbuild's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  packageRootCache = dir;
  return dir;
}

function isPackageRoot(dir: string): boolean {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return false;
  return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'tsbuild';
}

/** The helper binary: $TSBUILD_HELPER if set, else native/out/tsbuild-helper in the package. */
export function helperPath(): string {
  return process.env.TSBUILD_HELPER || join(packageRoot(), 'native', 'out', 'tsbuild-helper');
}

/** The helper could not do what it was asked (bad mount, unreadable tree, namespace setup failure...). */
export class HelperError extends TsbuildError {
  /** The full command line: the helper binary and its arguments. */
  readonly command: readonly string[];
  /** Undefined when the helper could not be started or was killed by a signal. */
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(message: string, details: { command: readonly string[]; exitCode?: number; stderr?: string }, options?: { cause?: unknown }) {
    super(message, options);
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr ?? '';
  }
}

/** The helper's own last line ("tsbuild-helper: mount ...: Invalid argument") is the best summary. */
function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim();
}

export interface HelperOutcome {
  readonly command: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run the helper to completion with buffered output. Resolves with any exit code (some
 * subcommands answer with it); rejects only if the helper could not run or died by a signal.
 */
export async function invokeHelper(args: readonly string[], options: { input?: Uint8Array } = {}): Promise<HelperOutcome> {
  const file = helperPath();
  const command = [file, ...args];
  const result = await runBuffered(file, args, options.input);
  const { stdout, stderr } = result;
  if (result.exitCode === undefined) throw notRunning(command, result, stderr);
  return { command, exitCode: result.exitCode, stdout, stderr };
}

/** Like invokeHelper, but any non-zero exit is a HelperError. */
export async function runHelper(args: readonly string[], options: { input?: Uint8Array } = {}): Promise<HelperOutcome> {
  const outcome = await invokeHelper(args, options);
  if (outcome.exitCode !== 0) throw failed(outcome);
  return outcome;
}

/** The error for a helper that exited non-zero, worded by the helper itself when it said something. */
export function failed(outcome: { command: readonly string[]; exitCode: number; stderr: string }, said?: string): HelperError {
  const message =
    said?.trim() || lastLine(outcome.stderr) || `${outcome.command.slice(0, 2).join(' ')} exited with status ${outcome.exitCode}`;
  return new HelperError(message, outcome);
}

/** The error for a helper that never ran (missing binary) or was killed by a signal. */
export function notRunning(
  command: readonly string[],
  result: { code?: string; signal?: string; originalMessage?: string; shortMessage?: string },
  stderr: string,
): HelperError {
  const binary = command[0] ?? 'tsbuild-helper';
  if (result.code === 'ENOENT') {
    return new HelperError(
      `tsbuild-helper not found at ${binary}: run \`npm run build:helper\` or set TSBUILD_HELPER`,
      { command, stderr },
      { cause: result },
    );
  }
  if (result.signal !== undefined) {
    return new HelperError(`${command.slice(0, 2).join(' ')} was killed by ${result.signal}`, { command, stderr });
  }
  return new HelperError(
    `cannot run ${binary}: ${result.originalMessage ?? result.shortMessage ?? 'unknown error'}`,
    { command, stderr },
    { cause: result },
  );
}
