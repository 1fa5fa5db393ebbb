#!/usr/bin/env -S node --
// tsbuild's entry point: finds the command, loads only its module (start-up time matters: CI
// scripts call us many times), runs it, and turns any error into one line on stderr.
// (`node --` above: Node 20 reads `--env-file` anywhere on its command line, ours included, so
// `tsbuild run --env-file F` would be Node's unless its options end before the script;
// nodejs/node#54232.)
import { didYouMean } from '../src/suggest.js';
import { availableParallelism } from 'node:os';
import { TsbuildError } from '../src/errors.js';
import { fail, usageError, VERSION } from './common.js';

// libuv's pool does the asynchronous filesystem calls (big files; small ones are synchronous
// now). Two threads per core: on 2 cores, 16 threads mostly contended for the cores and
// each other (a build copying 20,000 small files spent twice the system time). Read once, when the pool first starts, which is
// after this line: the imports above do no asynchronous I/O.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() * 2));

type CommandModule = { run(argv: string[]): Promise<number | void> };

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  build: { summary: 'Build an image from a Dockerfile', load: () => import('./commands/build.js') },
  images: { summary: 'List images', load: () => import('./commands/images.js') },
  history: { summary: 'Show the history of an image', load: () => import('./commands/history.js') },
  analyze: {
    summary: 'Show what each layer stores and wastes, and which Dockerfile line to change',
    load: () => import('./commands/analyze.js'),
  },
  diff: { summary: 'Show the paths two images differ in (added, deleted, changed)', load: () => import('./commands/diff.js') },
  inspect: { summary: 'Display detailed information on images', load: () => import('./commands/inspect.js') },
  tag: { summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', load: () => import('./commands/tag.js') },
  rmi: { summary: 'Remove one or more images', load: () => import('./commands/rmi.js') },
  du: { summary: "Show the store's disk usage: shared and unique bytes per image, unused layers", load: () => import('./commands/du.js') },
  prune: { summary: 'Remove dangling images and the layers no image uses', load: () => import('./commands/prune.js') },
  verify: {
    summary: 'Check every layer and image of the store against its digests; --repair removes what is broken',
    load: () => import('./commands/verify.js'),
  },
  import: { summary: 'Import the contents from a tarball to create a filesystem image', load: () => import('./commands/import.js') },
  save: { summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)', load: () => import('./commands/save.js') },
  load: { summary: 'Load an image from a tar archive or STDIN', load: () => import('./commands/load.js') },
  run: { summary: 'Run a command in a throwaway container of an image', load: () => import('./commands/run.js') },
  pull: { summary: 'Download an image from a registry', load: () => import('./commands/pull.js') },
  push: { summary: 'Upload an image to a registry', load: () => import('./commands/push.js') },
  login: { summary: 'Log in to a registry', load: () => import('./commands/login.js') },
  logout: { summary: 'Log out from a registry', load: () => import('./commands/logout.js') },
  bootstrap: { summary: 'Create a base image offline (busybox from the host)', load: () => import('./commands/bootstrap.js') },
  info: { summary: 'Display store and storage driver information', load: () => import('./commands/info.js') },
  unshare: {
    summary: "Run a command in rootless tsbuild's user namespace, where the store's files are yours",
    load: () => import('./commands/unshare.js'),
  },
  version: { summary: 'Show the tsbuild version', load: () => import('./commands/version.js') },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'Usage:  tsbuild [OPTIONS] COMMAND',
    '        tsbuild -t NAME[:TAG] [BUILD OPTIONS] CONTEXT    (short for tsbuild build)',
    '',
    'A daemonless image builder for Dockerfiles.',
    '',
    'Global options (before or after the command):',
    '      --root DIR               Store root (default $TSBUILD_ROOT, else /var/lib/tsbuild for root',
    '                               and $XDG_DATA_HOME/tsbuild (~/.local/share/tsbuild) for other users)',
    '      --storage-driver NAME    overlay2, vfs or fuse-overlayfs (default: chosen like Docker)',
    '  -v, --version                Print the version and exit',
    '  -h, --help                   Print help',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'tsbuild COMMAND --help' for more information on a command.",
  ].join('\n');
}

const GLOBAL_WITH_VALUE = new Set(['--root', '--storage-driver']);

/** Global options may come before the command (`tsbuild --root R images`); they are passed on to it. */
function splitGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) {
      globals.push(a, argv[i + 1]!);
      i += 2;
    } else if ([...GLOBAL_WITH_VALUE].some((g) => a.startsWith(`${g}=`))) {
      globals.push(a);
      i += 1;
    } else break;
  }
  return { globals, rest: argv.slice(i) };
}

async function main(all: string[]): Promise<number> {
  const { globals, rest: argv } = splitGlobals(all);
  const first = argv[0];
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return first === undefined ? 1 : 0;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`tsbuild version ${VERSION}\n`);
    return 0;
  }
  let name = first;
  let rest = [...globals, ...argv.slice(1)];
  if (first.startsWith('-')) {
    // `tsbuild -t nginx .` is `tsbuild build -t nginx .`
    name = 'build';
    rest = [...globals, ...argv];
  }
  const command = COMMANDS[name];
  if (!command) {
    const near = didYouMean(name, Object.keys(COMMANDS), true, (c) => `"${c}"`);
    throw usageError(`unknown command "${name}" for "tsbuild"${near}. Run 'tsbuild --help' for usage.`);
  }
  // An ordinary user: run again as root of a user namespace of our own (src/runtime/userns.ts),
  // before anything opens a store. Loaded only then: root never pays for it.
  if (process.getuid?.() !== 0 && process.env.TSBUILD_ROOTLESS === undefined) {
    return (await import('../src/runtime/userns.js')).reexecInUserNamespace(all);
  }
  const code = await (await command.load()).run(rest);
  return typeof code === 'number' ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = fail(err);
  },
);

export { TsbuildError };
