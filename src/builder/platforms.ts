// The platform each stage is built for, and what a build may do for a platform that is not this
// machine's. As in BuildKit, a stage is for its FROM --platform (`$BUILDPLATFORM` for a stage
// that runs the build's tools on the host) or else the build's target platform; its base image
// must be for that platform, and FROM scratch is labelled with it.
//
// A RUN of a foreign stage runs the foreign CPU's programs under QEMU user emulation, which the
// kernel starts through a binfmt_misc handler (src/runtime/binfmt.ts). `checkForeignRun` checks,
// before any step of the build runs, that each such stage's emulator is registered (with the F
// flag, so it works inside the step's root), and otherwise says at the RUN's line how to
// register it.
import { DockerfileError, PlatformNotFoundError, type SourceLocation } from '../errors.js';
import { hostArchitecture, type ImageConfig } from '../image/config.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import type { BuildPlan, Stage } from '../parse/plan.js';
import { checkEmulation } from '../runtime/binfmt.js';
import type { Store } from '../store/store.js';
import type { BuildRequest } from './request.js';
import type { BuildSession, StageState } from './session.js';
import { stageByName, type ResolvedFrom } from './stages.js';

/**
 * The platform stage `stage` is built for: its FROM --platform, else its base stage's, else the
 * build's target (BuildKit's dockerfile2llb): `FROM tools` after `FROM --platform=$BUILDPLATFORM
 * ... AS tools` is for this machine too.
 */
export function stagePlatform(plan: BuildPlan, froms: readonly ResolvedFrom[], stage: Stage, target: Platform | undefined): Platform {
  const own = froms[stage.index]?.platform;
  if (own !== undefined) return own;
  const base = froms[stage.index] ? stageByName(plan, froms[stage.index]!.base, stage.index) : undefined;
  return base ? stagePlatform(plan, froms, base, target) : (target ?? hostPlatform());
}

/** Whether `p` is another platform than this machine's: its programs do not run here natively. */
export function isForeign(p: Platform): boolean {
  return !platformMatches(p, hostPlatform());
}

/**
 * A base image must be for the stage's platform: building arm64 on an amd64 image would label
 * amd64 programs arm64. (`asked` is false for a build with no --platform, which takes a stored
 * base as it is, as before multi-platform builds.)
 */
export function checkBasePlatform(name: string, config: ImageConfig, want: Platform, asked: boolean, loc: SourceLocation): void {
  if (!asked || platformMatches(want, config)) return;
  throw new DockerfileError(
    loc,
    `base image ${name} is for ${formatPlatform(config)}, not ${formatPlatform(want)}: use a multi-platform image, or one for ${formatPlatform(want)}`,
  );
}

/**
 * A RUN in a stage for a foreign platform needs its emulator: checked once per platform before
 * any step runs, the error at the first such RUN's line. `binfmtDir`: where binfmt_misc is read
 * (tests give a directory of their own).
 */
export function checkForeignRun(
  plan: BuildPlan,
  stages: readonly Stage[],
  froms: readonly ResolvedFrom[],
  target: Platform | undefined,
  binfmtDir?: string,
): void {
  const checked = new Set<string>();
  for (const stage of stages) {
    const p = stagePlatform(plan, froms, stage, target);
    if (!isForeign(p) || checked.has(formatPlatform(p))) continue;
    const run = stage.steps.find((s) => s.kind === 'RUN');
    if (!run) continue;
    checked.add(formatPlatform(p));
    try {
      checkEmulation(p, { host: hostArchitecture(), ...(binfmtDir !== undefined ? { dir: binfmtDir } : {}) });
    } catch (err) {
      throw new DockerfileError(run.loc, (err as Error).message, { cause: err });
    }
  }
}

/** A RUN's cache-key member for a stage whose platform is foreign (none for this machine's: the keys it always had). */
export function foreignPlatformKey(session: BuildSession, state: StageState): { platform?: string } {
  const p = stagePlatform(session.plan, session.froms, state.stage, session.req.platform);
  return isForeign(p) ? { platform: formatPlatform(p) } : {};
}

/**
 * Before a multi-platform build's first step: each stage's base that the store has must have
 * the stage's platform, so that a base lacking one platform stops the build before another
 * platform's image is made. (A base the store lacks is pulled for its platform when its stage
 * starts; `--pull` asks the registry instead.)
 */
export async function checkStoredBases(
  store: Store,
  req: BuildRequest,
  froms: readonly ResolvedFrom[],
  stages: readonly Stage[],
): Promise<void> {
  if (req.alwaysPull) return;
  for (const stage of stages) {
    const name = froms[stage.index]!.base;
    if (name === 'scratch' || stageByName(req.plan, name, stage.index) || req.namedContexts?.has(name)) continue;
    const platform = stagePlatform(req.plan, froms, stage, req.platform);
    let id;
    try {
      id = await store.resolveImage(name, platform);
    } catch (err) {
      if (err instanceof PlatformNotFoundError) throw new DockerfileError(stage.from.loc, err.message, { cause: err });
      continue; // not stored: pulled when the stage starts
    }
    checkBasePlatform(name, (await store.image(id)).config, platform, true, stage.from.loc);
  }
}
