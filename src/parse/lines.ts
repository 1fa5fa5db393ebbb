// From Dockerfile text to logical instructions: one keyword and its argument text each, with
// continuation lines joined, the comments inside them dropped, and the bodies of heredocs
// attached to the instruction that opens them.
//
// dockerfile-ast (ast.ts) finds where each instruction starts and ends, heredoc bodies
// included, and the escape character it found them with. Inside each instruction the text is
// read with BuildKit's own rules (moby/buildkit frontend/dockerfile/parser/parser.go Parse),
// because the exact bytes matter: Docker keeps the indentation of continuation lines (`RUN a \`
// + `  b` is `a   b`), skips comment and empty lines inside a continuation, and takes the lines
// after `RUN <<EOF` up to `EOF` as a body, not as instructions. Where BuildKit's reading of an
// instruction ends on another line than dockerfile-ast's range, BuildKit is right and
// dockerfile-ast starts again on the line after it (`read` names the cases).
import { DockerfileError, type SourceLocation } from '../errors.js';
import { documentStructure, instructionsFrom, LEADING_SPACE, physicalLines, type InstructionRange, type RangeList } from './ast.js';
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
  /**
   * A continuation went on through an empty line (not a comment): BuildKit accepts it but its
   * linter warns (NoEmptyContinuation), as it will become an error. Absent when not.
   */
  readonly emptyContinuation?: true;
  /**
   * The instruction's last physical line (1-based: continuation lines and heredoc bodies
   * included), for showing it whole. Absent where a line is made up (ONBUILD triggers).
   */
  readonly lastLine?: number;
}

export interface DockerfileSource {
  /** The `# escape=` directive's character: `\` (default) or a backtick. */
  readonly escapeChar: string;
  readonly lines: readonly LogicalLine[];
  /** The parser directives found at the top, in order. */
  readonly directives: readonly Directive[];
}

const DEFAULT_ESCAPE = '\\';

/** Instructions whose lines may open heredocs (BuildKit's heredocDirectives). */
const HEREDOC_KEYWORDS = new Set(['run', 'copy', 'add']);

export function readDockerfile(text: string, file: string): DockerfileSource {
  const physical = physicalLines(text);
  const structure = documentStructure(physical);
  const directives = parserDirectives(physical, file);
  const escapeChar = directives.find((directive) => directive.name === 'escape')?.value ?? DEFAULT_ESCAPE;
  // dockerfile-ast's ranges depend on the escape character. Where it read another one than
  // BuildKit does (it stops before `# escape=` after `# syntax=img --flag`, and takes it after
  // `# foo=bar`, where BuildKit's directives have ended), they are found again with BuildKit's.
  const ranges = structure.escapeChar === escapeChar ? structure : instructionsFrom(physical, directives.length, escapeChar);
  const lines = new InstructionReader(physical, file, escapeChar).read(ranges);
  return { escapeChar, lines, directives };
}

/**
 * The parser directives, read as BuildKit reads them (directives.ts) from the first line until
 * the first that is not one. dockerfile-ast's own list is not used, for three differences:
 * its value ends at the first blank (`# syntax=img --flag` is `img`, BuildKit's is the whole
 * rest of the line); it takes any name (`# foo=bar`, `# a b=c`) where BuildKit's directives end
 * at the first line that is not `escape`, `syntax` or `check`; and it stops after a value that
 * blanks follow, where BuildKit reads on.
 */
function parserDirectives(physical: readonly string[], file: string): Directive[] {
  const reader = new DirectiveReader();
  const directives: Directive[] = [];
  for (const [index, original] of physical.entries()) {
    const loc = { file, line: index + 1 };
    let directive: Directive | undefined;
    try {
      directive = reader.read(trimNewline(original).replace(LEADING_SPACE, ''), loc);
    } catch (err) {
      if (err instanceof ParseProblem) throw new DockerfileError(loc, err.message, { cause: err });
      throw err;
    }
    if (directive === undefined) break;
    if (directive.name === 'escape' && directive.value !== '\\' && directive.value !== '`') {
      throw new DockerfileError(loc, `invalid escape token '${directive.value}' does not match \` or \\`);
    }
    directives.push(directive);
  }
  return directives;
}

/** Reads the instructions in dockerfile-ast's ranges with BuildKit's rules. */
class InstructionReader {
  /** Index of the next physical line the current instruction has not read. */
  private next = 0;
  private readonly continuation: RegExp;

