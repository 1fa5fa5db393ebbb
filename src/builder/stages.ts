// Which stages a build runs: the target (the last stage, or --target) and every stage it stands
// on through FROM or COPY --from, in Dockerfile order. Stages nothing needs are not built, as
// BuildKit skips them. A FROM line is expanded with the ARGs outside a stage before any stage is
// chosen (`FROM ${SRC}`, `FROM build-$VARIANT`), as BuildKit's buildDispatchStates does for every
// stage, needed or not: an error in any FROM line stops the build.
import { didYouMean } from '../suggest.js';
import { DockerfileError, TsbuildError } from '../errors.js';
import { parsePlatform, type Platform } from '../image/platform.js';
import { expandWord, type Env } from '../parse/index.js';
import { parseMountAsWritten } from '../parse/mounts.js';
import type { BuildPlan, Stage, Step } from '../parse/plan.js';

/** A stage's FROM line with the ARGs substituted: the base it names and the platform it asks for. */
export interface ResolvedFrom {
  /** `scratch`, an image reference, or an earlier stage's name. */
  readonly base: string;
  readonly platform?: Platform;
}

/** Each stage's FROM line expanded with `args` (the ARGs outside a stage), by stage index. */
export function resolveFroms(plan: BuildPlan, args: Env): ResolvedFrom[] {
  return plan.stages.map(({ from }) => {
    const expand = (word: string): string => {
      try {
        return expandWord(word, args, plan.escapeChar);
      } catch (err) {
        throw new DockerfileError(from.loc, (err as Error).message, { cause: err });
      }
    };
    const base = expand(from.image);
    if (base === '') throw new DockerfileError(from.loc, `base name (${from.image}) should not be blank`);
    if (from.platform === undefined) return { base };
    const value = expand(from.platform);
    if (value === '') throw new DockerfileError(from.loc, `empty platform value from expression ${from.platform}`);
    try {
      return { base, platform: parsePlatform(value) };
    } catch (err) {
      throw new DockerfileError(from.loc, `failed to parse platform ${from.platform}: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** The stage a FROM or COPY --from of stage `before` names: by name (any case) or by index. */
export function stageByName(plan: BuildPlan, name: string, before: number): Stage | undefined {
  const lower = name.toLowerCase();
  return plan.stages.find((s) => s.index < before && (s.name === lower || String(s.index) === name));
}

/** The `from` names of COPY --from and of RUN --mount (those without variables). */
function stageReferences(step: Step, escape: string): string[] {
  if (step.kind === 'COPY' || step.kind === 'ADD') return step.from !== undefined ? [step.from] : [];
  if (step.kind !== 'RUN') return [];
  const names: string[] = [];
  for (const raw of step.mounts ?? []) {
    const from = parseMountAsWritten(raw, escape).from;
    if (from) names.push(from);
  }
  return names;
}

/** The stages to build for `target`, given each stage's resolved FROM (resolveFroms). */
export function stagesToBuild(plan: BuildPlan, froms: readonly ResolvedFrom[], target?: string): Stage[] {
  let last = plan.stages[plan.stages.length - 1]!;
  if (target !== undefined) {
    const t = plan.stages.find((s) => s.name === target.toLowerCase());
    if (!t) {
      const names = plan.stages.flatMap((s) => (s.name ? [s.name] : []));
      throw new TsbuildError(
        `target stage "${target}" could not be found${didYouMean(target.toLowerCase(), names, true, (n) => `"${n}"`)}`,
      );
    }
    last = t;
  }
  const needed = new Set<number>();
  const visit = (s: Stage): void => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    const base = stageByName(plan, froms[s.index]!.base, s.index);
    if (base) visit(base);
    for (const step of s.steps) {
      for (const name of stageReferences(step, plan.escapeChar)) {
        const from = stageByName(plan, name, s.index);
        if (from) visit(from);
      }
    }
  };
  visit(last);
  return plan.stages.filter((s) => needed.has(s.index));
}
