import type { Digest } from '../../src/digest.js';
import { storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { oneLine } from '../terminal.js';

const spec = {
  usage: 'verify [OPTIONS] [IMAGE...]',
  description: 'Read the store back: every layer against its diffID and tar-split, every image against its ID; report what is broken',
  options: { repair: { type: 'boolean' } },
  optionHelp: ['      --repair                 Remove what is broken: its images (and their tags) and its layers'],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const store = await Store.open(await storeOptions(args.values));
  const only: Digest[] | undefined = args.positionals.length ? [] : undefined;
  for (const name of args.positionals) only!.push(await store.resolveImage(name));
  const report = await store.verify(only);
  for (const p of report.problems) process.stdout.write(`${oneLine(`${p.kind} ${p.id}: ${p.problem}`)}\n`);
  const what = `${report.images} image${report.images === 1 ? '' : 's'}, ${report.layers} layer${report.layers === 1 ? '' : 's'}`;
  if (report.problems.length === 0) {
    process.stdout.write(`OK: ${what} verified\n`);
    return 0;
  }
  if (!args.values.repair) {
    process.stdout.write(
      `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${what}; tsbuild verify --repair removes what is broken\n`,
    );
    return 1;
  }
  await store.repair(report);
  process.stdout.write(
    `Repaired: removed ${report.brokenImages.length} image${report.brokenImages.length === 1 ? '' : 's'} and ${report.brokenChains.length} layer${report.brokenChains.length === 1 ? '' : 's'}\n`,
  );
  return 0;
}
