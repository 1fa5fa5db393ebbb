// `tsbuild build --check`: runs src/check and prints its findings as `docker build --check`
// does (buildx's printResult for the lint subrequest, BuildKit's lint.Warning.PrintTo and
// errdefs.Source.Print): a count, then each violation with its rule, URL, message and the
// Dockerfile lines around it. Errors (what tsbuild could not build, a violation under
// `error=true`) go to stderr, one line each, and make the exit code 1; warnings alone exit 0.
import { checkDockerfile, type CheckOptions, type CheckResult, type Violation } from '../../src/check/index.js';
import { forTerminal, oneLine } from '../terminal.js';

export async function runCheck(text: string, options: CheckOptions): Promise<number> {
  const result = await checkDockerfile(text, options);
  process.stdout.write(forTerminal(renderCheck(result, text)));
  for (const note of result.notes) process.stderr.write(`Warning: ${oneLine(note)}\n`);
  for (const error of result.errors) process.stderr.write(`Error: ${oneLine(error)}\n`);
  if (result.errors.length === 0 && result.failed) {
    const rules = [...new Set(result.violations.map((v) => v.rule.name))];
    process.stderr.write(`Error: lint violation found for rules: ${rules.join(', ')}\n`);
  }
  return result.failed ? 1 : 0;
}

export function renderCheck(result: CheckResult, text: string): string {
  const count = result.violations.length;
  if (count === 0) return result.errors.length === 0 ? 'Check complete, no warnings found.\n' : '';
  const lines = text.replace(/^\ufeff/, '').split('\n');
  const found = count === 1 ? '1 warning has been found!' : `${count} warnings have been found!`;
  return [`Check complete, ${found}\n`, ...result.violations.map((v) => renderViolation(v, lines))].join('');
}

function renderViolation(violation: Violation, lines: readonly string[]): string {
  const { rule, loc, message } = violation;
  const head = `\nWARNING: ${rule.name}${rule.url === undefined ? '' : ` - ${rule.url}`}\n${message}\n`;
  return head + renderSource(loc.file, loc.line, violation.lastLine ?? loc.line, lines);
}

/**
 * errdefs.Source.Print: the instruction's lines marked `>>>`, and around them up to two lines
 * either side for a one-line instruction, one for a longer one.
 */
function renderSource(file: string, first: number, last: number, lines: readonly string[]): string {
  if (first < 1 || first > lines.length) return '';
  let start = first;
  let end = Math.min(last, lines.length);
  const pad = end === start ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (start > 1) {
      start--;
      p++;
    }
    if (end !== lines.length) {
      end++;
      p++;
    }
  }
  const out = [`${file}:${first}\n--------------------\n`];
  for (let i = start; i <= end; i++) {
    const marked = i >= first && i <= last;
    out.push(` ${String(i).padStart(3)} | ${marked ? '>>>' : '   '} ${(lines[i - 1] as string).replace(/\r$/, '')}\n`);
  }
  out.push('--------------------\n');
  return out.join('');
}
