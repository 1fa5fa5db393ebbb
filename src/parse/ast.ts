// The Dockerfile's structure as dockerfile-ast finds it: where each instruction starts and
// ends (heredoc bodies included, as far as it recognises them), and the escape character it
// found them with. Only line numbers are taken from it; lines.ts reads the text of each
// instruction with BuildKit's rules and corrects the ranges where the two disagree.
//
// dockerfile-ast is given one line per BuildKit line, adjusted where its text model is not
// BuildKit's, so that its line numbers are BuildKit's:
//  - vscode's text model (under dockerfile-ast) also ends a line at a lone CR; BuildKit splits
//    at LF only and drops the CRs before it. CRs are dropped at the end and blanked elsewhere.
//  - dockerfile-ast's blanks are space and tab; BuildKit trims a line's start with Go's
//    unicode.IsSpace, so `\v# x` is a comment and a line of U+00A0 is blank there. Such a
//    leading run is given as spaces.
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

/** One instruction as dockerfile-ast delimits it, in zero-based physical lines. */
export interface InstructionRange {
  readonly start: number;
  readonly end: number;
}

/** Instruction ranges in file order. */
export interface RangeList {
  readonly ranges: readonly InstructionRange[];
  /** The ranges stop before the end of the file: ask again from the line after the last. */
  readonly partial: boolean;
}

export interface DocumentStructure extends RangeList {
  /** The escape character dockerfile-ast found the ranges with. */
  readonly escapeChar: string;
}

/** Go's unicode.IsSpace, which BuildKit trims lines with. */
export const LEADING_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** BuildKit's physical lines, each with its own line ending (the last may have none). */
export function physicalLines(text: string): string[] {
  return text === '' ? [] : text.replace(/^\ufeff/, '').split(/(?<=\n)/);
}

/** dockerfile-ast's view of the whole file. */
export function documentStructure(lines: readonly string[]): DocumentStructure {
  const ast = DockerfileParser.parse(lines.map(forAst).join('\n'));
  return { escapeChar: ast.getEscapeCharacter(), ranges: ranges(ast.getInstructions(), 0), partial: false };
}

/** Lines parsed at first by `instructionsFrom`; it doubles them while that holds no whole range. */
const WINDOW = 32;

/**
 * dockerfile-ast's instruction ranges from physical line `from` on, with `escapeChar` as the
 * escape character: the lines before `from` are taken as read (directives, or instructions
 * whose end BuildKit placed elsewhere). The text it parses starts with an escape directive and
 * an empty comment, which ends its directives, so that a directive-like comment at `from` stays
 * a comment.
 *
 * As this is asked again after each disagreement, it parses a window of lines rather than the
 * rest of the file (a Dockerfile of many `3<<EOF` heredocs would take quadratic time). A range
 * that reaches the window's last line may have been cut short by it, so it is left out.
 */
export function instructionsFrom(lines: readonly string[], from: number, escapeChar: string): RangeList {
  const prologue = [`#escape=${escapeChar}`, '#'];
  for (let size = WINDOW; ; size *= 2) {
    const to = Math.min(lines.length, from + size);
    const ast = DockerfileParser.parse([...prologue, ...lines.slice(from, to).map(forAst)].join('\n'));
    const found = ranges(ast.getInstructions(), from - prologue.length);
    if (to === lines.length) return { ranges: found, partial: false };
    const whole = found.filter((range) => range.end < to - 1);
    if (whole.length > 0) return { ranges: whole, partial: true };
  }
}

function ranges(instructions: readonly Instruction[], shift: number): InstructionRange[] {
  return instructions.map((instruction) => {
    const { start, end } = instruction.getRange();
    return { start: start.line + shift, end: end.line + shift };
  });
}

function forAst(line: string): string {
  return line
    .replace(/[\r\n]+$/, '')
    .replace(/\r/g, ' ')
    .replace(LEADING_SPACE, (blanks) => ' '.repeat(blanks.length));
}
