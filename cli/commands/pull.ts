import { parsePlatform } from '../../src/image/platform.js';
import { DockerConfig } from '../../src/registry/credentials.js';
import { pullImage } from '../../src/registry/pull.js';
import { familiarString, parseReference } from '../../src/image/reference.js';
import { exactArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { transferMode, transferOutput } from '../transfer-progress.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'pull [OPTIONS] NAME[:TAG|@DIGEST]',
  description: 'Download an image from a registry into the store',
  options: {
    platform: { type: 'string' },
    'all-platforms': { type: 'boolean', short: 'a' },
    'insecure-registry': { type: 'string', multiple: true },
    progress: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  optionHelp: [
    '      --platform OS/ARCH[/VARIANT]  Platform to pull from a multi-platform image (default: this machine)',
    '  -a, --all-platforms               Pull every platform of a multi-platform image (stored as one)',
    '      --insecure-registry HOST      Reach HOST over plain HTTP (repeatable; loopback always is)',
    '      --progress MODE               auto, plain or tty (default auto)',
    '  -q, --quiet                       Print only the image reference',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const ref = parseReference(args.positionals[0]!);
  const platform = v.platform !== undefined ? parsePlatform(v.platform) : undefined;
  if (platform && v['all-platforms']) throw usageError('--platform and --all-platforms cannot be used together');
  const mode = transferMode(v.progress, v.quiet);
  const store = await Store.open(await storeOptions(v));
  const credentials = await DockerConfig.load();
  const out = await transferOutput(mode, process.stdout);
  if (ref.tag === undefined && ref.digest === undefined) out.line('Using default tag: latest');
  out.line(`${ref.digest ?? ref.tag ?? 'latest'}: Pulling from ${ref.path}`);
  const signals = abortOnSignals();
  try {
    // Loaded only for --all-platforms.
    const pull = v['all-platforms'] ? (await import('../../src/registry/pull-index.js')).pullAllPlatforms : pullImage;
    const result = await pull(store, ref, {
      ...(platform ? { platform } : {}),
      insecureRegistries: v['insecure-registry'] ?? [],
      credentials,
      progress: out.progress,
      signal: signals.signal,
    });
    out.finish();
    out.line(`Digest: ${result.manifestDigest}`);
    out.line(`Status: ${result.upToDate ? 'Image is up to date for' : 'Downloaded newer image for'} ${familiarString(result.reference)}`);
    const r = result.reference;
    process.stdout.write(`${r.domain}/${r.path}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}\n`);
    return 0;
  } catch (err) {
    out.finish();
    const code = signals.exitCode();
    if (code !== undefined) {
      process.stderr.write('Error: pull interrupted\n');
      return code;
    }
    throw err;
  } finally {
    signals.dispose();
  }
}
