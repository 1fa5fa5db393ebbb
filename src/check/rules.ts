// The lint rules `build --check` knows, by name: BuildKit's (moby/buildkit
// frontend/dockerfile/linter/ruleset.go: same names, descriptions, URLs and message wording,
// so that a report reads like `docker build --check`'s and `# check=skip=NAME` means the same
// rule in both), then tsbuild's own rules about image size. The checks themselves live in
// lint.ts (BuildKit's) and size.ts (tsbuild's); this file only names and words them.
import type { SourceLocation } from '../errors.js';

export interface Rule {
  readonly name: string;
  readonly description: string;
  /**
   * Where the rule is documented. Absent for BuildKit's InvalidBaseImagePlatform, and for
   * tsbuild's rules, which docs/commands/build.md describes.
   */
  readonly url?: string;
}

const DOCS = 'https://docs.docker.com/go/dockerfile/rule/';

function buildkit(name: string, slug: string | undefined, description: string): Rule {
  return { name, description, ...(slug === undefined ? {} : { url: `${DOCS}${slug}/` }) };
}

export const RULES = {
  StageNameCasing: buildkit('StageNameCasing', 'stage-name-casing', 'Stage names should be lowercase'),
  FromAsCasing: buildkit('FromAsCasing', 'from-as-casing', "The 'as' keyword should match the case of the 'from' keyword"),
  NoEmptyContinuation: buildkit(
    'NoEmptyContinuation',
    'no-empty-continuation',
    'Empty continuation lines will become errors in a future release',
  ),
  ConsistentInstructionCasing: buildkit(
    'ConsistentInstructionCasing',
    'consistent-instruction-casing',
    'All commands within the Dockerfile should use the same casing (either upper or lower)',
  ),
  DuplicateStageName: buildkit('DuplicateStageName', 'duplicate-stage-name', 'Stage names should be unique'),
  ReservedStageName: buildkit('ReservedStageName', 'reserved-stage-name', 'Reserved words should not be used as stage names'),
  JSONArgsRecommended: buildkit(
    'JSONArgsRecommended',
    'json-args-recommended',
    'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
  ),
  MaintainerDeprecated: buildkit(
    'MaintainerDeprecated',
    'maintainer-deprecated',
    'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
  ),
  UndefinedArgInFrom: buildkit('UndefinedArgInFrom', 'undefined-arg-in-from', 'FROM command must use declared ARGs'),
  WorkdirRelativePath: buildkit(
    'WorkdirRelativePath',
    'workdir-relative-path',
    'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes',
  ),
  UndefinedVar: buildkit('UndefinedVar', 'undefined-var', 'Variables should be defined before their use'),
  MultipleInstructionsDisallowed: buildkit(
    'MultipleInstructionsDisallowed',
    'multiple-instructions-disallowed',
    'Multiple instructions of the same type should not be used in the same stage',
  ),
  LegacyKeyValueFormat: buildkit(
    'LegacyKeyValueFormat',
    'legacy-key-value-format',
    'Legacy key/value format with whitespace separator should not be used',
  ),
  InvalidDefaultArgInFrom: buildkit(
    'InvalidDefaultArgInFrom',
    'invalid-default-arg-in-from',
    'Default value for global ARG results in an empty or invalid base image name',
  ),
  FromPlatformFlagConstDisallowed: buildkit(
    'FromPlatformFlagConstDisallowed',
    'from-platform-flag-const-disallowed',
    'FROM --platform flag should not use a constant value',
  ),
  CopyIgnoredFile: buildkit('CopyIgnoredFile', 'copy-ignored-file', 'Attempting to Copy file that is excluded by .dockerignore'),
  SecretsUsedInArgOrEnv: buildkit(
    'SecretsUsedInArgOrEnv',
    'secrets-used-in-arg-or-env',
    'Sensitive data should not be used in the ARG or ENV commands',
  ),
  InvalidBaseImagePlatform: buildkit('InvalidBaseImagePlatform', undefined, 'Base image platform does not match expected target platform'),
  RedundantTargetPlatform: buildkit(
    'RedundantTargetPlatform',
    'redundant-target-platform',
    'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
  ),
  // tsbuild's own: what makes an image larger than it needs to be, found from the text alone
  // (`tsbuild analyze` finds the same after a build, from the layers).
  PackageCacheInLayer: {
    name: 'PackageCacheInLayer',
    description: "A RUN that installs packages should not leave the package manager's lists or caches in its layer",
  },
  CopyBeforeDependencyInstall: {
    name: 'CopyBeforeDependencyInstall',
    description: 'Copying the whole context before installing dependencies reinstalls them after any change to any file',
  },
  RemoteArchiveAdd: {
    name: 'RemoteArchiveAdd',
    description: 'ADD of a remote archive keeps the archive itself in a layer',
  },
} as const satisfies Record<string, Rule>;

export type RuleName = keyof typeof RULES;

/** One finding: a rule broken at a line, with the message BuildKit (or tsbuild) words it with. */
export interface Violation {
  readonly rule: Rule;
  /** The instruction's first line. */
  readonly loc: SourceLocation;
  /** Its last line, when it has more than one (continuations, heredocs). */
  readonly lastLine?: number;
  readonly message: string;
}
