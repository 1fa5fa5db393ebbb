import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { importRootfs } from '../../src/archive/rootfs.js';
import { parsePlatform } from '../../src/image/platform.js';
import { storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';

const spec = {
  usage: 'import [OPTIONS] file|- [REPOSITORY[:TAG]]',
  description: 'Import the contents of a root filesystem tarball (plain, gzip, bzip2, xz or zstd) as a one-layer image',
  options: { message: { type: 'string', short: 'm' }, platform: { type: 'string' } },
  optionHelp: [
    '  -m, --message TEXT           Set the commit message for the imported image',
    "      --platform OS/ARCH       The platform the files are for (default: this machine's)",
  ],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  const [file, ref, ...extra] = args.positionals;
  if (file === undefined || extra.length) throw usageError(`"tsbuild import" requires 1 or 2 arguments. Usage: tsbuild ${spec.usage}`);
  if (file !== '-')
    await access(file).catch(() => {
      throw usageError(`open ${file}: no such file or directory`);
    });
  const platform = args.values.platform !== undefined ? parsePlatform(args.values.platform) : undefined;
  const store = await Store.open(await storeOptions(args.values));
  const input = file === '-' ? process.stdin : createReadStream(file);
  const id = await importRootfs(store, input, {
    source: args.values.message ?? file,
    ...(ref ? { ref } : {}),
    ...(platform ? { platform } : {}),
  });
  process.stdout.write(`${id}\n`);
}
