// Where the completion scripts `tsbuild completion SHELL` prints are: completion/ at the top of
// the package, as shell files (readable, and checked by each shell in test/cli/completion.test.ts).
// Each is a thin adapter: it hands the words before the cursor to `tsbuild __complete`
// (cli/complete.ts reads them) and turns its answer into the shell's own terms (a list of
// words, or the shell's file or directory completion), so the three shells offer the same.
import { readFile } from 'node:fs/promises';

const FILES: Readonly<Record<string, string>> = { bash: 'tsbuild.bash', zsh: '_tsbuild', fish: 'tsbuild.fish' };

export const SHELLS: readonly string[] = Object.keys(FILES);

/** The script for `shell`, or undefined for a shell without one. */
export async function completionScript(shell: string): Promise<string | undefined> {
  const file = FILES[shell];
  // Two levels up from dist/cli/ and from the bundle's dist/bin/ alike: the package's root.
  return file === undefined ? undefined : readFile(new URL(`../../completion/${file}`, import.meta.url), 'utf8');
}
