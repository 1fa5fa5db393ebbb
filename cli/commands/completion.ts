// `tsbuild completion bash|zsh|fish`: prints the shell's completion script (completion/ at the
// package's top, found by ../completion-scripts.ts).
import { exactArgs, parseCommand, usageError } from '../common.js';
import { completionScript, SHELLS } from '../completion-scripts.js';

const spec = {
  usage: 'completion bash|zsh|fish',
  description: [
    'Print a completion script for the shell: commands, flags, image names and build --target stages.',
    '  bash:  source <(tsbuild completion bash)',
    '  zsh:   source <(tsbuild completion zsh)      (after compinit)',
    '  fish:  tsbuild completion fish | source',
  ].join('\n'),
  options: {},
  optionHelp: [],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  exactArgs(args.positionals, 1, spec.usage);
  const script = await completionScript(args.positionals[0]!);
  if (script === undefined) throw usageError(`unknown shell "${args.positionals[0]}": use ${SHELLS.join(', ')}`);
  process.stdout.write(script);
}
