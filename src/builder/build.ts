// A build: the stages the target needs, each built in turn (stage.ts), and the last one stored
// as the image, with the provenance of its history entries and its tags. It never re-reads
// Dockerfile text: everything it needs is in the plan.
import { resolve } from 'node:path';
import { openContext } from '../context/index.js';
import { serializeConfig } from '../image/config.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { globalArgs, unusedArgsWarning } from './args.js';
import { indexCacheFrom } from './cache-from.js';
import type { BuildRequest, BuildResult } from './request.js';
import { BuildSession, type StageResult } from './session.js';
import { buildStage } from './stage.js';
import { stagesToBuild } from './stages.js';

export async function build(store: Store, req: BuildRequest): Promise<BuildResult> {
  const { plan } = req;
  const buildArgs = req.buildArgs ?? {};
  const stages = stagesToBuild(plan, req.target);
  const global = globalArgs(plan, buildArgs);
  const context = await openContext(req.contextDir);
  const cacheFrom = await indexCacheFrom(store, req.cacheFrom ?? [], (m) => req.events?.warning?.(m));
  const totalSteps = stages.reduce((n, s) => n + 1 + s.steps.length, 0);
  const session: BuildSession = new BuildSession(
    store,
    req,
    { escapeChar: plan.escapeChar, buildArgs, globalArgs: global.values, now: () => session.now() },
    context,
    cacheFrom,
    totalSteps,
  );
  for (const name of global.used) session.usedArgs.add(name);

  let last: StageResult | undefined;
  for (const stage of stages) {
    last = await buildStage(session, stage);
    session.built.set(stage.index, last);
  }
  const warning = unusedArgsWarning(buildArgs, session.usedArgs);
  if (warning) req.events?.warning?.(warning);

  const final = last!;
  const imageId = await store.putImage(serializeConfig(final.config), {
    ...(final.imageId ? { parent: final.imageId } : {}),
    provenance: { context: resolve(req.contextDir), steps: final.origins },
  });
  const tags: string[] = [];
  for (const t of req.tags ?? []) {
    const ref = withDefaultTag(parseReference(t));
    await store.tag(ref, imageId);
    tags.push(familiarString(ref));
  }
  return { imageId, tags, config: final.config };
}
