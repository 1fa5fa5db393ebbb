// `tsbuild run`: docker run's flags read into a ContainerRequest, and the user's terminal lent
// to the container while it runs (-t): raw mode with -it, so Ctrl-C is a character the
// container's process reads, and its size followed as the user resizes it.
import { isatty } from 'node:tty';
import { runContainer } from '../../src/container/run.js';
import { parseMount, parseTmpfs, parseVolume, readEnvFile, type RunMount } from '../../src/container/run-options.js';
import { InvalidInputError, TsbuildError } from '../../src/errors.js';
import { HelperError, type TerminalIO } from '../../src/runtime/helper.js';
import { fail, minArgs, parseCommand, platformOption, storeOptions, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: "Run a command in a throwaway container of IMAGE; its exit code becomes tsbuild's",
  options: {
    interactive: { type: 'boolean', short: 'i' },
    tty: { type: 'boolean', short: 't' },
    rm: { type: 'boolean' },
    name: { type: 'string' },
    hostname: { type: 'string' },
    network: { type: 'string' },
    env: { type: 'string', short: 'e', multiple: true },
    'env-file': { type: 'string', multiple: true },
    volume: { type: 'string', short: 'v', multiple: true },
    mount: { type: 'string', multiple: true },
    tmpfs: { type: 'string', multiple: true },
    workdir: { type: 'string', short: 'w' },
    user: { type: 'string', short: 'u' },
    entrypoint: { type: 'string' },
    platform: { type: 'string' },
  },
  optionHelp: [
    '  -i, --interactive            Keep STDIN open and pass it to the container (else it reads /dev/null)',
    '  -t, --tty                    Allocate a pseudo-TTY (-it: an interactive shell; Ctrl-C goes to the container)',
    '      --rm                     Remove the container when it exits (always done; accepted for docker compatibility)',
    '      --name NAME              Name the container (checked as docker does; tsbuild keeps no container list)',
    '      --hostname NAME          Container host name (default: 12 random hex digits)',
    '      --network MODE           host (default) or none',
    "  -e, --env KEY=VALUE          Set an environment variable (repeatable; KEY alone takes the host's value)",
    '      --env-file FILE          Read environment variables from FILE (KEY=VALUE lines, # comments)',
    '  -v, --volume HOST:CTR[:ro]   Bind mount an existing host path (absolute, or starting with .)',
    '      --mount SPEC             type=bind,source=HOST,target=CTR[,readonly]',
    '                               or type=tmpfs,target=CTR[,tmpfs-size=N][,tmpfs-mode=OCTAL]',
    '      --tmpfs CTR[:OPTIONS]    Mount a tmpfs (OPTIONS: size=N, mode=OCTAL; mode 1777 by default)',
    '  -w, --workdir DIR            Working directory inside the container',
    '  -u, --user USER[:GROUP]      Username or UID',
    "      --entrypoint CMD         Overwrite the default ENTRYPOINT of the image ('' clears it)",
    "      --platform OS/ARCH       Which image of a multi-platform image (default: this machine's)",
  ],
} as const;

/** docker's rule for container names (daemon/names). */
const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The user's terminal as the container's: its size now and as it changes. Docker follows its output's size. */
function terminal(): TerminalIO {
  if (!isatty(1)) return {};
  const out = process.stdout;
  return {
    size: { rows: out.rows, columns: out.columns },
    watch: (listener) => {
      const onResize = (): void => listener({ rows: out.rows, columns: out.columns });
      out.on('resize', onResize);
      return () => void out.off('resize', onResize);
    },
  };
}

/** What docker checks before it creates the container; its errors exit 125 as docker's do. */
async function containerInput(v: { name?: string; volume?: string[]; mount?: string[]; tmpfs?: string[]; 'env-file'?: string[] }) {
  if (v.name !== undefined && !NAME.test(v.name)) {
    throw new InvalidInputError(`invalid container name "${v.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  const mounts: RunMount[] = [];
  for (const s of v.volume ?? []) mounts.push(await parseVolume(s));
  for (const s of v.mount ?? []) mounts.push(await parseMount(s));
  for (const s of v.tmpfs ?? []) mounts.push(parseTmpfs(s));
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.target)) throw new InvalidInputError(`duplicate mount point: ${m.target}`);
    seen.add(m.target);
  }
  const fileEnv: string[] = [];
  for (const file of v['env-file'] ?? []) fileEnv.push(...(await readEnvFile(file)));
  return { mounts, fileEnv };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv, { allowPositionalsAfterFirst: true });
  if (!args) return 0;
  minArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const network = v.network ?? 'host';
  if (network !== 'host' && network !== 'none') throw usageError(`unsupported --network ${network}: use host or none`);
  let input;
  try {
    input = await containerInput(v);
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    fail(err);
    return 125;
  }
  const env = [...input.fileEnv, ...(v.env ?? [])].flatMap((kv) =>
    kv.includes('=') ? [kv] : process.env[kv] !== undefined ? [`${kv}=${process.env[kv]}`] : [],
  );
  // docker's check: -it lends the terminal to the container, so there must be one.
  const raw = Boolean(v.tty && v.interactive);
  if (raw && !isatty(0)) throw new TsbuildError('the input device is not a TTY');
  const [image, ...cmd] = args.positionals[0] === '--' ? args.positionals.slice(1) : args.positionals;
  const platform = platformOption(v.platform);
  const store = await Store.open(await storeOptions(v));
  const imageId = await store.resolveImage(image!, platform);
  const signals = abortOnSignals();
  // Restored on every way out: the finally below, and Node's own reset of the terminal at exit.
  if (raw) process.stdin.setRawMode(true);
  try {
    const code = await runContainer(store, {
      image: imageId,
      cmd: cmd[0] === '--' ? cmd.slice(1) : cmd,
      env,
      network,
      mounts: input.mounts,
      signal: signals.signal,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(v.interactive ? { stdin: process.stdin } : {}),
      ...(v.tty ? { terminal: terminal() } : {}),
      ...(v.hostname !== undefined ? { hostname: v.hostname } : {}),
      ...(v.workdir !== undefined ? { workdir: v.workdir } : {}),
      ...(v.user !== undefined ? { user: v.user } : {}),
      ...(v.entrypoint !== undefined ? { entrypoint: v.entrypoint } : {}),
    });
    return signals.exitCode() ?? code;
  } catch (err) {
    // Stopped by a signal: the container is gone and cleaned up; exit as a shell expects.
    const code = signals.exitCode();
    if (code !== undefined) return code;
    // The helper could not set the container up (a mount it refused, say): docker's 125 too.
    if (err instanceof HelperError && err.exitCode === 125) {
      fail(err);
      return 125;
    }
    throw err;
  } finally {
    if (raw) process.stdin.setRawMode(false);
    // Let go of stdin, so tsbuild exits even though the user's input has not ended.
    if (v.interactive) process.stdin.pause();
    signals.dispose();
  }
}
