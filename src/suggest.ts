// "Did you mean …?": BuildKit's util/suggest Search, the closest name within two edits
// (Levenshtein), none when the name itself is among them. For undefined variables (build
// --check), instructions, commands, flags and stage names.

/** The closest of `options` to `value` (fewer than three edits away), or undefined. */
export function suggest(value: string, options: readonly string[], caseSensitive = true): string | undefined {
  const wanted = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let best = 3;
  for (const option of options) {
    const candidate = caseSensitive ? option : option.toLowerCase();
    if (candidate === wanted) return undefined;
    const distance = levenshtein(wanted, candidate);
    if (distance < best) {
      best = distance;
      match = option;
    }
  }
  return match;
}

/** ` (did you mean X?)` for a near miss, or nothing: to append to an error message. */
export function didYouMean(value: string, options: readonly string[], caseSensitive = true, quote = (s: string) => s): string {
  const match = suggest(value, options, caseSensitive);
  return match === undefined ? '' : ` (did you mean ${quote(match)}?)`;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
