import { shortId, hex } from '../../src/digest.js';
import { storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { ago, humanSize, table } from '../format.js';

const spec = {
  usage: 'images [OPTIONS]',
  description: 'List images',
  options: { quiet: { type: 'boolean', short: 'q' }, 'no-trunc': { type: 'boolean' } },
  optionHelp: ['  -q, --quiet                  Only show image IDs', "      --no-trunc               Don't truncate output"],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  const store = await Store.open(await storeOptions(args.values));
  const images = await store.images();
  const id = (d: (typeof images)[number]['id']) => (args.values['no-trunc'] ? d : shortId(d));
  if (args.values.quiet) {
    process.stdout.write(images.map((i) => `${args.values['no-trunc'] ? i.id : hex(i.id).slice(0, 12)}\n`).join(''));
    return;
  }
  const rows: string[][] = [];
  for (const img of images) {
    const tagged = img.tags.filter((t) => !t.digest);
    const refs = tagged.length ? tagged : [{ repository: '<none>', tag: '<none>' }];
    for (const t of refs) rows.push([t.repository, t.tag, id(img.id), ago(img.config.created), humanSize(img.size)]);
  }
  process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows));
}
