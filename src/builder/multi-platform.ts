// `build --platform P1,P2,…`: one build per target platform, each with its platform ARGs, then
// one multi-platform image (an index in the store, src/store/indexes.ts) over their images, and
// the tags name it. As in BuildKit, a stage for `--platform=$BUILDPLATFORM` is the same for every
// target unless it reads a TARGET* ARG: the first target's build stores its steps in the build
// cache and the others take them from there (also under --no-cache, which ignores only what
// earlier builds recorded), so it runs once, on this machine.
//
// With --reproducible, each platform's image is byte-identical across runs, and so is the index
// record, which is made from their IDs alone.
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import type { Store } from '../store/store.js';
import type { Stage } from '../parse/plan.js';
import { checkStoredBases } from './platforms.js';
import type { BuildRequest, BuildResult } from './request.js';
import type { ResolvedFrom } from './stages.js';

/** build.ts's verbs for one platform: check what it would run (and refuse), and build it. */
export interface PlatformBuilder {
  plan(request: BuildRequest): { froms: ResolvedFrom[]; stages: Stage[] };
  build(store: Store, request: BuildRequest): Promise<BuildResult>;
}

export async function buildPlatforms(store: Store, request: BuildRequest, one: PlatformBuilder): Promise<BuildResult> {
  const platforms = distinct(request.platforms ?? []);
  refuseUnsupported(request);
  const { tags: _tags, platforms: _platforms, ...rest } = request;
  // A step the first target recorded is the same step for the next (a $BUILDPLATFORM stage):
  // taken from the cache even under --no-cache, so it runs once.
  const perPlatform = { ...rest, recordedThisBuild: new Set<Digest>() };
  // Every platform's refusals before the first platform's first step.
  for (const platform of platforms) {
    const { froms, stages } = one.plan({ ...perPlatform, platform });
    await checkStoredBases(store, { ...perPlatform, platform }, froms, stages);
  }
  const built: { platform: Platform; imageId: string; result: BuildResult }[] = [];
  for (const platform of platforms) {
    const result = await one.build(store, { ...perPlatform, platform, ...withPlatformPrefix(request, platform) });
    built.push({ platform, imageId: result.imageId, result });
  }
  request.signal?.throwIfAborted();
  const entries = built.map((b) => ({ platform: b.platform, imageId: b.result.imageId }));
  const indexId = await store.putIndex(entries);
  const tags: string[] = [];
  for (const t of request.tags ?? []) {
    const ref = withDefaultTag(parseReference(t));
    await store.tag(ref, indexId);
    tags.push(familiarString(ref));
  }
  return { imageId: indexId, tags, config: built[0]!.result.config, platforms: entries };
}

/** Each step's text shown as BuildKit shows it in a multi-platform build: `[linux/arm64] RUN ...`. */
function withPlatformPrefix(request: BuildRequest, platform: Platform): Pick<BuildRequest, 'events'> {
  const events = request.events;
  if (!events?.step) return {};
  const step = events.step.bind(events);
  return { events: { ...events, step: (e) => step({ ...e, text: `[${formatPlatform(platform)}] ${e.text}` }) } };
}

/** The platforms, each once, in the order first given. */
function distinct(platforms: readonly Platform[]): Platform[] {
  const seen = new Set<string>();
  return platforms.filter((p) => {
    const s = formatPlatform(p);
    if (seen.has(s)) return false;
    seen.add(s);
    return true;
  });
}

/** What a multi-platform build does not do yet: each one clear line, before anything is built. */
function refuseUnsupported(request: BuildRequest): void {
  const list = (request.platforms ?? []).map(formatPlatform).join(',');
  if (request.pushTo?.length) {
    throw new InvalidInputError(
      `--platform ${list}: push a multi-platform build with -t NAME --push (type=registry pushes one platform's image)`,
    );
  }
  if (request.cacheExports?.length) {
    throw new InvalidInputError(
      `--platform ${list}: --cache-to is for single-platform builds (the platforms' steps would overwrite each other's records)`,
    );
  }
}
