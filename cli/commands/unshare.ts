// `tsbuild unshare [COMMAND [ARG...]]`: a command (default: the user's shell) run as root of the
// user namespace rootless tsbuild works in, as `podman unshare` does. There, files of the store
// that a RUN gave to subordinate IDs (a `chown 1000`, a package's own user) are the user's to
// read and delete; outside they belong to IDs the user is not. TSBUILD_ROOT names the store.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { defaultRoot } from '../../src/store/store.js';
import { isRootless } from '../../src/runtime/userns.js';
import { parseCommand, usageError } from '../common.js';

const spec = {
  usage: 'unshare [COMMAND [ARG...]]',
  description: "Run a command in rootless tsbuild's user namespace (the store's files are yours there)",
  options: {},
  optionHelp: [],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv, { allowPositionalsAfterFirst: true });
  if (!args) return 0;
  // main.ts re-executed us in the namespace; root never leaves its own.
  if (!isRootless()) throw usageError('"tsbuild unshare" is for an ordinary user (rootless tsbuild): root needs no user namespace');
  const [command = process.env.SHELL || '/bin/sh', ...rest] = args.positionals;
  const root = typeof args.values.root === 'string' ? args.values.root : defaultRoot();
  const child = spawn(command, rest, { stdio: 'inherit', env: { ...process.env, TSBUILD_ROOT: root } });
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    // execvp says EACCES when a PATH directory could not be searched; a shell says not found.
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' || (err.code === 'EACCES' && !command.includes('/'))
          ? usageError(`unshare: ${command}: command not found`)
          : err,
      ),
    );
    child.once('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  // A command killed by a signal exits as a shell reports it: 128 + the signal's number.
  return signal !== null ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1);
}
