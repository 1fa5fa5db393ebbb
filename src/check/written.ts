// The rules about how instructions are written rather than what they mean: keyword casing,
// `FROM … AS name` casing, empty continuation lines, MAINTAINER, and the legacy `ENV key value`
// form. They read the instructions as the parser's line reader found them (keyword as typed,
// arguments unparsed), so they also run on a Dockerfile whose plan could not be made.
// BuildKit runs the same checks while parsing (frontend/dockerfile/instructions/parse.go and
// dockerfile2llb/validations.go validateCommandCasing).
import { extractFlags, splitOnWhitespace, type LogicalLine } from '../parse/index.js';
import { RULES, type Rule } from './rules.js';
import type { SourceLocation } from '../errors.js';

export type Report = (rule: Rule, loc: SourceLocation, message: string) => void;

/** BuildKit's reservedStageNames. */
const RESERVED_STAGE_NAMES = new Set(['context', 'scratch']);

export function checkWritten(lines: readonly LogicalLine[], escapeChar: string, report: Report): void {
  const firstFrom = lines.findIndex((line) => line.keyword.toLowerCase() === 'from');
  // BuildKit counts the instructions of stages only: the global ARGs before the first FROM are
  // outside every stage.
  const inStages = firstFrom < 0 ? [] : lines.slice(firstFrom);
  checkCasing(inStages, report);
  const stageNames = new Set<string>();
  for (const line of lines) {
    const keyword = line.keyword.toLowerCase();
    if (line.emptyContinuation) report(RULES.NoEmptyContinuation, line.loc, 'Empty continuation line');
    if (keyword === 'maintainer') {
      report(RULES.MaintainerDeprecated, line.loc, 'Maintainer instruction is deprecated in favor of using label');
    } else if (keyword === 'from') {
      checkFrom(line, escapeChar, stageNames, report);
    } else if (keyword === 'env' || keyword === 'label') {
      const { args } = extractFlags(line.rest, escapeChar);
      const first = splitOnWhitespace(args)[0];
      if (first !== undefined && !first.includes('=')) {
        const name = keyword.toUpperCase();
        report(RULES.LegacyKeyValueFormat, line.loc, `"${name} key=value" should be used instead of legacy "${name} key value" format`);
      }
    }
  }
}

function isSelfConsistent(word: string): boolean {
  return word === word.toLowerCase() || word === word.toUpperCase();
}

/** ConsistentInstructionCasing: each keyword in one case, and in the case most keywords use. */
function checkCasing(lines: readonly LogicalLine[], report: Report): void {
  let lower = 0;
  let upper = 0;
  for (const { keyword } of lines) {
    if (!isSelfConsistent(keyword)) continue;
    if (keyword === keyword.toLowerCase()) lower++;
    else upper++;
  }
  const majorityLower = lower > upper;
  for (const { keyword, loc } of lines) {
    const wrong = majorityLower ? keyword !== keyword.toLowerCase() : keyword !== keyword.toUpperCase();
    if (!wrong) continue;
    const casing = majorityLower ? 'lowercase' : 'uppercase';
    report(RULES.ConsistentInstructionCasing, loc, `Command '${keyword}' should match the case of the command majority (${casing})`);
  }
}

/** StageNameCasing, FromAsCasing, ReservedStageName and DuplicateStageName. */
function checkFrom(line: LogicalLine, escapeChar: string, seen: Set<string>, report: Report): void {
  const words = splitOnWhitespace(extractFlags(line.rest, escapeChar).args);
  if (words.length !== 3 || words[1]?.toLowerCase() !== 'as') return;
  const as = words[1];
  const written = words[2] as string;
  const name = written.toLowerCase();
  if (written !== name) report(RULES.StageNameCasing, line.loc, `Stage name '${written}' should be lowercase`);
  // A FROM keyword in mixed case is ConsistentInstructionCasing's business alone.
  const from = line.keyword;
  const mismatch = from === from.toLowerCase() ? as !== as.toLowerCase() : from === from.toUpperCase() && as !== as.toUpperCase();
  if (mismatch) report(RULES.FromAsCasing, line.loc, `'${as}' and '${from}' keywords' casing do not match`);
  if (RESERVED_STAGE_NAMES.has(name)) {
    report(RULES.ReservedStageName, line.loc, `Stage name should not use the same name as reserved stage "${name}"`);
  }
  if (seen.has(name)) report(RULES.DuplicateStageName, line.loc, `Duplicate stage name "${name}", stage names should be unique`);
  seen.add(name);
}
