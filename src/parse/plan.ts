// The typed build plan the parser produces from a Dockerfile (BuildKit's dockerfile2llb idea:
// parse first, execute later). Nothing here touches the filesystem.
//
// Words are kept *unexpanded*: Docker substitutes variables at build time with the environment
// in force at that step, which depends on the base image's config (ENV PATH=$PATH:/x needs the
// base's PATH). The builder expands them with `expandWord`/`expandWords` from ./substitute.ts.
// The parser has already checked that every word that will be expanded is well-formed, so
// expansion can only fail for semantic reasons (e.g. `${V:?msg}` with V unset).
import type { SourceLocation } from '../errors.js';

/** A Dockerfile word before variable substitution. */
export type Word = string;

interface StepBase {
  readonly loc: SourceLocation;
  /**
   * The instruction as written, continuation lines joined, comments dropped, e.g.
   * `RUN apt-get update && apt-get install -y nginx`. Used for history's created_by and for
   * build output; never parsed again.
   */
  readonly text: string;
}

/**
 * A here-document of RUN, COPY or ADD (`<<EOF` on the instruction's line, the body on the lines
 * after it, up to a line that is just `EOF`): Dockerfile 1.4 syntax, read as BuildKit reads it
 * (./heredoc.ts has the rules). The step's `loc` stays the instruction's first line.
 */
export interface Heredoc {
  /** The delimiter with its quotes removed: `EOF` for `<<"EOF"`. For COPY/ADD, the file's name. */
  readonly name: string;
  /**
   * The lines between the instruction and the delimiter line, each with its line ending, as
   * written: not expanded, leading tabs not yet stripped ('' for an empty heredoc). The
   * content a file or script gets is `heredocContent(heredoc)` (tabs stripped for `<<-`).
   */
  readonly body: string;
  /**
   * True when no part of the delimiter was quoted. COPY/ADD then expand variables in the body
   * at build time (`expandHeredocBody`: `$V`, `${V}` and backslash escapes; quotes are plain text).
   * RUN ignores it, as BuildKit does: the body goes to the shell, which expands or not.
   */
  readonly expand: boolean;
  /** `<<-`: leading tabs are stripped from every line of the body. */
  readonly chomp: boolean;
  /** `3<<EOF`: the descriptor the shell feeds it to (stdin when absent). Informational. */
  readonly fd?: number;
}

/** RUN --network's values. `default` is the host's network for a build, as in Docker. */
export type RunNetwork = 'default' | 'none' | 'host';

/** Shell form is one command line run by the stage's SHELL; exec form is an argv (JSON array). */
export type CommandForm =
  { readonly form: 'shell'; readonly command: string } | { readonly form: 'exec'; readonly argv: readonly string[] };

export interface RunStep extends StepBase {
  readonly kind: 'RUN';
  /** Not substituted by the builder: the shell does that (exec form is never substituted). */
  readonly cmd: CommandForm;
  /** --network: checked here, never expanded (BuildKit takes it literally too). Absent: the host's. */
  readonly network?: RunNetwork;
  /** --security: `insecure` needs `--allow security.insecure`; `sandbox` is the default. */
  readonly security?: 'insecure' | 'sandbox';
  /**
   * --mount values as written (several allowed), checked as far as they hold no variable;
   * the builder expands and reads them with parseMount (mounts.ts).
   */
  readonly mounts?: readonly Word[];
  /**
   * The bodies of the heredocs opened in `cmd` (shell form only), in order; absent when none.
   * `cmd.command` stays the instruction's own line (`<<EOF`, `python3 <<EOF`);
   * src/builder/heredoc.ts turns the two into what BuildKit runs.
   */
  readonly heredocs?: readonly Heredoc[];
}

export interface CopyStep extends StepBase {
  readonly kind: 'COPY' | 'ADD';
  /** Context paths (or wildcards). At least one, unless `heredocs` has some. */
  readonly sources: readonly Word[];
  /**
   * Sources written as heredocs (`COPY <<EOF <<b.txt /dir/`), in order; absent when none. Each
   * is a file named `name` (mode 0644) holding the body, copied after `sources` as BuildKit does
   * (never unpacked by ADD, never a wildcard). Not in `sources`.
   */
  readonly heredocs?: readonly Heredoc[];
  readonly dest: Word;
  /** --chown=user[:group] */
  readonly chown?: Word;
  /** --chmod=0755 (octal) or --chmod=u+x,g-w (symbolic) */
  readonly chmod?: Word;
  /** COPY --from=stage|index|image */
  readonly from?: Word;
  /** ADD --checksum=sha256:... */
  readonly checksum?: Word;
  /** --link: the layer is made on an empty directory, independent of the layers below */
  readonly link?: boolean;
  /** --exclude=PATTERN, in order, as written (never expanded): .dockerignore patterns, relative to each source */
  readonly exclude?: readonly string[];
  /** COPY --parents: each source keeps its path (below a `/./` pivot, if any) under the destination */
  readonly parents?: boolean;
  /** ADD --keep-git-dir: a git source keeps its .git directory */
  readonly keepGitDir?: boolean;
}

