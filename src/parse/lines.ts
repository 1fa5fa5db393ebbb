// From Dockerfile text to logical instructions: one keyword and its argument text each, with
// continuation lines joined and the comments inside them dropped.
//
// dockerfile-ast finds the parser directives and where each instruction starts and ends. Inside
// each of its ranges we join lines with Docker's own rules (moby/buildkit parser.Parse), because
// the exact bytes matter: Docker keeps the indentation of continuation lines (`RUN a \` + `  b`
// is `a   b`), skips comment and empty lines inside a continuation, and does not treat a line
// ending in an escaped escape (`echo foo\\`) as continued, where dockerfile-ast does; such a
// range then holds more than one instruction and we split it as Docker would.
import { DockerfileParser, type ParserDirective } from 'dockerfile-ast';
import { DockerfileError, type SourceLocation } from '../errors.js';

/** One instruction after line joining, before its arguments are interpreted. */
export interface LogicalLine {
  readonly loc: SourceLocation;
  /** The instruction keyword as written (`run`, `RUN`, ...). */
  readonly keyword: string;
  /** Everything after the keyword, trimmed; flags not yet extracted. */
  readonly rest: string;
}

export interface DockerfileSource {
  /** The `# escape=` directive's character: `\` (default) or a backtick. */
  readonly escapeChar: string;
  readonly lines: readonly LogicalLine[];
}

const DEFAULT_ESCAPE = '\\';

export function readDockerfile(text: string, file: string): DockerfileSource {
  // vscode's text model (under dockerfile-ast) also breaks lines at a lone CR; Docker does not.
  const ast = DockerfileParser.parse(text.replace(/\r(?!\n)/g, ' '));
  const escapeChar = escapeDirective(ast.getDirectives(), file);
  const rawLines = text.replace(/^\ufeff/, '').split('\n').map(trimNewline);

  const lines: LogicalLine[] = [];
  for (const instruction of ast.getInstructions()) {
    const { start, end } = instruction.getRange();
    const range = rawLines.slice(start.line, end.line + 1);
    lines.push(...joinLines(range, { file, line: start.line + 1 }, escapeChar));
  }
  return { escapeChar, lines };
}

/** Docker accepts one `escape` directive, whose value must be a backslash or a backtick. */
function escapeDirective(directives: readonly ParserDirective[], file: string): string {
  const escapes = directives.filter((d) => d.getName().toLowerCase() === 'escape');
  const [first, second] = escapes;
  if (first === undefined) return DEFAULT_ESCAPE;
  const value = first.getValue();
  if (value !== '\\' && value !== '`') {
    const loc = { file, line: first.getRange().start.line + 1 };
    throw new DockerfileError(loc, `invalid escape token '${value}' does not match \` or \\`);
  }
  if (second !== undefined) {
    const loc = { file, line: second.getRange().start.line + 1 };
    throw new DockerfileError(loc, 'only one escape parser directive can be used');
  }
  return value;
}

function trimNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith('#');
}

/**
 * Joins the raw lines of one dockerfile-ast range into logical lines (normally exactly one).
 * `first` is the location of `range[0]`.
 */
function joinLines(range: readonly string[], first: SourceLocation, escapeChar: string): LogicalLine[] {
  const continuation = continuationPattern(escapeChar);
  const out: LogicalLine[] = [];
  let i = 0;
  while (i < range.length) {
    const loc = { file: first.file, line: first.line + i };
    const head = (range[i++] as string).trimStart();
    if (isComment(head)) continue;
    let { text, continued } = trimContinuation(head, continuation);
    if (!continued && text === '') continue;
    while (continued && i < range.length) {
      const next = range[i++] as string;
      // Comment and blank lines inside a continuation are skipped without ending it.
      if (isComment(next) || next.trim() === '') continue;
      const piece = trimContinuation(next, continuation);
      text += piece.text;
      continued = piece.continued;
    }
    out.push(splitCommand(text, loc));
  }
  return out;
}

/**
 * Docker's rule: the line ends in the escape character (then optional spaces/tabs) that is not
 * itself preceded by an escape character, or the line is only that character.
 */
function continuationPattern(escapeChar: string): RegExp {
  const e = escapeChar === '`' ? '`' : '\\\\';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimContinuation(line: string, pattern: RegExp): { text: string; continued: boolean } {
  if (!pattern.test(line)) return { text: line, continued: false };
  return { text: line.replace(pattern, '$1'), continued: true };
}

/** Splits a logical line at the first run of whitespace: keyword, then the rest. */
function splitCommand(line: string, loc: SourceLocation): LogicalLine {
  const trimmed = line.trim();
  const match = /[\t\v\f\r ]+/.exec(trimmed);
  if (match === null) return { loc, keyword: trimmed, rest: '' };
  return {
    loc,
    keyword: trimmed.slice(0, match.index),
    rest: trimmed.slice(match.index + match[0].length).trim(),
  };
}
