// A build: the stages the target needs, each built in turn (stage.ts), and the last one stored
// as the image, with the provenance of its history entries and its tags. It never re-reads
// Dockerfile text: everything it needs is in the plan. Before any step runs, the ARGs outside
// a stage (args.ts) resolve every FROM line, which chooses the stages; after the last, the
// warning for --build-arg values no ARG used.
import { resolve } from 'node:path';
import { openContext } from '../context/index.js';
import { sha256 } from '../digest.js';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { serializeConfig } from '../image/config.js';
import { hostPlatform } from '../image/platform.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import type { Stage } from '../parse/plan.js';
import type { Store } from '../store/store.js';
import { CacheContentError } from '../cache/errors.js';
import type { ExportRecord } from '../cache/export.js';
import { isPending } from '../cache/pending.js';
import type { CacheTo } from '../cache/spec.js';
import type { RegistryOptions } from '../registry/client.js';
import type { BlobCache, PushResult } from '../registry/push.js';
import type { BlobRecord } from '../store/distribution.js';
import type { Image } from '../image/image.js';
import type { Digest } from '../digest.js';
import { globalArgs, platformArgs } from './args.js';
import { PREDEFINED_ARGS } from './instructions.js';
import type { BuildRequest, BuildResult } from './request.js';
import { BuildSession, type StageResult } from './session.js';
import { buildStage } from './stage.js';
import { checkForeignRun } from './platforms.js';
import { resolveFroms, stagesToBuild, type ResolvedFrom } from './stages.js';

export async function build(store: Store, request: BuildRequest): Promise<BuildResult> {
  if ((request.platforms?.length ?? 0) > 1) {
    // Loaded only for a multi-platform build.
    const { buildPlatforms } = await import('./multi-platform.js');
    return buildPlatforms(store, request, { plan: planStages, build: buildOnePlatform });
  }
  const only = request.platforms?.[0];
  return buildOnePlatform(store, only ? { ...request, platform: only } : request);
}

/** A build for one platform (`request.platform`, else this machine's). */
async function buildOnePlatform(store: Store, request: BuildRequest): Promise<BuildResult> {
  try {
    return await buildOnce(store, request);
  } catch (err) {
    // A cache that failed the build once it was relied on (a blob missing or not the layer its
    // record names) is dropped, and the build starts again: the steps it already finished are in
    // the store's cache now, so only what the bad cache supplied is built again.
    if (!(err instanceof CacheContentError) || !request.cacheImports?.length) throw err;
    request.events?.warning?.(`${err.message}; building again without the --cache-from caches`);
    const { cacheImports: _, ...rest } = request;
    return buildOnce(store, rest);
  }
}

/**
 * What a build for `req.platform` runs, before any step: the ARGs outside a stage, each FROM
 * resolved, the stages the target needs; and the refusals that need no step (a foreign RUN).
 * A multi-platform build asks this of every platform before it builds the first.
 */
export function planStages(req: BuildRequest): { global: ReturnType<typeof globalArgs>; froms: ResolvedFrom[]; stages: Stage[] } {
  const { plan } = withContextsForStages(req);
  const buildArgs = req.buildArgs ?? {};
  const platform = req.platform ?? hostPlatform();
  const global = globalArgs(plan, buildArgs, platformArgs({ build: hostPlatform(), target: platform }, req.target, plan, buildArgs));
  const froms = resolveFroms(plan, global.values);
  const stages = stagesToBuild(plan, froms, req.target);
  checkForeignRun(plan, stages, froms, platform);
  return { global, froms, stages };
}

