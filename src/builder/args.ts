// Build arguments outside a stage: the ARGs before the first FROM, the ones Docker predefines,
// and the warning for --build-arg values no ARG consumed. (An ARG inside a stage is an
// instruction like the others: instructions.ts.)
import { DockerfileError } from '../errors.js';
import { expandWord } from '../parse/index.js';
import type { BuildPlan } from '../parse/plan.js';

/** Build args Docker predefines: usable without an ARG line, never persisted in the image. */
export const PREDEFINED_ARGS: ReadonlySet<string> = new Set(
  'HTTP_PROXY http_proxy HTTPS_PROXY https_proxy FTP_PROXY ftp_proxy NO_PROXY no_proxy ALL_PROXY all_proxy'.split(' '),
);

/**
 * The values of the ARGs before the first FROM (visible to FROM lines, and to an ARG of the
 * same name without a default in a stage), and the --build-arg names they consumed.
 */
export function globalArgs(plan: BuildPlan, buildArgs: Readonly<Record<string, string>>): { values: Map<string, string>; used: string[] } {
  const values = new Map<string, string>();
  const used: string[] = [];
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

/**
 * Docker's classic builder's warning (BuildArgs.WarnOnUnusedBuildArgs): one line, the names
 * sorted, as Go prints a []string; undefined when every --build-arg was used.
 */
export function unusedArgsWarning(buildArgs: Readonly<Record<string, string>>, used: ReadonlySet<string>): string | undefined {
  const unused = Object.keys(buildArgs).filter((n) => !used.has(n) && !PREDEFINED_ARGS.has(n));
  return unused.length > 0 ? `[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed` : undefined;
}
