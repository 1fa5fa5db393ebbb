import { minArgs, storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { oneLine } from '../terminal.js';

const spec = {
  usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
  description: 'Remove one or more images',
  options: { force: { type: 'boolean', short: 'f' } },
  optionHelp: ['  -f, --force                  Force removal of the image (all its tags)'],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  minArgs(args.positionals, 1, spec.usage);
  const store = await Store.open(await storeOptions(args.values));
  let failed = 0;
  for (const name of args.positionals) {
    try {
      const removed = await store.removeImage(name, { force: args.values.force === true });
      for (const ref of removed.untagged) process.stdout.write(`Untagged: ${ref}\n`);
      if (removed.deleted) process.stdout.write(`Deleted: ${removed.deleted}\n`);
      for (const id of removed.deletedImages ?? []) process.stdout.write(`Deleted: ${id}\n`);
    } catch (err) {
      failed++;
      process.stderr.write(`Error: ${oneLine((err as Error).message)}\n`);
    }
  }
  return failed ? 1 : 0;
}
