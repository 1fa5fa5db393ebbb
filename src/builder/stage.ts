// Building one stage: its FROM, its base's ONBUILD triggers, then each instruction in turn. An
// instruction's meaning comes from instructions.ts; what it asks of the filesystem is carried
// out by run-step.ts, copy-step.ts and workdir-step.ts.
import type { Step } from '../parse/plan.js';
import type { Stage } from '../parse/plan.js';
import { startFrom, triggerSteps } from './base.js';
import { dispatch } from './instructions.js';
import { addHistory, stageConfig, type BuildSession, type StageResult, type StageState } from './session.js';

export async function buildStage(session: BuildSession, stage: Stage): Promise<StageResult> {
  session.announce(stage.from.text, stage.from.loc);
  const { state, triggers, baseId } = await startFrom(session, stage);
  for (const trigger of triggerSteps(stage, triggers)) {
    for (const step of trigger.steps) {
      session.events.trigger?.(step.text);
      state.current = { loc: stage.from.loc, text: `ONBUILD ${step.text}` };
      await execute(session, state, step);
    }
  }
  for (const step of stage.steps) {
    session.announce(step.text, step.loc);
    state.current = { loc: step.loc, text: step.text };
    await execute(session, state, step);
  }
  return {
    config: { ...stageConfig(state), created: session.now() },
    layers: state.layers,
    origins: state.origins,
    ...(baseId ? { imageId: baseId } : {}),
  };
}

async function execute(session: BuildSession, state: StageState, step: Step): Promise<void> {
  const outcome = dispatch(state.vars, step, session.scope);
  state.vars = outcome.vars;
  for (const name of outcome.usedArgs ?? []) session.usedArgs.add(name);
  const work = outcome.work;
  if (work === undefined) {
    addHistory(state, outcome.history);
    return;
  }
  // Each kind of work loads its module when a step first needs it (a RUN-only build loads no
  // COPY rules, checksums or downloads): every module is start-up time.
  if (work.kind === 'RUN' && step.kind === 'RUN')
    return (await import('./run-step.js')).runStep(session, state, step, work, outcome.history);
  if ((work.kind === 'COPY' || work.kind === 'ADD') && (step.kind === 'COPY' || step.kind === 'ADD')) {
    return (await import('./copy-step.js')).copyStep(session, state, step, work, outcome.history);
  }
  if (work.kind === 'WORKDIR' && step.kind === 'WORKDIR') {
    return (await import('./workdir-step.js')).workdirStep(session, state, step, work, outcome.history);
  }
  throw new Error(`${step.kind}: unexpected work ${work.kind}`);
}
