// Which stages a build runs: the target (the last stage, or --target) and every stage it stands
// on through FROM or COPY --from, in Dockerfile order. Stages nothing needs are not built, as
// BuildKit skips them.
import { TsbuildError } from '../errors.js';
import { expandWord } from '../parse/index.js';
import { parseMount } from '../parse/mounts.js';
import { referencedVariables } from '../parse/substitute.js';
import type { BuildPlan, Stage, Step } from '../parse/plan.js';

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
    const from = parseMount(raw, (v) => (referencedVariables(v, escape).length > 0 ? undefined : expandWord(v, new Map(), escape))).from;
    if (from) names.push(from);
  }
  return names;
}

export function stagesToBuild(plan: BuildPlan, target?: string): Stage[] {
  let last = plan.stages[plan.stages.length - 1]!;
  if (target !== undefined) {
    const t = plan.stages.find((s) => s.name === target.toLowerCase());
    if (!t) throw new TsbuildError(`target stage "${target}" could not be found`);
    last = t;
  }
  const needed = new Set<number>();
  const visit = (s: Stage): void => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    const base = stageByName(plan, s.from.image, s.index);
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
