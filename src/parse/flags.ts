// Instruction flags (`COPY --from=build`), checked the way BuildKit's BFlags does it: every
// instruction declares the flags it accepts; anything else, a repeat, or a missing value is an
// error with Docker's wording.
import { ParseProblem } from './problem.js';

/**
 * `string` needs `--name=value`; `bool` accepts `--name`, `--name=true|false`; `unsupported`
 * is a flag Docker knows that tsbuild does not implement, rejected rather than silently ignored.
 */
export type FlagKind = 'string' | 'bool' | 'unsupported';

export type FlagSpec = Readonly<Record<string, FlagKind>>;

/** Parsed flags by name (without `--`); booleans are `'true'` or `'false'`. */
export type FlagValues = ReadonlyMap<string, string>;

export function parseFlags(keyword: string, given: readonly string[], spec: FlagSpec): FlagValues {
  const values = new Map<string, string>();
  for (const flag of given) {
    const eq = flag.indexOf('=');
    const spelled = eq < 0 ? flag : flag.slice(0, eq);
    const value = eq < 0 ? undefined : flag.slice(eq + 1);
    const name = spelled.slice(2);

    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) throw new ParseProblem(`unknown flag: ${spelled}`);
    if (kind === 'unsupported') throw new ParseProblem(`${keyword} ${spelled} is not supported by tsbuild`);
    if (values.has(name)) throw new ParseProblem(`duplicate flag specified: ${spelled}`);

    if (kind === 'bool') {
      if (value === '') throw new ParseProblem(`missing a value on flag: ${spelled}`);
      const normalized = (value ?? 'true').toLowerCase();
      if (normalized !== 'true' && normalized !== 'false') {
        throw new ParseProblem(`expecting boolean value for flag ${spelled}, not: ${value}`);
      }
      values.set(name, normalized);
    } else {
      if (value === undefined) throw new ParseProblem(`missing a value on flag: ${spelled}`);
      values.set(name, value);
    }
  }
  return values;
}
