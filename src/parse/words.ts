// How Docker cuts an instruction's argument text into pieces before any substitution
// (moby/buildkit parser/line_parsers.go and split_command.go). Each instruction uses one of:
//   flags            leading `--name[=value]` words, quotes and escapes removed
//   whitespace split FROM, EXPOSE, and COPY/ADD/VOLUME outside JSON form: quotes do NOT group,
//                    so `COPY "a b" /d` is the two words `"a` and `b"` (then a quote error)
//   quote-aware split ENV, LABEL, ARG: quotes and escapes group but are kept, to be removed
//                    later by substitution
//   JSON array       RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD, VOLUME when the text parses as one
//   whole string     RUN/CMD/ENTRYPOINT shell form, WORKDIR, USER, STOPSIGNAL, MAINTAINER

import { ParseProblem } from './problem.js';

const WHITESPACE = /[\t\v\f\r ]+/;

function isSpace(ch: string): boolean {
  return /^\s$/u.test(ch);
}

/** Splits off the leading `--flag` words (Docker's extractBuilderFlags); `--` ends them. */
export function extractFlags(rest: string, escapeChar: string): { flags: string[]; args: string } {
  const flags: string[] = [];
  const chars = Array.from(rest);
  let i = 0;
  for (;;) {
    while (i < chars.length && isSpace(chars[i] as string)) i++;
    if (i >= chars.length) return { flags, args: '' };
    if (chars[i] !== '-' || chars[i + 1] !== '-') return { flags, args: chars.slice(i).join('').trim() };

    let word = '';
    let quote: string | undefined;
    for (; i < chars.length; i++) {
      const ch = chars[i] as string;
      if (quote === undefined && isSpace(ch)) break;
      if (quote === undefined && (ch === '"' || ch === "'")) {
        quote = ch;
      } else if (ch === quote) {
        quote = undefined;
      } else if (ch === escapeChar) {
        // An escape (inside or outside quotes) takes the next character literally.
        if (i + 1 < chars.length) word += chars[++i];
      } else {
        word += ch;
      }
    }
    if (word === '--') return { flags, args: chars.slice(i).join('').trim() };
    flags.push(word);
  }
}

/** Docker's parseStringsWhitespaceDelimited: quotes mean nothing here. */
export function splitOnWhitespace(args: string): string[] {
  return args === '' ? [] : args.split(WHITESPACE);
}

/**
 * Docker's parseWords: splits on whitespace outside quotes, keeping quotes and escapes in the
 * words (substitution removes them later). An unterminated quote runs to the end of the text.
 */
export function splitWordsKeepingQuotes(args: string, escapeChar: string): string[] {
  const words: string[] = [];
  const chars = Array.from(args);
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (quote === undefined && isSpace(ch)) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    if (ch === escapeChar && quote !== "'") {
      // An escape takes the next character with it; at the very end it is dropped.
      if (i + 1 < chars.length) word += ch + chars[++i];
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
    word += ch;
  }
  if (word !== '') words.push(word);
  return words;
}

export type JsonArgs = { readonly json: true; readonly values: string[] } | { readonly json: false };

/**
 * Docker's parseJSON: text starting with `[` that is a valid JSON array of strings. Anything
 * else is "not JSON" and the instruction falls back to its other form, except a valid array
 * holding a non-string, which Docker rejects.
 */
export function parseJsonArray(args: string): JsonArgs {
  const text = args.trimStart();
  if (!text.startsWith('[')) return { json: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { json: false };
  }
  if (!Array.isArray(parsed)) return { json: false };
  const values: string[] = [];
  for (const value of parsed) {
    if (typeof value !== 'string') {
      throw new ParseProblem('when using JSON array syntax, arrays must be comprised of strings only');
    }
    values.push(value);
  }
  return { json: true, values };
}

/** One `name value` / `name=value` pair of ENV or LABEL, both still unexpanded. */
export interface NameValue {
  readonly name: string;
  readonly value: string;
}

/**
 * ENV and LABEL (Docker's parseNameVal): `KEY=value ...`, or the legacy `KEY value` where the
 * value is the rest of the line, spaces and quotes included. The form is chosen by whether the
 * first word contains `=`.
 */
export function parseNameValues(args: string, keyword: string, escapeChar: string): NameValue[] {
  const words = splitWordsKeepingQuotes(args, escapeChar);
  const [first] = words;
  if (first === undefined) throw new ParseProblem(`${keyword} requires at least one argument`);

  if (!first.includes('=')) {
    const match = WHITESPACE.exec(args);
    if (match === null) throw new ParseProblem(`${keyword} must have two arguments`);
    const pair = { name: args.slice(0, match.index), value: args.slice(match.index + match[0].length) };
    return [checkName(pair, keyword)];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new ParseProblem(`Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`);
    }
    return checkName({ name: word.slice(0, eq), value: word.slice(eq + 1) }, keyword);
  });
}

function checkName(pair: NameValue, keyword: string): NameValue {
  if (pair.name === '') throw new ParseProblem(`${keyword} names can not be blank`);
  return pair;
}
