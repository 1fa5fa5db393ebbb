import { VERSION, parseCommand } from '../common.js';

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand({ usage: 'version', description: 'Show the tsbuild version information', options: {}, optionHelp: [] }, argv);
  if (!args) return;
  process.stdout.write(`tsbuild version ${VERSION}\nnode ${process.version}\n${process.platform}/${process.arch}\n`);
}
