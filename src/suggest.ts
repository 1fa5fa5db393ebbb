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

/**
 * ` (did you mean X?)` for a near miss, or nothing: to append to an error message. Case-
 * insensitive matches take the case of what was written when it is all one case, as
 * BuildKit's WrapError does (`foo` gets `from`, `RUNN` gets `RUN`).
 */
export function didYouMean(value: string, options: readonly string[], caseSensitive = true, quote = (s: string) => s): string {
  let match = suggest(value, options, caseSensitive);
  if (match === undefined) return '';
  if (!caseSensitive && value === value.toLowerCase()) match = match.toLowerCase();
  else if (!caseSensitive && value === value.toUpperCase()) match = match.toUpperCase();
  return ` (did you mean ${quote(match)}?)`;
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
