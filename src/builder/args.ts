// The build's ARGs outside any stage: the platform ARGs BuildKit defines for every build, and the
// ARGs before the first FROM. Together they are what a FROM line is expanded with, and what an
// `ARG NAME` without a default brings into a stage. Follows BuildKit's dockerfile2llb
// (platform.go defaultArgs, convert.go buildMetaArgs): the platform ARGs come first, so a
// --build-arg or a global ARG of the same name overrides them.
import { DockerfileError } from '../errors.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { expandWord } from '../parse/index.js';
import type { BuildPlan } from '../parse/plan.js';

/** What the platform ARGs describe: the machine that runs the steps, and the one the image is for. */
export interface BuildPlatforms {
  readonly build: Platform;
  readonly target: Platform;
}

/**
 * The ARGs BuildKit defines without an ARG line, in its order. A stage sees one only after an
 * `ARG NAME`; a FROM line sees them all. The OSVERSION ones are empty on Linux.
 */
export const PLATFORM_ARGS: readonly string[] = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDOSVERSION',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETOSVERSION',
  'TARGETARCH',
  'TARGETVARIANT',
  'TARGETSTAGE',
];

/**
 * The platform ARGs' values: `target` is --target as given, else the last stage's name, else
 * `default` (BuildKit's TARGETSTAGE). A --build-arg of the same name replaces a value.
 */
export function platformArgs(
  platforms: BuildPlatforms,
  target: string | undefined,
  plan: BuildPlan,
  buildArgs: Readonly<Record<string, string>>,
): Map<string, string> {
  const { build, target: t } = platforms;
  const values: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(t)],
    ['TARGETOS', t.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
    ['TARGETSTAGE', target || plan.stages.at(-1)?.name || 'default'],
  ];
  return new Map(values.map(([k, v]) => [k, buildArgs[k] ?? v]));
}

/**
 * The values of the ARGs outside a stage (the platform ARGs, then the ARGs before the first FROM,
 * in order, each default expanded with those before it), and the --build-arg names they
 * consumed: a --build-arg that sets a platform ARG counts as used, as BuildKit takes it.
 */
export function globalArgs(
  plan: BuildPlan,
  buildArgs: Readonly<Record<string, string>>,
  platform: ReadonlyMap<string, string>,
): { values: Map<string, string>; used: string[] } {
  const values = new Map(platform);
  const used = PLATFORM_ARGS.filter((name) => buildArgs[name] !== undefined);
  for (const arg of plan.globalArgs) {
    for (const a of arg.args) {
      const given = buildArgs[a.name];
      if (given !== undefined) used.push(a.name);
      let value = given;
      if (value === undefined && a.default !== undefined) {
        const word = a.default;
        try {
          value = expandWord(word, values, plan.escapeChar);
        } catch (err) {
          throw new DockerfileError(arg.loc, (err as Error).message, { cause: err });
        }
      }
      if (value !== undefined) values.set(a.name, value);
    }
  }
  return { values, used };
}
