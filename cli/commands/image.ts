// `tsbuild image SUBCOMMAND`: docker's management command, for scripts written against it.
// Each subcommand is one of tsbuild's commands under docker's name (`image ls` is `images`,
// `image rm` is `rmi`; ../registry.ts), run with the same arguments.
import { COMMANDS, imageCommand, splitGlobals } from '../registry.js';

export async function run(argv: string[]): Promise<number | void> {
  // main.ts put the global options (--root, --storage-driver) first.
  const { globals, rest } = splitGlobals(argv);
  const sub = imageCommand(rest);
  if (typeof sub === 'string') {
    process.stdout.write(sub);
    return 0;
  }
  return (await COMMANDS[sub.name]!.load()).run([...globals, ...rest.slice(1)]);
}
