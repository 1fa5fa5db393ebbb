import { runContainer } from '../../src/container/run.js';
import { minArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: "Run a command in a throwaway container of IMAGE; its exit code becomes tsbuild's",
  options: {
    rm: { type: 'boolean' },
    network: { type: 'string' },
    env: { type: 'string', short: 'e', multiple: true },
    workdir: { type: 'string', short: 'w' },
    user: { type: 'string', short: 'u' },
    entrypoint: { type: 'string' },
  },
  optionHelp: [
    '      --rm                     Remove the container when it exits (always done; accepted for docker compatibility)',
    '      --network MODE           host (default) or none',
    "  -e, --env KEY=VALUE          Set an environment variable (repeatable; KEY alone takes the host's value)",
    '  -w, --workdir DIR            Working directory inside the container',
    '  -u, --user USER[:GROUP]      Username or UID',
    '      --entrypoint CMD         Overwrite the default ENTRYPOINT of the image',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv, { allowPositionalsAfterFirst: true });
  if (!args) return 0;
  minArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const network = v.network ?? 'host';
  if (network !== 'host' && network !== 'none') throw usageError(`unsupported --network ${network}: use host or none`);
  const env = (v.env ?? []).flatMap((kv) => (kv.includes('=') ? [kv] : process.env[kv] !== undefined ? [`${kv}=${process.env[kv]}`] : []));
  const [image, ...cmd] = args.positionals[0] === '--' ? args.positionals.slice(1) : args.positionals;
  const store = await Store.open(await storeOptions(v));
  const signals = abortOnSignals();
  try {
    const code = await runContainer(store, {
      image: await store.resolveImage(image!),
      cmd: cmd[0] === '--' ? cmd.slice(1) : cmd,
      env,
      network,
      signal: signals.signal,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(v.workdir !== undefined ? { workdir: v.workdir } : {}),
      ...(v.user !== undefined ? { user: v.user } : {}),
      ...(v.entrypoint !== undefined ? { entrypoint: v.entrypoint } : {}),
    });
    return signals.exitCode() ?? code;
  } catch (err) {
    // Stopped by a signal: the container is gone and cleaned up; exit as a shell expects.
    const code = signals.exitCode();
    if (code !== undefined) return code;
    throw err;
  } finally {
    signals.dispose();
  }
}
