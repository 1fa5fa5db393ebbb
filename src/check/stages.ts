// The plan's stages walked as the builder would walk them, without running a step or reading a
// base image: FROM lines resolved with the global ARGs (to a stage, scratch, or an image
// reference), the --platform of each checked, COPY --from and RUN --mount from= resolved, and
// each stage's variables followed through ARG and ENV. What the builder would refuse is an
// error; what BuildKit's linter reports while converting (dockerfile2llb/convert.go and
// validations.go) is a violation.
//
// Without the base image, a stage's environment is known only when it starts from scratch or
// from a stage that does: an image's ENV could define any name. UndefinedVar is reported there
// only (docs/differences.md).
import { globalArgs, platformArgs } from '../builder/args.js';
import { checkForeignRun } from '../builder/platforms.js';
import { stageByName, type ResolvedFrom } from '../builder/stages.js';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { hostPlatform, parsePlatform, formatPlatform, type Platform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import { parseMount } from '../parse/mounts.js';
import { expandWord, referencedVariables, type ArgStep, type BuildPlan, type Env, type Stage, type Step } from '../parse/index.js';
import { checkCopySources, type IgnoreFile } from './copy-sources.js';
import { RULES } from './rules.js';
import { suggest } from '../suggest.js';
import type { Report } from './written.js';

export interface StageOptions {
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The context's ignore file, for CopyIgnoredFile; absent when the context is not known. */
  readonly ignore?: IgnoreFile;
}

/** What the walk learnt about a stage, for the stages built on it and for size.ts. */
export interface StageFacts {
  /** The environment is fully known (scratch, or a stage on scratch). */
  readonly known: boolean;
  readonly env: Env;
  readonly workdirSet: boolean;
  readonly shellSet: boolean;
  /** The earlier stage this one starts from, when it does. */
  readonly baseStage?: number;
}

function expand(word: string, env: Env, plan: BuildPlan, loc: SourceLocation): string {
  try {
    return expandWord(word, env, plan.escapeChar);
  } catch (err) {
    throw new DockerfileError(loc, (err as Error).message, { cause: err });
  }
}

/** The global ARGs' values (the builder's, args.ts, for the host), and every name declared outside a stage. */
function globalScope(plan: BuildPlan, buildArgs: StageOptions['buildArgs']): { env: Map<string, string>; declared: Set<string> } {
  // tsbuild builds for the host only.
  const host = hostPlatform();
  const platform = platformArgs({ build: host, target: host }, undefined, plan, {});
  const env = globalArgs(plan, buildArgs, platform).values;
  const declared = new Set([...platform.keys(), ...plan.globalArgs.flatMap((step) => step.args.map((a) => a.name))]);
  return { env, declared };
}

/** Runs the stage rules; throws a DockerfileError for what tsbuild could not build. */
export function checkStages(plan: BuildPlan, options: StageOptions, report: Report): StageFacts[] {
  const global = globalScope(plan, options.buildArgs);
  const defaults = globalScope(plan, {}).env;
  const facts: StageFacts[] = [];
  const host = hostPlatform();
  for (const stage of plan.stages) {
    const from = stage.from;
    for (const word of [from.image, ...(from.platform === undefined ? [] : [from.platform])]) {
      for (const name of referencedVariables(word, plan.escapeChar)) {
        if (global.declared.has(name)) continue;
        const hint = suggest(name, [...global.declared]);
        report(RULES.UndefinedArgInFrom, from.loc, `FROM argument '${name}' is not declared${hint ? ` (did you mean ${hint}?)` : ''}`);
      }
    }
    checkDefaultBase(plan, stage, defaults, report);
    const image = expand(from.image, global.env, plan, from.loc);
    if (image === '') throw new DockerfileError(from.loc, `base name (${from.image}) should not be blank`);
    if (from.platform !== undefined) checkPlatform(plan, stage, expand(from.platform, global.env, plan, from.loc), host, report);
    const base = stageByName(plan, image, stage.index);
    let start: StageFacts;
    if (base !== undefined) {
      start = facts[base.index] as StageFacts;
    } else {
      if (image !== 'scratch') reference(image, from.loc, 'base image');
      start = { known: image === 'scratch', env: new Map([['PATH', '']]), workdirSet: false, shellSet: false };
    }
    const walked = walkStage(plan, stage, start, global.env, options, report);
    facts.push(base === undefined ? walked : { ...walked, baseStage: base.index });
  }
  return facts;
}

/** InvalidDefaultArgInFrom: the FROM with the ARGs' defaults alone names no image. */
function checkDefaultBase(plan: BuildPlan, stage: Stage, defaults: Env, report: Report): void {
  const { from } = stage;
  if (referencedVariables(from.image, plan.escapeChar).length === 0) return;
  try {
    parseReference(expandWord(from.image, defaults, plan.escapeChar));
  } catch {
    report(RULES.InvalidDefaultArgInFrom, from.loc, `Default value for ARG ${from.image} results in empty or invalid base image name`);
  }
}

/** RedundantTargetPlatform, FromPlatformFlagConstDisallowed, and a RUN for a foreign platform. */
function checkPlatform(plan: BuildPlan, stage: Stage, value: string, host: Platform, report: Report): void {
  const { from } = stage;
  const written = from.platform as string;
  const names = referencedVariables(written, plan.escapeChar);
  if (names.length === 1 && names[0] === 'TARGETPLATFORM' && value === formatPlatform(host)) {
    report(
      RULES.RedundantTargetPlatform,
      from.loc,
      `Setting platform to predefined ${written} in FROM is redundant as this is the default behavior`,
    );
  }
  let platform: Platform;
  try {
    platform = parsePlatform(value);
  } catch (err) {
    throw new DockerfileError(from.loc, (err as Error).message, { cause: err });
  }
  const name = stage.name ?? '';
  if (names.length === 0 && !name.includes(platform.os) && !name.includes(platform.architecture)) {
    report(RULES.FromPlatformFlagConstDisallowed, from.loc, `FROM --platform flag should not use constant value "${value}"`);
  }
  // A stage for another platform builds as long as it runs nothing (the builder's own refusal, platforms.ts).
  const froms: ResolvedFrom[] = [];
  froms[stage.index] = { base: '', platform };
  checkForeignRun(plan, [stage], froms, host);
}

function reference(name: string, loc: SourceLocation, what: string): void {
  try {
    parseReference(name);
  } catch (err) {
    throw new DockerfileError(loc, `${what} ${JSON.stringify(name)}: ${(err as Error).message}`, { cause: err });
  }
}

/** COPY --from and RUN --mount from=: an earlier stage, or else an image (never a later stage). */
function checkFromReference(plan: BuildPlan, stage: Stage, name: string, loc: SourceLocation): void {
  if (stageByName(plan, name, stage.index) !== undefined) return;
  if (/^\d+$/.test(name)) throw new DockerfileError(loc, `invalid from flag value ${name}: index out of bounds`);
  const later = plan.stages.find((s) => s.index >= stage.index && s.name === name.toLowerCase());
  if (later !== undefined) {
    throw new DockerfileError(
      loc,
      `stage ${JSON.stringify(name)} is used before it is defined (or by itself): a stage can use only the stages above it`,
    );
  }
  reference(name, loc, 'image');
}

/** The words of a step that the builder expands (RUN's command goes to the shell instead). */
function expandedWords(step: Step): string[] {
  switch (step.kind) {
    case 'COPY':
    case 'ADD':
      return [...step.sources, step.dest, ...[step.chown, step.chmod, step.checksum].filter((w): w is string => w !== undefined)];
    case 'ENV':
      return step.pairs.map(([, value]) => value);
    case 'LABEL':
      return step.pairs.flatMap(([key, value]) => [key, value]);
    case 'WORKDIR':
      return [step.path];
    case 'USER':
      return [step.user];
    case 'EXPOSE':
      return [...step.ports];
    case 'VOLUME':
      return [...step.paths];
    case 'STOPSIGNAL':
      return [step.signal];
    default:
      return [];
  }
}

// Go's regexps of validateNoSecretKey: a secret-like word at either end of the name, unless an
// allowed word is too.
const SECRET = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const NOT_SECRET = /(?:_|^)(?:public|file|version)(?:_|$)/i;

function checkSecretName(instruction: string, name: string, loc: SourceLocation, report: Report): void {
  if (SECRET.test(name) && !NOT_SECRET.test(name)) {
    report(
      RULES.SecretsUsedInArgOrEnv,
      loc,
      `Do not use ARG or ENV instructions for sensitive data (${instruction} ${JSON.stringify(name)})`,
    );
  }
}

/** One stage's steps in order, with its variables as they change. */
function walkStage(
  plan: BuildPlan,
  stage: Stage,
  start: StageFacts,
  globals: Env,
  options: StageOptions,
  report: Report,
): Omit<StageFacts, 'baseStage'> {
  const env = new Map(start.env);
  const declared = new Set<string>();
  let { workdirSet, shellSet } = start;
  const once = new Map<string, SourceLocation>();
  const undefinedVars = (words: readonly string[], loc: SourceLocation): void => {
    if (!start.known) return;
    const reported = new Set<string>();
    for (const name of words.flatMap((word) => referencedVariables(word, plan.escapeChar))) {
      if (env.has(name) || declared.has(name) || reported.has(name)) continue;
      reported.add(name);
      const hint = suggest(name, [...env.keys()], true);
      report(RULES.UndefinedVar, loc, `Usage of undefined variable '$${name}'${hint ? ` (did you mean $${hint}?)` : ''}`);
    }
  };
  for (const step of stage.steps) {
    undefinedVars(expandedWords(step), step.loc);
    switch (step.kind) {
      case 'ARG':
        declareArgs(plan, step, env, declared, globals, options.buildArgs, undefinedVars, report);
        break;
      case 'ENV':
        // Every value is expanded with the variables from before the instruction, as Docker does.
        for (const [key, value] of step.pairs.map(([key, value]) => [key, expand(value, env, plan, step.loc)] as const)) {
          checkSecretName('ENV', key, step.loc, report);
          env.set(key, value);
        }
        break;
      case 'WORKDIR': {
        const path = expand(step.path, env, plan, step.loc);
        // `WORKDIR $HOME/app` on an image: the image's ENV may make it absolute.
        const unknown = !start.known && referencedVariables(step.path, plan.escapeChar).some((name) => !env.has(name));
        if (!workdirSet && !unknown && !isAbsolute(path)) {
          report(
            RULES.WorkdirRelativePath,
            step.loc,
            `Relative workdir ${JSON.stringify(path)} can have unexpected results if the base image changes`,
          );
        }
        workdirSet = true;
        break;
      }
      case 'SHELL':
        shellSet = true;
        break;
      case 'CMD':
      case 'ENTRYPOINT':
      case 'HEALTHCHECK': {
        const previous = once.get(step.kind);
        if (previous !== undefined) {
          report(
            RULES.MultipleInstructionsDisallowed,
            previous,
            `Multiple ${step.kind} instructions should not be used in the same stage because only the last one will be used`,
          );
        }
        once.set(step.kind, step.loc);
        if (step.kind !== 'HEALTHCHECK' && step.cmd.form === 'shell' && !shellSet) {
          report(
            RULES.JSONArgsRecommended,
            step.loc,
            `JSON arguments recommended for ${step.kind} to prevent unintended behavior related to OS signals`,
          );
        }
        break;
      }
      case 'COPY':
      case 'ADD':
        if (step.from !== undefined) checkFromReference(plan, stage, step.from, step.loc);
        else if (options.ignore !== undefined) checkCopySources(step, (w) => expand(w, env, plan, step.loc), options.ignore, report);
        break;
      case 'RUN':
        for (const raw of step.mounts ?? []) {
          const from = mountFrom(raw, (v) => expand(v, env, plan, step.loc), step.loc);
          if (from !== undefined) checkFromReference(plan, stage, from, step.loc);
        }
        break;
      default:
        break;
    }
  }
  return { known: start.known, env, workdirSet, shellSet };
}

/** BuildKit's system.IsAbs for either OS: `/x`, or a Windows image's `C:\\x` and `\\x`. */
function isAbsolute(path: string): boolean {
  return path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path);
}

/** A RUN --mount's `from`, its values expanded as the builder expands them. */
function mountFrom(raw: string, expandValue: (value: string) => string, loc: SourceLocation): string | undefined {
  try {
    return parseMount(raw, expandValue).from;
  } catch (err) {
    if (err instanceof DockerfileError) throw err;
    throw new DockerfileError(loc, (err as Error).message, { cause: err });
  }
}

function declareArgs(
  plan: BuildPlan,
  step: ArgStep,
  env: Map<string, string>,
  declared: Set<string>,
  globals: Env,
  buildArgs: StageOptions['buildArgs'],
  undefinedVars: (words: readonly string[], loc: SourceLocation) => void,
  report: Report,
): void {
  for (const arg of step.args) {
    checkSecretName('ARG', arg.name, step.loc, report);
    if (arg.default !== undefined) undefinedVars([arg.default], step.loc);
    declared.add(arg.name);
    // A stage's ARG takes the --build-arg value, else its default, else the global ARG's value.
    const value = Object.hasOwn(buildArgs, arg.name)
      ? buildArgs[arg.name]
      : arg.default !== undefined
        ? expand(arg.default, env, plan, step.loc)
        : globals.get(arg.name);
    if (value !== undefined) env.set(arg.name, value);
  }
}
