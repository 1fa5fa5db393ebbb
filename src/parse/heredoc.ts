// Here-documents (`RUN <<EOF`, `COPY <<file.txt /dir/`), recognised exactly as BuildKit's
// parser does (moby/buildkit frontend/dockerfile/parser/parser.go: heredocsFromLine,
// ParseHeredoc, ChompHeredocContent). The rules are BuildKit's, quirks included, because they
// decide which of the following lines are a body and which are instructions:
//  - only RUN, COPY, ADD (also as an ONBUILD trigger) outside JSON form, on a line holding `<<`;
//  - the line is cut into words with quotes and escapes kept (escape character always `\`);
//    a word that is `[fd]<<[-]name` with nothing else starts a heredoc. So `"<<EOF"` is not
//    one, `<<EOF>out` is one named `EOF>out`, `<< EOF` is one (blanks after `<<` belong to the
//    word) but `<<- EOF` is not;
//  - the name is the word with its quotes and escapes removed; any quote in it means the body
//    is not expanded (`<<"EOF"`, `<<'EOF'`, `<<E"O"F`), an escape does not (`<<\EOF` expands);
//  - `<<-` strips leading tabs from the body lines (and lets the delimiter line have them).
import type { Heredoc } from './plan.js';
import { ParseProblem } from './problem.js';
import { lexWords } from './substitute.js';

/** `3<<-"EOF"`: the optional descriptor, the dash, then the delimiter word. */
const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/** A heredoc operator as written: everything but the body. */
export interface HeredocMarker {
  readonly name: string;
  readonly expand: boolean;
  readonly chomp: boolean;
  readonly fd?: number;
}

/**
 * BuildKit's ParseHeredoc: the marker a word stands for, undefined when it is not one. Throws a
 * ParseProblem for a delimiter whose quotes do not close (`<<'EOF`).
 */
export function parseHeredocWord(word: string): HeredocMarker | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (match === null) return undefined;
  const [, fd = '', dash, rest = ''] = match;
  if (rest === '') return undefined;

  const words = lex(rest, false);
  if (words.length !== 1) return undefined;
  const raw = lex(rest, true);
  if (raw.length !== words.length) {
    throw new ParseProblem(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0] as string;
  // A quote that lexing removed means part of the delimiter was quoted.
  const expand = countQuotes(name) === countQuotes(raw[0] as string);
  return { name, expand, chomp: dash === '-', ...(fd === '' ? {} : { fd: Number(fd) }) };
}

/** `parseHeredocWord` with errors meaning "not a heredoc" (BuildKit's MustParseHeredoc). */
export function heredocMarkerOf(word: string): HeredocMarker | undefined {
  try {
    return parseHeredocWord(word);
  } catch (err) {
    if (err instanceof ParseProblem) return undefined;
    throw err;
  }
}

/**
 * The heredocs a logical line opens, in order (BuildKit's heredocsFromLine). A line whose
 * quotes do not close has none: BuildKit ignores that lexing error here.
 */
export function heredocsInLine(line: string): HeredocMarker[] {
  let words: string[];
  try {
    words = lexWords(line, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    return [];
  }
  const markers: HeredocMarker[] = [];
  for (const word of words) {
    const marker = parseHeredocWord(word);
    if (marker !== undefined) markers.push(marker);
  }
  return markers;
}

/** `<<-`: the leading tabs of every line go (BuildKit's ChompHeredocContent). */
export function chompHeredocBody(body: string): string {
  return body.replace(/(^|\n)\t+/g, '$1');
}

/** The body as the file or script gets it: tabs stripped for `<<-`, nothing expanded. */
export function heredocContent(heredoc: Heredoc): string {
  return heredoc.chomp ? chompHeredocBody(heredoc.body) : heredoc.body;
}

function lex(text: string, rawQuotes: boolean): string[] {
  try {
    return lexWords(text, { rawQuotes, skipUnsetEnv: true });
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
}

function countQuotes(word: string): number {
  let n = 0;
  for (const ch of word) if (ch === '"' || ch === "'") n++;
  return n;
}
