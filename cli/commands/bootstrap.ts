import { storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';

const spec = {
  usage: 'bootstrap busybox [-t NAME[:TAG]]',
  description:
    "Create a base image offline. busybox: from the host's busybox-static package (apt-get install -y busybox-static).\nFor a Debian base, see scripts/debian-image.sh (debootstrap).",
  options: { tag: { type: 'string', short: 't' } },
  optionHelp: ['  -t, --tag NAME[:TAG]         Name for the image (default busybox:latest)'],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  if (args.positionals.length !== 1 || args.positionals[0] !== 'busybox') {
    throw usageError(`"tsbuild bootstrap" requires one argument: busybox. Usage: tsbuild ${spec.usage}`);
  }
  const { bootstrapBusybox } = await import('../../src/bootstrap/busybox.js');
  const store = await Store.open(await storeOptions(args.values));
  const id = await bootstrapBusybox(store, args.values.tag ?? 'busybox:latest');
  process.stdout.write(`${id}\n`);
}
