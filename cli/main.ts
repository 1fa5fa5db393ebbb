// tsbuild's command line, loaded by the entry point (start.ts): finds the command, loads only its
// module (start-up time matters: CI scripts call us many times), runs it, and turns any error
// into one line on stderr.
import { didYouMean } from '../src/suggest.js';
import { availableParallelism } from 'node:os';
import { TsbuildError } from '../src/errors.js';
import { fail, usageError, VERSION } from './common.js';
import { COMMANDS, splitGlobals } from './registry.js';

// libuv's pool does the asynchronous filesystem calls (big files; small ones are synchronous
// now). Two threads per core: on 2 cores, 16 threads mostly contended for the cores and
// each other (a build copying 20,000 small files spent twice the system time). Read once, when the pool first starts, which is
// after this line: the imports above do no asynchronous I/O.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() * 2));

function mainHelp(): string {
  const shown = Object.entries(COMMANDS).filter(([, c]) => !c.hidden);
  const width = Math.max(...shown.map(([name]) => name.length));
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
    ...shown.map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'tsbuild COMMAND --help' for more information on a command.",
  ].join('\n');
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
    const near = didYouMean(
      name,
      Object.keys(COMMANDS).filter((c) => !COMMANDS[c]!.hidden),
      true,
      (c) => `"${c}"`,
    );
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
