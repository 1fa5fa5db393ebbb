// From Dockerfile text to logical instructions: one keyword and its argument text each, with
// continuation lines joined, the comments inside them dropped, and the bodies of heredocs
// attached to the instruction that opens them.
//
// This is BuildKit's own line loop (moby/buildkit frontend/dockerfile/parser/parser.go Parse),
// because the exact bytes matter: Docker keeps the indentation of continuation lines (`RUN a \`
// + `  b` is `a   b`), skips comment and empty lines inside a continuation, does not treat a
// line ending in an escaped escape (`echo foo\\`) as continued, reads parser directives only
// at the top, and takes the lines after `RUN <<EOF` up to `EOF` as a body, not as
// instructions. A general-purpose Dockerfile parser (dockerfile-ast) disagrees on several of
// these, so none is used.
import { DockerfileError, type SourceLocation } from '../errors.js';
import { DirectiveReader, type Directive } from './directives.js';
import { heredocsInLine, type HeredocMarker } from './heredoc.js';
import type { Heredoc } from './plan.js';
import { ParseProblem } from './problem.js';
import { extractFlags, parseJsonArray } from './words.js';

/** One instruction after line joining, before its arguments are interpreted. */
export interface LogicalLine {
  readonly loc: SourceLocation;
  /** The instruction keyword as written (`run`, `RUN`, ...). */
  readonly keyword: string;
  /** Everything after the keyword, trimmed; flags not yet extracted. */
  readonly rest: string;
  /** The heredocs the line opens, bodies read (RUN, COPY, ADD, ONBUILD of those); absent when none. */
  readonly heredocs?: readonly Heredoc[];
}

export interface DockerfileSource {
  /** The `# escape=` directive's character: `\` (default) or a backtick. */
  readonly escapeChar: string;
  readonly lines: readonly LogicalLine[];
  /** The parser directives found at the top, in order. */
  readonly directives: readonly Directive[];
}

const DEFAULT_ESCAPE = '\\';

/** Go's unicode.IsSpace, which BuildKit trims lines with. */
const LEADING_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** Instructions whose lines may open heredocs (BuildKit's heredocDirectives). */
const HEREDOC_KEYWORDS = new Set(['run', 'copy', 'add']);

export function readDockerfile(text: string, file: string): DockerfileSource {
  return new LineReader(text, file).read();
}

class LineReader {
  /** Physical lines, each with its own line ending (the last may have none). */
  private readonly raw: string[];
  /** Index of the next physical line; also the number of lines read so far. */
  private next = 0;
  private escapeChar = DEFAULT_ESCAPE;
  private continuation = continuationPattern(DEFAULT_ESCAPE);
  private readonly directiveReader = new DirectiveReader();
  private readonly directives: Directive[] = [];

  constructor(
    text: string,
    private readonly file: string,
  ) {
    this.raw = text === '' ? [] : text.replace(/^\ufeff/, '').split(/(?<=\n)/);
  }

  read(): DockerfileSource {
    const lines: LogicalLine[] = [];
    while (this.next < this.raw.length) {
      const loc = this.loc(this.next + 1);
      const first = this.processLine(this.raw[this.next++] as string, true);
      let { text, continued } = this.trimContinuation(first);
      if (!continued && text === '') continue;
      while (continued && this.next < this.raw.length) {
        const original = this.raw[this.next++] as string;
        const next = this.processLine(original, false);
        // Comment and blank lines inside a continuation are skipped without ending it.
        if (isComment(original) || next.replace(LEADING_SPACE, '') === '') continue;
        const piece = this.trimContinuation(next);
        text += piece.text;
        continued = piece.continued;
      }
      const line = splitCommand(text, loc);
      const heredocs = this.readHeredocs(line, text);
      lines.push(heredocs.length > 0 ? { ...line, heredocs } : line);
    }
    return { escapeChar: this.escapeChar, lines, directives: this.directives };
  }

  private loc(line: number): SourceLocation {
    return { file: this.file, line };
  }

  /**
   * BuildKit's processLine: drop the line ending (and, for an instruction's first line, the
   * indentation), read a directive while they last, and blank out a comment.
   */
  private processLine(original: string, trimLeading: boolean): string {
    let line = trimNewline(original);
    if (trimLeading) line = line.replace(LEADING_SPACE, '');
    const loc = this.loc(this.next);
    let directive: Directive | undefined;
    try {
      directive = this.directiveReader.read(line, loc);
    } catch (err) {
      if (err instanceof ParseProblem) throw new DockerfileError(loc, err.message, { cause: err });
      throw err;
    }
    if (directive !== undefined) this.useDirective(directive);
    return isComment(line) ? '' : line;
  }

  private useDirective(directive: Directive): void {
    this.directives.push(directive);
    if (directive.name !== 'escape') return;
    if (directive.value !== '\\' && directive.value !== '`') {
      throw new DockerfileError(directive.loc, `invalid escape token '${directive.value}' does not match \` or \\`);
    }
    this.escapeChar = directive.value;
    this.continuation = continuationPattern(directive.value);
  }

  private trimContinuation(line: string): { text: string; continued: boolean } {
    if (!this.continuation.test(line)) return { text: line, continued: false };
    return { text: line.replace(this.continuation, '$1'), continued: true };
  }

  /**
   * Reads the bodies of the heredocs `line` opens: for each in order, the physical lines up to
   * one that is exactly its name (for `<<-`, after leading tabs), line endings included.
   */
  private readHeredocs(line: LogicalLine, text: string): Heredoc[] {
    if (!text.includes('<<') || !canContainHeredoc(line, this.escapeChar)) return [];
    let markers: HeredocMarker[];
    try {
      markers = heredocsInLine(text);
    } catch (err) {
      if (err instanceof ParseProblem) throw new DockerfileError(line.loc, err.message, { cause: err });
      throw err;
    }
    return markers.map((marker) => {
      let body = '';
      while (this.next < this.raw.length) {
        const original = this.raw[this.next++] as string;
        let candidate = trimNewline(original);
        if (marker.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === marker.name) return { ...marker, body };
        body += original;
      }
      throw new DockerfileError(line.loc, 'unterminated heredoc');
    });
  }
}

/**
 * BuildKit's canContainHeredoc: RUN, COPY and ADD (directly or as an ONBUILD trigger) whose
 * arguments are not a JSON array.
 */
function canContainHeredoc(line: LogicalLine, escapeChar: string): boolean {
  let { keyword, rest } = line;
  if (keyword.toLowerCase() === 'onbuild') {
    ({ keyword, rest } = splitCommand(extractFlags(rest, escapeChar).args, line.loc));
  }
  if (!HEREDOC_KEYWORDS.has(keyword.toLowerCase())) return false;
  const { args } = extractFlags(rest, escapeChar);
  try {
    return !parseJsonArray(args).json;
  } catch (err) {
    // A JSON array holding non-strings: not shell form; the instruction's parser reports it.
    if (err instanceof ParseProblem) return false;
    throw err;
  }
}

function trimNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

function isComment(line: string): boolean {
  return line.replace(LEADING_SPACE, '').startsWith('#');
}

/**
 * Docker's rule: the line ends in the escape character (then optional spaces/tabs) that is not
 * itself preceded by an escape character, or the line is only that character.
 */
function continuationPattern(escapeChar: string): RegExp {
  const e = escapeChar === '`' ? '`' : '\\\\';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
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
