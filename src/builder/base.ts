// Where a stage starts: `scratch`, an earlier stage, or an image, from the store or else pulled
// from its registry as docker build does; and the base's ONBUILD triggers, run as if they stood
// right after the FROM line.
import { didYouMean } from '../suggest.js';
import { chainIdOf, type Digest } from '../digest.js';
import { DockerfileError, NotFoundError, PlatformNotFoundError, type SourceLocation } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import type { StepOrigin } from '../image/provenance.js';
import { parseTrigger } from '../parse/index.js';
import type { Stage, Step } from '../parse/plan.js';
import { contextAsBase } from './context-base.js';
import { StageDraft, startStage } from './instructions.js';
import { checkBasePlatform, stagePlatform } from './platforms.js';
import { stageByName } from './stages.js';
import type { BuildSession, StageLayer, StageState } from './session.js';

/** The state a stage starts in, and its base's ONBUILD triggers. */
export async function startFrom(
  session: BuildSession,
  stage: Stage,
): Promise<{ state: StageState; triggers: readonly string[]; baseId?: Digest }> {
  const from = stage.from;
  // Expanded with the ARGs outside a stage, and its --platform checked, before any stage ran.
  const name = session.froms[stage.index]!.base;
  let config: ImageConfig;
  let layers: StageLayer[] = [];
  let origins: StepOrigin[] = [];
  let baseId: Digest | undefined;
  const prev = stageByName(session.plan, name, stage.index);
  const platform = stagePlatform(session.plan, session.froms, stage, session.req.platform);
  // Asked for (--platform, or FROM --platform): the base must be for it. Else a stored base is taken as it is.
  const asked = session.req.platform !== undefined || session.froms[stage.index]?.platform !== undefined;
  // A --build-context directory: its files on scratch (context-base.ts).
  const local = prev ? undefined : session.localContexts.get(name);
  if (name === 'scratch' || local) {
    config = {
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    };
  } else if (prev) {
    const r = session.built.get(prev.index);
    if (!r) throw new DockerfileError(from.loc, `stage ${name} was not built`);
    config = r.config;
    layers = [...r.layers];
    origins = [...r.origins];
    baseId = r.imageId;
  } else {
    const base = await baseImage(session, name, from.loc, asked ? platform : undefined);
    config = base.config;
    layers = [...base.layers];
    baseId = base.imageId;
  }
  // A base's inline cache is the base's, not the image built on it.
  const { 'tsbuild.cache.v1': _inline, ...own } = config;
  const { vars, triggers } = startStage(own);
  const state: StageState = { stage, draft: new StageDraft(vars), layers, history: [...config.history], origins };
  if (local) await contextAsBase(session, state, name, local, from.loc);
  return { state, triggers, ...(baseId ? { baseId } : {}) };
}

/** An image a stage starts from or reads: its config and layers, and its ID when the store has it. */
export interface BaseImage {
  readonly config: ImageConfig;
  readonly layers: readonly StageLayer[];
  readonly imageId?: Digest;
}

/**
 * The store's image by that name, or else the one a registry has: pulled, as docker build pulls
 * it; or, when the build has caches to take steps from, resolved without its layers, which are
 * downloaded only if a step reads their files (a build whose steps all hit needs none of a
 * builder stage's base).
 */
