import { minArgs, storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { forTerminal } from '../terminal.js';

const spec = {
  usage: 'inspect IMAGE [IMAGE...]',
  description: 'Display detailed information on one or more images, as a JSON array',
  options: {},
  optionHelp: [],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  minArgs(args.positionals, 1, spec.usage);
  const store = await Store.open(await storeOptions(args.values));
  const out = [];
  for (const name of args.positionals) {
    const img = await store.image(await store.resolveImage(name));
    const c = img.config;
    out.push({
      Id: img.id,
      RepoTags: img.tags.filter((t) => !t.digest).map((t) => t.ref),
      RepoDigests: img.tags.filter((t) => t.digest).map((t) => t.ref),
      Parent: (await store.parentOf(img.id)) ?? '',
      Comment: c.history.at(-1)?.comment ?? '',
      Created: c.created ?? '',
      Author: c.author ?? '',
      Config: c.config,
      Architecture: c.architecture,
      ...(c.variant ? { Variant: c.variant } : {}),
      Os: c.os,
      Size: img.size,
      GraphDriver: store.graphDriver(img.layers.map((l) => l.record)),
      RootFS: { Type: 'layers', Layers: c.rootfs.diff_ids },
    });
  }
  process.stdout.write(forTerminal(`${JSON.stringify(out, null, 4)}\n`));
}
