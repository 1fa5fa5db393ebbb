// What every instruction parser shares: its input (one logical line, split into keyword, flags
// and arguments) and the small rules all of them apply the same way.
import { parseFlags, type FlagSpec, type FlagValues } from './flags.js';
import type { LogicalLine } from './lines.js';
import type { CommandForm, FromClause, Heredoc, Step, Word } from './plan.js';
import { ParseProblem } from './problem.js';
import { checkWordSyntax, expandWord } from './substitute.js';
import { parseJsonArray } from './words.js';

/** A FROM line opens a stage; every other instruction is a step of the current one. */
export type Instruction =
  { readonly kind: 'FROM'; readonly from: FromClause; readonly name?: string } | { readonly kind: 'STEP'; readonly step: Step };

/** What every instruction parser receives. */
export interface Input {
  readonly line: LogicalLine;
  /** Upper-cased keyword. */
  readonly keyword: string;
  /** `KEYWORD rest`, for history and messages. */
  readonly text: string;
  /** Raw `--flag[=value]` words; each parser checks them against what it accepts. */
  readonly flags: readonly string[];
  /** The arguments after the flags, trimmed. */
  readonly args: string;
  /** The heredocs the line opened, bodies read (RUN, COPY, ADD, ONBUILD only). */
  readonly heredocs: readonly Heredoc[];
  readonly escapeChar: string;
}

export function step(step: Step): Instruction {
  return { kind: 'STEP', step };
}

export function base(input: Input): { loc: LogicalLine['loc']; text: string } {
  return { loc: input.line.loc, text: input.text };
}

/** Optional plan members: absent when not given, rather than present and `undefined`. */
export function definedOnly<T extends object>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** Flags for instructions that take none: any flag is `unknown flag`. */
export const NO_FLAGS: FlagSpec = {};

export function flagsOf(input: Input, spec: FlagSpec): FlagValues {
  return parseFlags(input.keyword, input.flags, spec);
}

/** Reports substitution syntax errors now rather than halfway through the build. */
export function checked(word: Word, input: Input): Word {
  try {
    checkWordSyntax(word, input.escapeChar);
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
  return word;
}

/** A word's value when no variable is set: its quotes and escapes removed. */
export function expandWithoutVariables(word: Word, input: Input): string {
  try {
    return expandWord(word, new Map(), input.escapeChar);
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
}

/** JSON array → exec form; anything else (including broken JSON) → shell form, as Docker does. */
export function commandForm(args: string): CommandForm {
  const json = parseJsonArray(args);
  return json.json ? { form: 'exec', argv: json.values } : { form: 'shell', command: args };
}

export function isEmptyCommand(cmd: CommandForm): boolean {
  return cmd.form === 'exec' ? cmd.argv.length === 0 : cmd.command === '';
}

export const requiresAtLeastOne = (keyword: string) => new ParseProblem(`${keyword} requires at least one argument`);
export const requiresExactlyOne = (keyword: string) => new ParseProblem(`${keyword} requires exactly one argument`);