async function buildOnce(store: Store, request: BuildRequest): Promise<BuildResult> {
  const req = withContextsForStages(request);
  const { plan } = req;
  const buildArgs = req.buildArgs ?? {};
  const { global, froms, stages } = planStages(req);
  if (stages.some((s) => s.steps.some((step) => step.kind === 'RUN' && (step.mounts !== undefined || step.security !== undefined)))) {
    await (await import('./preflight.js')).preflight(store, req, stages);
  }
  const context = await openContext(req.contextDir, req.dockerfile !== undefined ? { dockerfile: resolve(req.dockerfile) } : {});
  // Loaded only for --cache-from: every module is start-up time.
  const cacheFrom = req.cacheFrom?.length ? await (await import('./cache-from.js')).indexCacheFrom(store, req.cacheFrom) : new Map();
  const totalSteps = stages.reduce((n, s) => n + 1 + s.steps.length, 0);
  const session: BuildSession = new BuildSession(
    store,
    req,
    { escapeChar: plan.escapeChar, buildArgs, globalArgs: global.values, now: () => session.now() },
    froms,
    context,
    cacheFrom,
    totalSteps,
    { logRecords: (req.cacheExports?.length ?? 0) > 0 },
  );
  try {
    session.startChecksums(stages);
    if (req.cacheImports?.length) {
      const { CacheSources } = await import('../cache/sources.js');
      const sources = await CacheSources.load(store, req.cacheImports, {
        registry: registryOptions(req),
        warn: (m) => req.events?.warning?.(m),
        blobs: await session.blobFiles(),
      });
      if (!sources.empty) session.remote = sources;
      else sources.close();
    }
    return await buildStages(session, stages, global.used);
  } finally {
    await session.close();
  }
}

async function buildStages(session: BuildSession, stages: readonly Stage[], globalUsed: Iterable<string>): Promise<BuildResult> {
  const { store, req } = session;
  const buildArgs = req.buildArgs ?? {};
  for (const name of globalUsed) session.usedArgs.add(name);
  for (const [name, c] of req.namedContexts ?? []) {
    if (c.kind === 'dir') session.localContexts.set(name, await openContext(c.dir));
    if (c.kind === 'oci-layout')
      session.contextImages.set(
        name,
        await (
          await import('./oci-context.js')
        ).loadOciLayout(store, c.dir, req.signal, {
          ...(c.tag !== undefined ? { tag: c.tag } : {}),
          ...(c.digest !== undefined ? { digest: c.digest } : {}),
        }),
      );
  }
  if (req.squash && req.cacheExports?.some((c) => c.type === 'inline'))
    throw new InvalidInputError('squash cannot be used with an inline cache: the inline cache names the layers squashing merges');
  // What --secret and --ssh name must exist before a step runs (the CLI checked too; a library
  // caller may not have).
  if (req.secrets?.length) await (await session.secrets()).check();
  if (req.ssh?.length) await (await session.sshAgents()).check();

  let last: StageResult | undefined;
  for (const stage of stages) {
    last = await buildStage(session, stage);
    session.built.set(stage.index, last);
  }
  const warning = unusedArgsWarning(buildArgs, session.usedArgs);
  if (warning) req.events?.warning?.(warning);

  const finalStage = stages.at(-1)!.index;
  let final = withLabels(last!, req.labels);
  if (req.squash) {
    const { squashStage } = await import('./squash.js');
    final = await squashStage(session, final, await session.stored(final.layers));
  }
  if (req.cacheExports?.some((c) => c.type === 'inline')) final = await withInlineCache(session, final, finalStage);
  if (req.pushTo?.length) {
    const pushed = await pushFromBuild(session, final);
    await exportCaches(session, finalStage);
    return { imageId: sha256(serializeConfig(final.config)), tags: [], config: final.config, pushed };
  }
  // The image is stored: layers known from a cache are unpacked now, if no step needed them.
  final = { ...final, layers: await session.stored(final.layers) };
  const configBytes = serializeConfig(final.config);
  // The last point where an interrupted build leaves nothing: from here on it is stored and tagged.
  session.checkAborted();
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
  await exportCaches(session, finalStage);
  return { imageId, tags, config: final.config };
}

