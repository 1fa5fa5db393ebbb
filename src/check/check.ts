// `build --check`: everything tsbuild can say about a Dockerfile without building it, as
// `docker build --check` does (BuildKit's lint mode): parse it and plan every stage, resolve
// the ARGs, platforms and stage references (what the builder would refuse is an error), and
// run the lint rules (rules.ts). No step runs, no base image is read or pulled, no store is
// opened, and of the context only the ignore file is read (for CopyIgnoredFile): an ordinary
// user can check any Dockerfile.
import { DockerfileError, formatLocation, TsbuildError, type SourceLocation } from '../errors.js';
import { parseDockerfile, readDockerfile, type BuildPlan, type DockerfileSource, type Stage } from '../parse/index.js';
import { DEFAULT_CONFIG, parseCheckOptions, ruleEnabled, type CheckConfig } from './config.js';
import type { Rule, Violation } from './rules.js';
import { readIgnoreFile } from './copy-sources.js';
import { checkSize, imageStages } from './size.js';
import { checkStages } from './stages.js';
import { checkWritten } from './written.js';

/** The build argument that holds check options, as in BuildKit; it replaces `# check=`. */
export const CHECK_BUILD_ARG = 'BUILDKIT_DOCKERFILE_CHECK';

export interface CheckOptions {
  /** The Dockerfile's name in locations (`Dockerfile`, `app.Dockerfile`). */
  readonly file: string;
  /** Its path, for `<Dockerfile>.dockerignore`; absent when it came from stdin. */
  readonly dockerfilePath?: string;
  /** The context directory, whose ignore file CopyIgnoredFile reads; absent: not checked. */
  readonly contextDir?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `--target`: the stage whose image the size rules look at (default: the last). */
  readonly target?: string;
}

export interface CheckResult {
  /** Rule violations in line order (those the options skip are left out). */
  readonly violations: readonly Violation[];
  /** What tsbuild could not build: each one line, `Dockerfile:LINE: ...` where it has a line. */
  readonly errors: readonly string[];
  /** What the parser tells on a build too (an unsupported `# syntax=`), one line each. */
  readonly notes: readonly string[];
  /** The options the check ran with. */
  readonly config: CheckConfig;
  /** Exit 1: an error, or a violation under `error=true`. */
  readonly failed: boolean;
}

export async function checkDockerfile(text: string, options: CheckOptions): Promise<CheckResult> {
  const violations: Violation[] = [];
  const errors: string[] = [];
  const notes: string[] = [];
  let config = DEFAULT_CONFIG;
  // Kept all, then filtered with the options in force at each line (stageOptions).
  const report = (rule: Rule, loc: SourceLocation, message: string): void => {
    violations.push({ rule, loc, message });
  };
  const fail = (err: unknown): void => {
    if (!(err instanceof TsbuildError)) throw err;
    errors.push(err.message);
  };
  const buildArgs = options.buildArgs ?? {};

  let source: DockerfileSource | undefined;
  try {
    source = readDockerfile(text, options.file);
    config = checkConfig(source, buildArgs);
  } catch (err) {
    fail(err);
  }
  if (source !== undefined) checkWritten(source.lines, source.escapeChar, report);

  let plan: BuildPlan | undefined;
  try {
    if (source !== undefined) plan = parseDockerfile(text, options.file);
  } catch (err) {
    fail(err);
  }
  if (plan !== undefined) {
    for (const warning of plan.warnings ?? []) notes.push(`${formatLocation(warning.loc)}: ${warning.message}`);
    try {
      const ignore = options.contextDir === undefined ? undefined : await readIgnoreFile(options.contextDir, options.dockerfilePath);
      const facts = checkStages(plan, { buildArgs, ...(ignore === undefined ? {} : { ignore }) }, report);
      const target = targetStage(plan, options.target);
      checkSize(
        plan,
        imageStages(target, (index) => facts[index]?.baseStage),
        report,
      );
    } catch (err) {
      fail(err);
    }
  }
  const optionsAt = stageOptions(text, source, config);
  const kept = violations.filter((v) => ruleEnabled(optionsAt(v.loc.line), v.rule.name));
  kept.sort((a, b) => a.loc.line - b.loc.line);
  // Each violation shows its whole instruction, as BuildKit's source ranges do.
  const lastLines = new Map((source?.lines ?? []).map((line) => [line.loc.line, line.lastLine]));
  const whole = kept.map((v): Violation => {
    const lastLine = lastLines.get(v.loc.line);
    return lastLine !== undefined && lastLine > v.loc.line ? { ...v, lastLine } : v;
  });
  return { violations: whole, errors, notes, config, failed: errors.length > 0 || (config.error && whole.length > 0) };
}

/** The check options: BUILDKIT_DOCKERFILE_CHECK when given, else the `# check=` directive. */
function checkConfig(source: DockerfileSource, buildArgs: Readonly<Record<string, string>>): CheckConfig {
  if (Object.hasOwn(buildArgs, CHECK_BUILD_ARG)) {
    return parseCheckOptions(buildArgs[CHECK_BUILD_ARG] as string, `--build-arg ${CHECK_BUILD_ARG}`);
  }
  const directive = source.directives.find((d) => d.name === 'check');
  if (directive === undefined) return DEFAULT_CONFIG;
  try {
    return parseCheckOptions(directive.value, '# check');
  } catch (err) {
    throw new DockerfileError(directive.loc, (err as Error).message.replace(/^# check: /, ''), { cause: err });
  }
}

const CHECK_COMMENT = /^#\s*check\s*=\s*(.*?)\s*$/i;

/**
 * The options in force at each line. A `# check=` comment in the comment block right above a
 * stage's FROM adds its skips to the file's options for that stage, as BuildKit's
 * WithMergedConfigFromComments does (its value up to the first space; a malformed one is
 * ignored there too). Whether violations fail the check stays the file's choice.
 */
function stageOptions(text: string, source: DockerfileSource | undefined, config: CheckConfig): (line: number) => CheckConfig {
  const physical = text.replace(/^\ufeff/, '').split('\n');
  const stages: { from: number; config: CheckConfig }[] = [];
  // The parser directives at the top are not comments of the first stage (BuildKit strips them).
  const directives = new Set((source?.directives ?? []).map((d) => d.loc.line - 1));
  for (const line of source?.lines ?? []) {
    if (line.keyword.toLowerCase() !== 'from') continue;
    let merged = config;
    for (let i = line.loc.line - 2; i >= 0 && !directives.has(i) && (physical[i] as string).trim().startsWith('#'); i--) {
      const value = CHECK_COMMENT.exec((physical[i] as string).trim())?.[1];
      if (value === undefined) continue;
      try {
        const extra = parseCheckOptions(value.split(' ', 1)[0] as string, '# check');
        merged = { ...merged, skipAll: merged.skipAll || extra.skipAll, skip: new Set([...merged.skip, ...extra.skip]) };
      } catch (err) {
        if (!(err instanceof TsbuildError)) throw err;
      }
    }
    stages.push({ from: line.loc.line, config: merged });
  }
  return (line) => {
    let current = config;
    for (const stage of stages) if (stage.from <= line) current = stage.config;
    return current;
  };
}

function targetStage(plan: BuildPlan, target: string | undefined): Stage {
  if (target === undefined) return plan.stages[plan.stages.length - 1]!;
  const stage = plan.stages.find((s) => s.name === target.toLowerCase());
  if (stage === undefined) throw new TsbuildError(`target stage "${target}" could not be found`);
  return stage;
}
