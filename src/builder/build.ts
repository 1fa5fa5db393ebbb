// A build: the stages the target needs, each built in turn (stage.ts), and the last one stored
// as the image, with the provenance of its history entries and its tags. It never re-reads
// Dockerfile text: everything it needs is in the plan. Before any step runs, the ARGs outside
// a stage (args.ts) resolve every FROM line, which chooses the stages; after the last, the
// warning for --build-arg values no ARG used.
import { resolve } from 'node:path';
import { openContext } from '../context/index.js';
import { sha256 } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { serializeConfig } from '../image/config.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import type { Stage } from '../parse/plan.js';
import type { Store } from '../store/store.js';
import { globalArgs, platformArgs } from './args.js';
import { PREDEFINED_ARGS } from './instructions.js';
import type { BuildRequest, BuildResult } from './request.js';
import { BuildSession, type StageResult } from './session.js';
import { buildStage } from './stage.js';
import { checkStagePlatforms, resolveFroms, stagesToBuild } from './stages.js';

export async function build(store: Store, request: BuildRequest): Promise<BuildResult> {
  const req = withContextsForStages(request);
  const { plan } = req;
  const buildArgs = req.buildArgs ?? {};
  const platform = targetPlatform(req.platform);
  const global = globalArgs(plan, buildArgs, platformArgs({ build: hostPlatform(), target: platform }, req.target, plan, buildArgs));
  const froms = resolveFroms(plan, global.values);
  const stages = stagesToBuild(plan, froms, req.target);
  checkStagePlatforms(stages, froms, platform);
  if (stages.some((s) => s.steps.some((step) => step.kind === 'RUN' && (step.mounts !== undefined || step.security !== undefined)))) {
    await (await import('./preflight.js')).preflight(store, req, stages);
  }
  const context = await openContext(req.contextDir, req.dockerfile !== undefined ? { dockerfile: resolve(req.dockerfile) } : {});
  // Loaded only for --cache-from: every module is start-up time.
  const cacheFrom = req.cacheFrom?.length
    ? await (await import('./cache-from.js')).indexCacheFrom(store, req.cacheFrom, (m) => req.events?.warning?.(m))
    : new Map();
  const totalSteps = stages.reduce((n, s) => n + 1 + s.steps.length, 0);
  const session: BuildSession = new BuildSession(
    store,
    req,
    { escapeChar: plan.escapeChar, buildArgs, globalArgs: global.values, now: () => session.now() },
    froms,
    context,
    cacheFrom,
    totalSteps,
  );
  for (const name of global.used) session.usedArgs.add(name);
  for (const [name, c] of req.namedContexts ?? []) {
    if (c.kind === 'dir') session.localContexts.set(name, await openContext(c.dir));
    if (c.kind === 'oci-layout')
      session.contextImages.set(name, await (await import('./oci-context.js')).loadOciLayout(store, c.dir, req.signal));
  }
  // What --secret and --ssh name must exist before a step runs (the CLI checked too; a library
  // caller may not have).
  if (req.secrets?.length) await (await session.secrets()).check();
  if (req.ssh?.length) await (await session.sshAgents()).check();

  let last: StageResult | undefined;
  try {
    for (const stage of stages) {
      last = await buildStage(session, stage);
      session.built.set(stage.index, last);
    }
  } finally {
    await session.close();
  }
  const warning = unusedArgsWarning(buildArgs, session.usedArgs);
  if (warning) req.events?.warning?.(warning);

  const final = withLabels(last!, req.labels);
  const configBytes = serializeConfig(final.config);
  // A stage that changed nothing of its base (a lone FROM) is its base, as in Docker's classic
  // builder: tagged, and left as it was stored (no parent of itself, no build record).
  const isBase = final.imageId !== undefined && final.imageId === sha256(configBytes);
  const imageId = isBase
    ? final.imageId!
    : await store.putImage(configBytes, {
        ...(final.imageId ? { parent: final.imageId } : {}),
        provenance: {
          context: resolve(req.contextDir),
          ...(req.dockerfile !== undefined ? { dockerfile: resolve(req.dockerfile) } : {}),
          steps: final.origins,
        },
      });
  const tags: string[] = [];
  for (const t of req.tags ?? []) {
    const ref = withDefaultTag(parseReference(t));
    await store.tag(ref, imageId);
    tags.push(familiarString(ref));
  }
  return { imageId, tags, config: final.config };
}

/** The platform the image is built for: this machine's, the only one tsbuild builds for yet. */
function targetPlatform(asked: Platform | undefined): Platform {
  const host = hostPlatform();
  if (asked !== undefined && formatPlatform(asked) !== formatPlatform(host)) {
    throw new InvalidInputError(
      `platform ${formatPlatform(asked)}: multi-platform builds are not supported yet; this machine builds ${formatPlatform(host)}`,
    );
  }
  return host;
}

/**
 * A --build-context named like a stage replaces the stage, as in BuildKit: the stage loses its
 * name, so FROM, COPY --from and RUN --mount from= naming it reach the context, and the stage
 * itself is built only if something still names it by index.
 */
function withContextsForStages(req: BuildRequest): BuildRequest {
  const named = req.namedContexts;
  const replaced = (s: Stage): boolean => s.name !== undefined && named !== undefined && named.has(s.name);
  if (!req.plan.stages.some(replaced)) return req;
  const stages = req.plan.stages.map((s) => {
    if (!replaced(s)) return s;
    const { name: _, ...unnamed } = s;
    return unnamed;
  });
  return { ...req, plan: { ...req.plan, stages } };
}

/**
 * `--label`: labels of the image built, over those its Dockerfile set; no history entry, as in
 * BuildKit's dockerfile2llb, which sets them on the target's config alone.
 */
function withLabels(final: StageResult, labels: Readonly<Record<string, string>> | undefined): StageResult {
  if (!labels || Object.keys(labels).length === 0) return final;
  const c = final.config;
  return { ...final, config: { ...c, config: { ...c.config, Labels: { ...(c.config.Labels ?? {}), ...labels } } } };
}

/**
 * Docker's classic builder's warning (BuildArgs.WarnOnUnusedBuildArgs): one line, the names
 * sorted, as Go prints a []string; undefined when every --build-arg was used.
 */
function unusedArgsWarning(buildArgs: Readonly<Record<string, string>>, used: ReadonlySet<string>): string | undefined {
  const unused = Object.keys(buildArgs).filter((n) => !used.has(n) && !PREDEFINED_ARGS.has(n));
  return unused.length > 0 ? `[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed` : undefined;
}
