import { parseTagReference } from '../../src/image/reference.js';
import { exactArgs, storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';

const spec = {
  usage: 'tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  options: {},
  optionHelp: [],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  exactArgs(args.positionals, 2, spec.usage);
  const target = parseTagReference(args.positionals[1]!);
  const store = await Store.open(await storeOptions(args.values));
  // A multi-platform image's tag names its index: the new tag names the same index, all platforms.
  const source = await store.resolveTarget(args.positionals[0]!);
  await store.tag(target, source.kind === 'image' ? source.id : source.index.id);
}
