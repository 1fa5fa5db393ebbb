// Go's time.ParseDuration, which Docker uses for HEALTHCHECK --interval and friends: a sequence
// of decimal numbers each with a unit, e.g. `300ms`, `1.5h`, `1h30m`, optionally signed; a bare
// `0` is the only number allowed without a unit.
import { ParseProblem } from './problem.js';

const NANOSECONDS_PER: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds. Errors use Go's wording (`time: invalid duration "x"`). */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text);
  const invalid = () => new ParseProblem(`time: invalid duration ${quoted}`);

  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();

  let total = 0;
  while (rest !== '') {
    const match = /^(\d*)(?:\.(\d*))?([^\d.]*)/.exec(rest);
    const [whole, intDigits = '', fracDigits, unit = ''] = match ?? [];
    if (whole === undefined || (intDigits === '' && (fracDigits ?? '') === '')) throw invalid();
    if (unit === '') throw new ParseProblem(`time: missing unit in duration ${quoted}`);
    const scale = NANOSECONDS_PER[unit];
    if (scale === undefined) throw new ParseProblem(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    total += Number(intDigits || '0') * scale + Math.trunc(Number(`0.${fracDigits ?? ''}`) * scale);
    rest = rest.slice(whole.length);
  }
  // Beyond 2^53 ns (about 104 days) a number loses precision; no health check needs that.
  if (!Number.isSafeInteger(total)) throw invalid();
  return sign * total;
}
