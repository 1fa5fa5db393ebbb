// Building one stage: its FROM, its base's ONBUILD triggers, then each instruction in turn. An
// instruction's meaning comes from instructions.ts; what it asks of the filesystem is carried
// out by run-step.ts, copy-step.ts and workdir-step.ts.
import { DockerfileError } from '../errors.js';
import { explainNoSpace, isNoSpace, NO_SPACE_WORDS } from '../fs/nospace.js';
import type { Stage, Step } from '../parse/plan.js';
import { startFrom, triggerSteps } from './base.js';
import { copyStep } from './copy-step.js';
import { runStep } from './run-step.js';
import { metadataStep, settleMetadata } from './metadata-step.js';
import { stageConfig, type BuildSession, type StageResult, type StageState } from './session.js';
import { workdirStep } from './workdir-step.js';

export async function buildStage(session: BuildSession, stage: Stage): Promise<StageResult> {
  // A step's place, for caches to compare a missed step with the one there before: its stage
  // (by name, which survives stages added before it) and its position in the stage.
  const place = stage.name ?? String(stage.index);
  session.announce(stage.from.text, stage.from.loc, place);
  const { state, triggers, baseId } = await startFrom(session, stage);
  for (const [t, trigger] of triggerSteps(stage, triggers).entries()) {
    for (const [n, step] of trigger.steps.entries()) {
      session.events.trigger?.(step.text);
      state.current = { loc: stage.from.loc, text: `ONBUILD ${step.text}` };
      state.slot = `${place}/onbuild-${t}-${n}`;
      await session.checkpoint();
      await execute(session, state, step);
    }
  }
  for (const [n, step] of stage.steps.entries()) {
    await session.checkpoint();
    session.announce(step.text, step.loc, place);
    state.current = { loc: step.loc, text: step.text };
    state.slot = `${place}/${n}`;
    await execute(session, state, step);
  }
  await settleMetadata(session, state);
  return {
    config: { ...stageConfig(state), created: stageCreated(session, state) },
    layers: state.layers,
    origins: state.origins,
    ...(baseId ? { imageId: baseId } : {}),
  };
}

async function execute(session: BuildSession, state: StageState, step: Step): Promise<void> {
  try {
    await executeStep(session, state, step);
  } catch (err) {
    throw noSpaceAtLine(session, step, err);
  }
}

/**
 * A full disk, in words and at the step's line, whatever the step was writing when it found out
 * (its layer says so itself, layer-step.ts; a cache record, a scratch file or the image say it here).
 */
function noSpaceAtLine(session: BuildSession, step: Step, err: unknown): unknown {
  if (!isNoSpace(err) || (err instanceof DockerfileError && err.detail.startsWith(NO_SPACE_WORDS))) return err;
  const said = explainNoSpace(err, `carrying out ${step.kind}`, session.store.root) as Error;
  const loc = err instanceof DockerfileError ? err.location : step.loc;
  return new DockerfileError(loc, said.message, { cause: said });
}

async function executeStep(session: BuildSession, state: StageState, step: Step): Promise<void> {
  const outcome = state.draft.apply(step, session.scope);
  for (const name of outcome.usedArgs ?? []) session.usedArgs.add(name);
  const work = outcome.work;
  if (work === undefined) return metadataStep(state, outcome.history);
  // A layer step's key does not hold the times before it, but the next run's does: settle them.
  await settleMetadata(session, state);
  // Imported above, not on first use: a module imported in the middle of a build costs about
  // twice what it does in the batch Node loads at start (COPY's modules: 15 ms, measured).
  if (work.kind === 'RUN' && step.kind === 'RUN') return runStep(session, state, step, work, outcome.history);
  if ((work.kind === 'COPY' || work.kind === 'ADD') && (step.kind === 'COPY' || step.kind === 'ADD')) {
    return copyStep(session, state, step, work, outcome.history);
  }
  if (work.kind === 'WORKDIR' && step.kind === 'WORKDIR') return workdirStep(session, state, step, work, outcome.history);
  throw new Error(`${step.kind}: unexpected work ${work.kind}`);
}

/**
 * The stage image's `created`: its newest history entry's, so a fully cached build, whose entries
 * all come from the cache, is the same image again (a stage that added nothing to its base keeps
 * the base's last time); now for an image with no history at all. SOURCE_DATE_EPOCH, when given,
 * is the time of everything.
 */
function stageCreated(session: BuildSession, state: StageState): string {
  if (session.req.sourceDateEpoch !== undefined) return session.now();
  return state.history.at(-1)?.created ?? session.now();
}