async function exportCaches(session: BuildSession, finalStage: number): Promise<void> {
  for (const to of session.req.cacheExports ?? []) {
    if (to.type !== 'inline') await exportTo(session, to, finalStage);
  }
}

/** `pushTo`: the image pushed as the build holds it, its pending layers mounted from where they are. */
async function pushFromBuild(session: BuildSession, final: StageResult): Promise<PushResult[]> {
  const { store, req } = session;
  const { pushImageView } = await import('../registry/push.js');
  const configBytes = serializeConfig(final.config);
  const known = new Map<Digest, BlobRecord>();
  const layers = final.layers.map((l) => {
    if (!isPending(l)) return store.layer(l);
    if (l.known) known.set(l.diffId, l.known);
    return l.layer;
  });
  const image: Image = { id: sha256(configBytes), configBytes, config: final.config, layers };
  const blobs: BlobCache = {
    blobsOf: async (diffId) => [...(known.has(diffId) ? [known.get(diffId)!] : []), ...(await store.blobsOf(diffId))],
    rememberBlob: (diffId, rec) => store.rememberBlob(diffId, rec),
  };
  const out: PushResult[] = [];
  for (const name of req.pushTo ?? []) {
    const ref = withDefaultTag(parseReference(name));
    out.push(await pushImageView(store, image, ref, blobs, { ...registryOptions(req), compression: 'gzip' }));
  }
  return out;
}

/** The records of the final stage (mode=min) or of every stage (mode=max), as export takes them. */
function exportRecords(session: BuildSession, finalStage: number, max: boolean, inline = false): ExportRecord[] {
  const out: ExportRecord[] = [];
  for (const r of session.cacheLog?.values() ?? []) {
    if (!max && r.stage !== finalStage) continue;
    // An inline cache never holds the other stages a twin's own key names (LoggedRecord.twin).
    if (inline && r.twin) continue;
    const chain = r.chain.map((l) =>
      isPending(l)
        ? { diffId: l.diffId, layer: l.layer, ...(l.known ? { known: l.known } : {}) }
        : { diffId: l.diffId, layer: session.store.layer(l) },
    );
    const { stage: _, chain: _c, twin: _t, ...rest } = r;
    out.push({ ...rest, chain });
  }
  return out;
}

async function exportTo(session: BuildSession, to: Exclude<CacheTo, { type: 'inline' }>, finalStage: number): Promise<void> {
  const { req } = session;
  const { exportCache } = await import('../cache/export.js');
  try {
    await exportCache(session.store, to, exportRecords(session, finalStage, to.options.mode === 'max'), {
      registry: registryOptions(req),
      ...(req.signal ? { signal: req.signal } : {}),
    });
  } catch (err) {
    session.checkAborted();
    const where = to.type === 'local' ? to.dir : to.ref;
    if (!to.options.ignoreError) throw new TsbuildError(`--cache-to ${where}: ${(err as Error).message}`, { cause: err });
    req.events?.warning?.(`--cache-to ${where}: ${(err as Error).message} (ignore-error=true: the build stands)`);
  }
}

/** `--cache-to type=inline`: the final stage's records, in the image config (format.ts INLINE_FIELD). */
async function withInlineCache(session: BuildSession, final: StageResult, finalStage: number): Promise<StageResult> {
  const { inlineCache } = await import('../cache/export.js');
  const inline = inlineCache(exportRecords(session, finalStage, false, true), final.config.rootfs.diff_ids);
  return { ...final, config: { ...final.config, 'tsbuild.cache.v1': inline } };
}

/** How the caches reach registries: as FROM pulls do. */
function registryOptions(req: BuildRequest): RegistryOptions {
  return {
    ...(req.pull?.insecureRegistries ? { insecureRegistries: req.pull.insecureRegistries } : {}),
    ...(req.pull?.credentials ? { credentials: req.pull.credentials } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  };
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
