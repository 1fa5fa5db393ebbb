// `tsbuild __complete WORD... CURRENT`: the completion scripts' helper (hidden from --help).
// Prints what to offer for CURRENT, the last word (empty when the cursor follows a space): a
// first line `words`, `files` or `dirs`, then one candidate a line, `VALUE<TAB>DESCRIPTION`.
import { complete } from '../complete.js';
import { oneLine } from '../terminal.js';

export async function run(argv: string[]): Promise<void> {
  const { kind, words } = await complete(argv.length ? argv : ['']);
  const cur = argv.at(-1) ?? '';
  const lines = words
    .filter((w) => w.value.startsWith(cur))
    .map((w) => (w.description ? `${w.value}\t${oneLine(w.description)}` : w.value));
  process.stdout.write([kind, ...lines].map((l) => `${l}\n`).join(''));
}