export async function baseImage(
  session: BuildSession,
  name: string,
  loc: SourceLocation,
  asked: Platform | undefined = session.req.platform,
): Promise<BaseImage> {
  const { store, req } = session;
  // A platform asked for (--platform, FROM --platform) is the base's to match; else this machine's is preferred.
  const platform = asked ?? hostPlatform();
  const stored = async (id: Digest): Promise<BaseImage> => {
    const image = await store.image(id);
    checkBasePlatform(name, image.config, platform, asked !== undefined, loc);
    return { config: image.config, layers: image.layers.map((l) => l.record), imageId: id };
  };
  // --build-context NAME=oci-layout://DIR or NAME=docker-image://REF: that image stands in for NAME.
  const loaded = session.contextImages.get(name);
  if (loaded) return stored(loaded);
  const named = req.namedContexts?.get(name);
  if (named?.kind === 'image') name = named.ref;
  // One name may be pulled for two platforms (a $BUILDPLATFORM stage's and the target's).
  const key = asked ? `${name}\n${formatPlatform(asked)}` : name;
  const pulled = session.pulled.get(key);
  if (pulled) return stored(pulled);
  if (!req.alwaysPull) {
    try {
      return await stored(await store.resolveImage(name, platform));
    } catch (err) {
      // A stored multi-platform image that lacks the platform: said at the line, not pulled
      // (its name may be the store's only; --pull asks the registry).
      if (err instanceof PlatformNotFoundError) throw new DockerfileError(loc, err.message, { cause: err });
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  if (session.remote) {
    let lazy = session.remoteBases.get(key);
    if (!lazy) {
      lazy = remoteBase(session, name, loc, asked);
      session.remoteBases.set(key, lazy);
    }
    return lazy;
  }
  session.events.pull?.(name);
  try {
    // Loaded only when a base is missing: the registry client is a large part of start-up.
    const { pullImage } = await import('../registry/index.js');
    const { imageId } = await pullImage(store, name, {
      ...(req.pull ?? {}),
      ...(asked ? { platform: asked } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    session.pulled.set(key, imageId);
    return stored(imageId);
  } catch (err) {
    throw baseError(session, name, loc, err);
  }
}

/** A registry's image as pending layers (the store's where it has them), read from its repository when needed. */
async function remoteBase(session: BuildSession, name: string, loc: SourceLocation, asked: Platform | undefined): Promise<BaseImage> {
  const { store, req } = session;
  let remote;
  try {
    const { openRemoteImage } = await import('../registry/index.js');
    const platform = asked !== undefined ? { platform: asked } : {};
    remote = await openRemoteImage(store, name, { ...(req.pull ?? {}), ...platform, ...(req.signal ? { signal: req.signal } : {}) });
  } catch (err) {
    throw baseError(session, name, loc, err);
  }
  session.onClose(() => remote.close());
  const { layerCompression } = await import('../image/manifest.js');
  const blobs = await session.blobFiles();
  const layers: StageLayer[] = [];
  let parent: Digest | undefined;
  for (const [i, d] of remote.manifest.layers.entries()) {
    const diffId = remote.config.rootfs.diff_ids[i]!;
    const chainId = chainIdOf(parent, diffId);
    const have = await store.useLayer(chainId);
    const known = { digest: d.digest, sourceRepository: remote.repo.name, compression: layerCompression(d.mediaType)!, size: d.size };
    layers.push(have ?? blobs.pending(d, { diffId, chainId, parent }, (file) => remote.repo.downloadBlob(d.digest, d.size, file), known));
    parent = chainId;
  }
  return { config: remote.config, layers };
}

/**
 * A base that could not be had. Before the registry's or the network's own words: a stage of a
 * near name (a typo in FROM or COPY --from), and the ways to a base without Docker Hub.
 */
function baseError(session: BuildSession, name: string, loc: SourceLocation, err: unknown): unknown {
  if (session.req.signal?.aborted) return err;
  const stages = session.req.plan.stages.flatMap((s) => (s.name ? [s.name] : []));
  const stage = didYouMean(name, stages, false, (n) => `the stage "${n}"`);
  const what = session.req.alwaysPull
    ? `base image ${name}${stage} could not be pulled (--pull)`
    : `base image ${name}${stage} is not in the store (without a registry: tsbuild bootstrap busybox, tsbuild import ROOTFS.tar NAME, or tsbuild load -i ARCHIVE; from a registry you reach: --insecure-registry HOST for plain HTTP, tsbuild login HOST for a password), and pulling it failed`;
  return new DockerfileError(loc, `${what}: ${(err as Error).message}`, { cause: err });
}

/** A base's triggers as the steps they run, located at the FROM line. */
export function triggerSteps(stage: Stage, triggers: readonly string[]): { text: string; steps: Step[] }[] {
  return triggers.map((text) => ({ text, steps: parseTrigger(text, stage.from.loc) }));
}
