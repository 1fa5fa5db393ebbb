import { DockerConfig } from '../../src/registry/credentials.js';
import { pushImage } from '../../src/registry/push.js';
import { parseReference } from '../../src/image/reference.js';
import { exactArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { transferMode, transferOutput } from '../transfer-progress.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'push [OPTIONS] NAME[:TAG]',
  description: 'Upload an image from the store to a registry',
  options: {
    compression: { type: 'string' },
    'oci-mediatypes': { type: 'string' },
    'insecure-registry': { type: 'string', multiple: true },
    progress: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  optionHelp: [
    '      --compression gzip|zstd       Layer compression (default gzip; zstd pushes an OCI manifest)',
    "      --oci-mediatypes true|false   A multi-platform image: an OCI index (default) or Docker's manifest list (false)",
    '      --insecure-registry HOST      Reach HOST over plain HTTP (repeatable; loopback always is)',
    '      --progress MODE               auto, plain or tty (default auto)',
    '  -q, --quiet                       Print only the pushed reference',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const compression = v.compression ?? 'gzip';
  if (compression !== 'gzip' && compression !== 'zstd') throw usageError(`invalid --compression ${compression}: use gzip or zstd`);
  const oci = v['oci-mediatypes'];
  if (oci !== undefined && oci !== 'true' && oci !== 'false') throw usageError(`invalid --oci-mediatypes ${oci}: use true or false`);
  const ref = parseReference(args.positionals[0]!);
  if (ref.digest !== undefined) throw usageError(`cannot push a digest reference: ${args.positionals[0]}`);
  const mode = transferMode(v.progress, v.quiet);
  const store = await Store.open(await storeOptions(v));
  const credentials = await DockerConfig.load();
  const out = await transferOutput(mode, process.stdout);
  if (ref.tag === undefined) out.line('Using default tag: latest');
  out.line(`The push refers to repository [${ref.domain}/${ref.path}]`);
  const signals = abortOnSignals();
  try {
    const result = await pushImage(store, ref, {
      compression,
      ...(oci !== undefined ? { ociMediaTypes: oci === 'true' } : {}),
      insecureRegistries: v['insecure-registry'] ?? [],
      credentials,
      progress: out.progress,
      signal: signals.signal,
    });
    out.finish();
    const r = result.reference;
    out.line(`${r.tag}: digest: ${result.manifestDigest} size: ${result.manifestSize}`);
    if (mode === 'quiet') process.stdout.write(`${r.domain}/${r.path}:${r.tag}\n`);
    return 0;
  } catch (err) {
    out.finish();
    const code = signals.exitCode();
    if (code !== undefined) {
      process.stderr.write('Error: push interrupted\n');
      return code;
    }
    throw err;
  } finally {
    signals.dispose();
  }
}
