import { storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { describeMap, rootlessNamespace } from '../../src/runtime/userns.js';

/** For an ordinary user: the user namespace tsbuild runs in, and what a single-ID map lacks. */
function rootlessLines(): string[] {
  const ns = rootlessNamespace();
  if (ns === undefined) return [];
  return [
    `Rootless: yes, as root of a user namespace (${ns.kind === 'subordinate' ? 'subordinate ID ranges' : "a single ID: every file is root's"})`,
    ` UID map: ${describeMap(ns.uidMap)}`,
    ` GID map: ${describeMap(ns.gidMap)}`,
    ...(ns.missing !== undefined ? [` Missing: ${ns.missing}`] : []),
  ];
}

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
      ...rootlessLines(),
      `Images: ${counts.images}`,
      `Layers: ${counts.layers}`,
      '',
    ].join('\n'),
  );
}
