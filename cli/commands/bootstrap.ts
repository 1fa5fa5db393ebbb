import { storeOptions, parseCommand, usageError } from '../common.js';
import { parsePlatform } from '../../src/image/platform.js';
import { Store } from '../../src/store/store.js';

const spec = {
  usage: 'bootstrap busybox [-t NAME[:TAG]] [--platform OS/ARCH [--deb FILE]]',
  description:
    "Create a base image offline. busybox: from the host's busybox-static package (apt-get install -y busybox-static);\nfor another platform, from that architecture's busybox-static package (--deb FILE, or apt-get download).\nFor a Debian base, see scripts/debian-image.sh (debootstrap).",
  options: { tag: { type: 'string', short: 't' }, platform: { type: 'string' }, deb: { type: 'string' } },
  optionHelp: [
    '  -t, --tag NAME[:TAG]         Name for the image (default busybox:latest)',
    "      --platform OS/ARCH       The image's platform (default: this machine's); another runs under QEMU",
    '      --deb FILE               busybox-static_*_ARCH.deb for --platform (default: apt-get download busybox-static:ARCH)',
  ],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  if (args.positionals.length !== 1 || args.positionals[0] !== 'busybox') {
    throw usageError(`"tsbuild bootstrap" requires one argument: busybox. Usage: tsbuild ${spec.usage}`);
  }
  const platform = args.values.platform !== undefined ? parsePlatform(args.values.platform) : undefined;
  const { bootstrapBusybox } = await import('../../src/bootstrap/busybox.js');
  const store = await Store.open(await storeOptions(args.values));
  const id = await bootstrapBusybox(store, args.values.tag ?? 'busybox:latest', {
    ...(platform ? { platform } : {}),
    ...(args.values.deb !== undefined ? { deb: args.values.deb } : {}),
  });
  process.stdout.write(`${id}\n`);
}
