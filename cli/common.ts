// What every command shares: global options, opening the store, and error rendering.
import { didYouMean } from '../src/suggest.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TsbuildError } from '../src/errors.js';
import { parsePlatform, type Platform } from '../src/image/platform.js';
import { oneLine } from './terminal.js';
import type { StoreOptions } from '../src/store/store.js';
import type { DriverRequest } from '../src/snapshot/choose.js';

export { VERSION } from './version.js';

/** A mistake in how a command was called: printed with the command's usage hint. */
export class UsageError extends TsbuildError {}

export function usageError(message: string): UsageError {
  return new UsageError(message);
}

/** `--platform OS/ARCH[/VARIANT]`: which image of a multi-platform image; a bad value is a usage error. */
export function platformOption(value: unknown): Platform | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return parsePlatform(value);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

/** Prints an error as one line (two for usage mistakes) and returns the exit code. */
export function fail(err: unknown): number {
  if (err instanceof TsbuildError) {
    process.stderr.write(`Error: ${oneLine(err.message)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') {
    // Node's words ("ENOSPC: no space left on device, write") name neither what nor where.
    const where = e.path ? ` writing ${oneLine(e.path)}` : '';
    process.stderr.write(`Error: no space left on device${where}: a disk this command writes to is full\n`);
    return 1;
  }
  process.stderr.write(`Error: ${oneLine(e?.message ?? String(err))}\n`);
  if (process.env.TSBUILD_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 1;
}

const GLOBAL_OPTIONS = {
  root: { type: 'string' },
  'storage-driver': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

/** The parsed value of each option, typed from its declaration. */
export type OptionValues<O extends Options> = {
  -readonly [K in keyof O]?: O[K] extends { type: 'string'; multiple: true }
    ? string[]
    : O[K] extends { type: 'string' }
      ? string
      : O[K] extends { type: 'boolean' }
        ? boolean
        : never;
};

export interface CommandSpec<O extends Options> {
  readonly usage: string;
  readonly description: string;
  readonly options: O;
  /** Help lines for the options, already formatted. */
  readonly optionHelp: readonly string[];
}

export function helpText(spec: { usage: string; description: string; optionHelp: readonly string[] }): string {
  return [
    `Usage:  tsbuild ${spec.usage}`,
    '',
    spec.description,
    '',
    'Options:',
    ...spec.optionHelp,
    '      --root DIR               Store root (default $TSBUILD_ROOT, else /var/lib/tsbuild for root',
    '                               and ~/.local/share/tsbuild for other users)',
    '      --storage-driver NAME    overlay2, vfs or fuse-overlayfs (overlay2 mounted by fuse-overlayfs)',
    '  -h, --help                   Print usage',
  ].join('\n');
}

/** Set while specOf() asks a command for its spec: parseCommand hands the spec over and stops. */
let specSink: ((spec: CommandSpec<Options>) => void) | undefined;

/**
 * The spec a command parses its arguments with, for shell completion (cli/complete.ts): the
 * command runs until its parseCommand call, which returns undefined as for --help, so that its
 * options are read from the very object that parses them, with nothing run or printed.
 */
export async function specOf(run: (argv: string[]) => Promise<unknown>): Promise<CommandSpec<Options> | undefined> {
  let found: CommandSpec<Options> | undefined;
  specSink = (spec) => (found = spec);
  try {
    await run([]);
  } finally {
    specSink = undefined;
  }
  return found;
}

/** The options every command takes besides its own. */
export const globalOptions: Options = GLOBAL_OPTIONS;

/**
 * Parses a command's arguments (its own options plus the global ones). Returns undefined after
 * printing help for -h.
 */
export function parseCommand<O extends Options>(
  spec: CommandSpec<O>,
  argv: string[],
  opts: { allowPositionalsAfterFirst?: boolean } = {},
): { values: OptionValues<O & typeof GLOBAL_OPTIONS>; positionals: string[] } | undefined {
  if (specSink) {
    specSink(spec);
    return undefined;
  }
  const options = { ...spec.options, ...GLOBAL_OPTIONS };
  let args = argv;
  let trailing: string[] = [];
  if (opts.allowPositionalsAfterFirst) {
    // `tsbuild run IMAGE CMD --flag`: everything after the first positional belongs to CMD.
    const split = firstPositional(argv, options);
    if (split >= 0) {
      args = argv.slice(0, split + 1);
      trailing = argv.slice(split + 1);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify.*$/s, '');
    // parseArgs says "Unknown option '--no-cahce'": name the flag it was meant to be.
    const unknown = /^Unknown option '(--?[^'=]+)/.exec(message)?.[1];
    const flags = Object.entries(options).flatMap(([long, o]) => [`--${long}`, ...('short' in o && o.short ? [`-${o.short}`] : [])]);
    const near = unknown ? didYouMean(unknown, flags) : '';
    throw usageError(`${message}${near}. See 'tsbuild ${spec.usage.split(' ')[0]} --help'.`);
  }
  const values = parsed.values as OptionValues<O & typeof GLOBAL_OPTIONS>;
  if (values.help) {
    process.stdout.write(`${helpText(spec)}\n`);
    return undefined;
  }
  return { values, positionals: [...parsed.positionals, ...trailing] };
}

function firstPositional(argv: string[], options: Options): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i;
    if (!a.startsWith('-') || a === '-') return i;
    if (a.includes('=')) continue;
    const name = a.startsWith('--') ? a.slice(2) : Object.entries(options).find(([, o]) => o.short === a.slice(1))?.[0];
    if (name && options[name]?.type === 'string') i++;
  }
  return -1;
}

/**
 * The store --root and --storage-driver ask for. Commands import the Store statically, so that
 * its modules load in the one batch Node loads at start with the command's own: a module
 * imported in the middle of a run costs more.
 */
export async function storeOptions(values: { root?: unknown; 'storage-driver'?: unknown }): Promise<StoreOptions> {
  const driver = values['storage-driver'];
  if (driver !== undefined) {
    const { isDriverRequest } = await import('../src/snapshot/choose.js');
    if (typeof driver !== 'string' || !isDriverRequest(driver))
      throw usageError(`unknown storage driver "${String(driver)}": use overlay2, vfs or fuse-overlayfs`);
  }
  return {
    ...(typeof values.root === 'string' ? { root: values.root } : {}),
    ...(driver !== undefined ? { driver: driver as DriverRequest } : {}),
  };
}

export function exactArgs(positionals: string[], n: number, usage: string): void {
  if (positionals.length !== n) {
    throw usageError(`"tsbuild ${usage.split(' ')[0]}" requires exactly ${n} argument${n === 1 ? '' : 's'}. Usage: tsbuild ${usage}`);
  }
}

export function minArgs(positionals: string[], n: number, usage: string): void {
  if (positionals.length < n) {
    throw usageError(`"tsbuild ${usage.split(' ')[0]}" requires at least ${n} argument${n === 1 ? '' : 's'}. Usage: tsbuild ${usage}`);
  }
}
