// Every command: its name, its one-line summary for `tsbuild --help`, and how to load it (each
// behind its own import(), so that a command loads only its own code), and docker's `image`
// management command, whose subcommands are the commands here under docker's names.
import { didYouMean } from '../src/suggest.js';
import { usageError } from './common.js';

export type CommandModule = { run(argv: string[]): Promise<number | void> };

export interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<CommandModule>;
  /** Left out of `tsbuild --help` and of completion: a helper the completion scripts call. */
  readonly hidden?: boolean;
}

export const COMMANDS: Record<string, CommandEntry> = {
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
  image: {
    summary: "Manage images (docker's image ls, rm, inspect, history, tag, ... as the commands above)",
    load: () => import('./commands/image.js'),
  },
  completion: { summary: 'Print a shell completion script (bash, zsh or fish)', load: () => import('./commands/completion.js') },
  __complete: {
    summary: 'Completion candidates for the words of a command line',
    load: () => import('./commands/complete.js'),
    hidden: true,
  },
  version: { summary: 'Show the tsbuild version', load: () => import('./commands/version.js') },
};

const GLOBAL_WITH_VALUE = new Set(['--root', '--storage-driver']);

/** Global options may come before the command (`tsbuild --root R images`); they are passed on to it. */
export function splitGlobals(argv: string[]): { globals: string[]; rest: string[] } {
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

/** `tsbuild image SUB`: docker's image subcommands and aliases, each one of the commands above. */
export const IMAGE_COMMANDS: Readonly<Record<string, string>> = {
  build: 'build',
  history: 'history',
  import: 'import',
  inspect: 'inspect',
  load: 'load',
  ls: 'images',
  list: 'images',
  prune: 'prune',
  pull: 'pull',
  push: 'push',
  rm: 'rmi',
  remove: 'rmi',
  rmi: 'rmi',
  save: 'save',
  tag: 'tag',
};

/** The command `tsbuild image ARGS` runs, or the help text to print for `tsbuild image [--help]`. */
export function imageCommand(argv: readonly string[]): { name: string } | string {
  const sub = argv[0];
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    const names = Object.keys(IMAGE_COMMANDS).filter((s) => !['list', 'remove', 'rmi'].includes(s));
    const width = Math.max(...names.map((n) => n.length));
    return [
      'Usage:  tsbuild image COMMAND',
      '',
      'Manage images',
      '',
      'Commands:',
      ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[IMAGE_COMMANDS[n]!]!.summary}`),
      '',
      "Run 'tsbuild image COMMAND --help' for more information on a command.",
      '',
    ].join('\n');
  }
  const name = IMAGE_COMMANDS[sub];
  if (name === undefined) {
    const near = didYouMean(sub, Object.keys(IMAGE_COMMANDS), true, (c) => `"${c}"`);
    throw usageError(`unknown command "${sub}" for "tsbuild image"${near}. Run 'tsbuild image --help' for usage.`);
  }
  return { name };
}