export interface EnvStep extends StepBase {
  readonly kind: 'ENV';
  readonly pairs: readonly (readonly [key: string, value: Word])[];
}

export interface ArgStep extends StepBase {
  readonly kind: 'ARG';
  /** `ARG A=1 B` declares several; each has an optional default. */
  readonly args: readonly { readonly name: string; readonly default?: Word }[];
}

export interface WorkdirStep extends StepBase {
  readonly kind: 'WORKDIR';
  readonly path: Word;
}

export interface CmdStep extends StepBase {
  readonly kind: 'CMD' | 'ENTRYPOINT';
  /** Not substituted (Docker does not substitute CMD/ENTRYPOINT). */
  readonly cmd: CommandForm;
}

export interface UserStep extends StepBase {
  readonly kind: 'USER';
  readonly user: Word;
}

export interface ExposeStep extends StepBase {
  readonly kind: 'EXPOSE';
  /** Each `80`, `80/tcp`, `53/udp`, or a range `8000-8010/tcp`; validated after expansion. */
  readonly ports: readonly Word[];
}

export interface LabelStep extends StepBase {
  readonly kind: 'LABEL';
  readonly pairs: readonly (readonly [key: Word, value: Word])[];
}

export interface VolumeStep extends StepBase {
  readonly kind: 'VOLUME';
  readonly paths: readonly Word[];
}

export interface ShellStep extends StepBase {
  readonly kind: 'SHELL';
  /** Always exec (JSON) form in Docker. */
  readonly argv: readonly string[];
}

export interface StopSignalStep extends StepBase {
  readonly kind: 'STOPSIGNAL';
  readonly signal: Word;
}

export interface HealthcheckStep extends StepBase {
  readonly kind: 'HEALTHCHECK';
  /**
   * `HEALTHCHECK NONE` → test ['NONE']; `CMD x y` shell form → ['CMD-SHELL', 'x y'];
   * exec form → ['CMD', ...argv]. Durations in nanoseconds as in the image config; absent = unset.
   */
  readonly test: readonly string[];
  readonly intervalNs?: number;
  readonly timeoutNs?: number;
  readonly startPeriodNs?: number;
  readonly startIntervalNs?: number;
  readonly retries?: number;
}

export interface OnbuildStep extends StepBase {
  readonly kind: 'ONBUILD';
  /**
   * The trigger instruction as written, e.g. `RUN echo hi`; recorded in config.OnBuild. With
   * heredocs, their bodies and delimiters follow on the next lines, as BuildKit records them.
   */
  readonly trigger: string;
}

export interface MaintainerStep extends StepBase {
  readonly kind: 'MAINTAINER';
  readonly name: string;
}

export type Step =
  | RunStep
  | CopyStep
  | EnvStep
  | ArgStep
  | WorkdirStep
  | CmdStep
  | UserStep
  | ExposeStep
  | LabelStep
  | VolumeStep
  | ShellStep
  | StopSignalStep
  | HealthcheckStep
  | OnbuildStep
  | MaintainerStep;

export type StepKind = Step['kind'];

export interface FromClause {
  readonly loc: SourceLocation;
  readonly text: string;
  /** `scratch`, a name, name:tag, name@digest, or a previous stage's name; substituted with global ARGs only. */
  readonly image: Word;
  readonly platform?: Word;
}

export interface Stage {
  /** Position among the stages, from 0. */
  readonly index: number;
  /** `AS name`, lower-cased as Docker does. */
  readonly name?: string;
  readonly from: FromClause;
  readonly steps: readonly Step[];
}

export interface BuildPlan {
  /** The Dockerfile's path as given (used in error locations). */
  readonly file: string;
  /** ARG instructions before the first FROM: visible to FROM lines (and re-declarable in stages). */
  readonly globalArgs: readonly ArgStep[];
  readonly stages: readonly Stage[];
  /** The `# escape=` directive's character (default backslash). */
  readonly escapeChar: string;
  /**
   * The `# syntax=` directive's image reference, when there is one. tsbuild has no frontend
   * images: it always builds with its own Dockerfile syntax (docker/dockerfile:1's), and warns
   * when the directive asks for something else.
   */
  readonly syntax?: string;
  /** Things worth telling the user that do not stop the build; absent when none. */
  readonly warnings?: readonly PlanWarning[];
}

export interface PlanWarning {
  readonly loc: SourceLocation;
  readonly message: string;
}
