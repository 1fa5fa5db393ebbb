// Which rules run and whether a violation fails the check: BuildKit's check options
// (moby/buildkit frontend/dockerfile/linter/linter.go ParseLintOptions), `skip=A,B|all`,
// `error=true|false` and `experimental=…`, `;`-separated. They come from the build argument
// BUILDKIT_DOCKERFILE_CHECK when it is given, else from the `# check=` parser directive: as in
// BuildKit, the build argument replaces the directive rather than merging with it.
import { InvalidInputError } from '../errors.js';

export interface CheckConfig {
  readonly skipAll: boolean;
  readonly skip: ReadonlySet<string>;
  /** `error=true`: any violation fails the check (exit 1), as it fails a BuildKit build. */
  readonly error: boolean;
}

export const DEFAULT_CONFIG: CheckConfig = { skipAll: false, skip: new Set(), error: false };

/** Go's strconv.ParseBool, which BuildKit reads `error=` with. */
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * The options in `text` (`skip=JSONArgsRecommended;error=true`). A malformed one is an error,
 * as BuildKit fails the build on it. `experimental=` is accepted: tsbuild has no experimental
 * rules to turn on.
 */
export function parseCheckOptions(text: string, origin: string): CheckConfig {
  const trimmed = text.trim();
  if (trimmed === '') return DEFAULT_CONFIG;
  let skipAll = false;
  let skip = new Set<string>();
  let error = false;
  // Go's strings.SplitN(s, ";", 3): a third `;` stays inside the last part (and fails there).
  const pieces = trimmed.split(';');
  const parts = pieces.length > 3 ? [...pieces.slice(0, 2), pieces.slice(2).join(';')] : pieces;
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new InvalidInputError(`${origin}: invalid check option "${part}"`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (value === 'all') skipAll = true;
      else skip = new Set(value.split(',').map((rule) => rule.trim()));
    } else if (key === 'experimental') {
      continue;
    } else if (key === 'error') {
      if (!TRUE.has(value) && !FALSE.has(value)) {
        throw new InvalidInputError(`${origin}: failed to parse check option "${part}": want true or false`);
      }
      error = TRUE.has(value);
    } else {
      throw new InvalidInputError(`${origin}: invalid check option "${key}"`);
    }
  }
  return { skipAll, skip, error };
}

export function ruleEnabled(config: CheckConfig, rule: string): boolean {
  return !config.skipAll && !config.skip.has(rule);
}
