import { listedSizes, type SourceImage } from '../../src/analyze/index.js';
import { minArgs, parseCommand } from '../common.js';
import { Interrupted, withSources } from '../source.js';
import { forTerminal } from '../terminal.js';

const spec = {
  usage: 'inspect IMAGE [IMAGE...]',
  description:
    'Display detailed information on one or more images, as a JSON array. IMAGE is a name in the\n' +
    'store, or docker-archive:FILE, oci-archive:FILE, oci:DIR[:TAG] or docker://REF',
  options: { platform: { type: 'string' } },
  optionHelp: ["      --platform OS/ARCH       Which image of a multi-platform image (default: this machine's)"],
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  minArgs(args.positionals, 1, spec.usage);
  const out = await withSources(args.positionals, args.values, (images) => describeAll(images));
  if (out instanceof Interrupted) return out.exitCode;
  process.stdout.write(forTerminal(`${JSON.stringify(out, null, 4)}\n`));
}

async function describeAll(images: readonly SourceImage[]): Promise<unknown[]> {
  const out = [];
  for (const img of images) {
    // A registry's layers are not downloaded for this: Size is the sum of the compressed blobs.
    const sizes = await listedSizes(img);
    const stored = img.stored;
    const c = img.config;
    out.push({
      Id: img.id,
      RepoTags: img.tags,
      RepoDigests: img.digests,
      Parent: (stored && (await stored.store.parentOf(img.id))) ?? '',
      Comment: c.history.at(-1)?.comment ?? '',
      Created: c.created ?? '',
      Author: c.author ?? '',
      Config: c.config,
      Architecture: c.architecture,
      ...(c.variant ? { Variant: c.variant } : {}),
      Os: c.os,
      Size: sizes.reduce((n, s) => n + s, 0),
      ...(stored ? { GraphDriver: stored.store.graphDriver(stored.image.layers.map((l) => l.record)) } : {}),
      RootFS: { Type: 'layers', Layers: c.rootfs.diff_ids },
    });
  }
  return out;
}