  constructor(
    /** Physical lines, each with its own line ending (the last may have none). */
    private readonly physical: readonly string[],
    private readonly file: string,
    private readonly escapeChar: string,
  ) {
    this.continuation = continuationPattern(escapeChar);
  }

  /**
   * Each range's instruction, read from its first line. BuildKit's reading ends on another
   * line than dockerfile-ast's range where the two disagree about continuations or heredocs:
   *  - a line ending in an escaped escape (`echo foo\\`) is not continued in BuildKit;
   *    dockerfile-ast continues it;
   *  - a line holding only the escape character continues onto the next in BuildKit;
   *    dockerfile-ast makes it an instruction of its own;
   *  - heredocs that dockerfile-ast does not see: with a descriptor (`3<<EOF`), blanks after
   *    the operator (`<< EOF`), a quoted name holding a blank (`<<'E F'`);
   *  - words it takes for heredocs that are none in BuildKit: `<<- EOF` (an empty name, whose
   *    body runs to the end of the file);
   *  - names it keeps quotes in, where BuildKit removes them (`<<eo'f'`, `<<E"O"F` end at
   *    `eof` and `EOF`); dockerfile-ast only strips quotes around the whole name;
   *  - after a `<<-` heredoc, dockerfile-ast strips leading tabs from the end line of every
   *    heredoc the line opens; BuildKit only from those opened with `<<-`.
   * The rest of the file is then given to dockerfile-ast again from the line after.
   */
  read(structure: RangeList): LogicalLine[] {
    const lines: LogicalLine[] = [];
    let list = structure;
    let index = 0;
    for (;;) {
      if (index === list.ranges.length) {
        if (!list.partial) return lines;
        list = instructionsFrom(this.physical, this.next, this.escapeChar);
        index = 0;
        continue;
      }
      const range = list.ranges[index++] as InstructionRange;
      this.next = range.start;
      const line = this.readInstruction();
      if (line !== undefined) lines.push(line);
      // dockerfile-ast counts the empty line after a final newline; BuildKit has no such line.
      const end = Math.min(range.end, this.physical.length - 1);
      if (this.next - 1 !== end) {
        list = instructionsFrom(this.physical, this.next, this.escapeChar);
        index = 0;
      }
    }
  }

  /** BuildKit's reading of one instruction from `this.next`: its lines, then its heredocs. */
  private readInstruction(): LogicalLine | undefined {
    const loc = this.loc(this.next + 1);
    let { text, continued } = this.trimContinuation(processLine(this.physical[this.next++] as string, true));
    if (!continued && text === '') return undefined;
    let emptyContinuation = false;
    while (continued && this.next < this.physical.length) {
      const original = this.physical[this.next++] as string;
      const next = processLine(original, false);
      // Comment and blank lines inside a continuation are skipped without ending it.
      if (isComment(original)) continue;
      if (next.replace(LEADING_SPACE, '') === '') {
        emptyContinuation = true;
        continue;
      }
      const piece = this.trimContinuation(next);
      text += piece.text;
      continued = piece.continued;
    }
    const split = splitCommand(text, loc);
    const line: LogicalLine = emptyContinuation ? { ...split, emptyContinuation: true } : split;
    const heredocs = this.readHeredocs(line, text);
    // this.next is the 0-based index of the line after the instruction: its 1-based last line.
    return heredocs.length > 0 ? { ...line, heredocs, lastLine: this.next } : { ...line, lastLine: this.next };
  }

  private loc(line: number): SourceLocation {
    return { file: this.file, line };
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
      while (this.next < this.physical.length) {
        const original = this.physical[this.next++] as string;
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
 * BuildKit's processLine: drop the line ending (and, for an instruction's first line, the
 * indentation), and blank out a comment.
 */
function processLine(original: string, trimLeading: boolean): string {
  let line = trimNewline(original);
  if (trimLeading) line = line.replace(LEADING_SPACE, '');
  return isComment(line) ? '' : line;
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

/**
 * Splits a logical line at the first run of whitespace: keyword, then the rest (BuildKit's
 * splitCommand). dockerfile-ast's keyword is not used: it splits at spaces and tabs only
 * (`RUN\vx`), keeps an escape that ends the file in it, and reads on through comment lines
 * inside a continued keyword.
 */
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
