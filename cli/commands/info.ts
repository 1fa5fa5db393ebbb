import { storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(
    { usage: 'info', description: 'Display the store root and the storage driver in use, and why', options: {}, optionHelp: [] },
    argv,
  );
  if (!args) return;
  const store = await Store.open(await storeOptions(args.values));
  const counts = await store.counts();
  process.stdout.write(
    [
      `Store root: ${store.root}`,
      `Storage driver: ${store.driver}`,
      ` Why: ${store.driverReason}`,
      `Images: ${counts.images}`,
      `Layers: ${counts.layers}`,
      '',
    ].join('\n'),
  );
}
