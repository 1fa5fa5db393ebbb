// The build cache's keys, one recipe per kind of step that makes a layer. A key is the sha256 of
// a JSON object holding everything that decides what the step writes, and nothing else: the same
// key on another build means the stored layer is what running the step again would produce
// (Docker's cache rule). The objects' shapes and key order are part of the store's format:
// changing a recipe makes every earlier record a miss (harmless, but a full rebuild).
//
// Every recipe starts with `parent`, the chainID of the layer the step runs on ('' for none):
// the same command on other files is another step.
import type { StepInputs } from '../cache/format.js';
import { sha256, type Digest } from '../digest.js';

function key(parts: Record<string, unknown>): Digest {
  return sha256(JSON.stringify(parts));
}

export interface RunKey {
  readonly parent: string;
  /** What runs: the exec form's argv, or the shell and the script (heredocs included). */
  readonly argv: readonly string[];
  /** The process environment: the image's Env, then the stage's ARGs and the proxy build args. */
  readonly env: readonly string[];
  /** USER, as written (resolved against the image's /etc/passwd when the step runs). */
  readonly user: string;
  readonly cwd: string;
  /** --network as written: default, host or none. */
  readonly network: string;
  /** The heredoc files fed to the script through /dev/pipes, by name and content. */
  readonly pipes: string;
  /**
   * RUN --mount (run-mounts.ts): each mount's options, and what a bind shows (the context's
   * checksum of its source, or the stage's chainID); never a cache's content or a secret's value.
   */
  readonly mounts?: string;
  /** --security=insecure. */
  readonly security?: string;
  /** --add-host lines of /etc/hosts. */
  readonly hosts?: string;
  /**
   * The stage's platform when it is not this machine's (the command then runs emulated): the
   * same files and command for another CPU are another step, as BuildKit keys its exec ops.
   */
  readonly platform?: string;
}

/**
 * RUN: the command and what it sees. Not the files it reads: a RUN is trusted to depend only
 * on its parent layer and its inputs, which is why `--no-cache` exists (and BuildKit's the same).
 */
export function runKey(k: RunKey): Digest {
  // The newer members join the object only when set: a plain RUN keeps the key it always had.
  return key({
    parent: k.parent,
    argv: k.argv,
    env: k.env,
    user: k.user,
    cwd: k.cwd,
    network: k.network,
    pipes: k.pipes,
    ...(k.mounts ? { mounts: k.mounts } : {}),
    ...(k.security ? { security: k.security } : {}),
    ...(k.hosts ? { hosts: k.hosts } : {}),
    ...(k.platform ? { platform: k.platform } : {}),
  });
}

/** WORKDIR: the directory it creates and the USER who owns it. */
export function workdirKey(k: { readonly parent: string; readonly dir: string; readonly user: string }): Digest {
  return key({ parent: k.parent, workdir: k.dir, user: k.user });
}

export interface CopyKey {
  readonly parent: string;
  readonly kind: 'COPY' | 'ADD';
  /** The sources as written, variables expanded. */
  readonly sources: readonly string[];
  /** The sources' content: names, metadata Docker keeps, and file checksums (checksum.ts). */
  readonly checksum: string;
  readonly dest: string;
  /** The WORKDIR a relative destination resolves against. */
  readonly workdir: string;
  readonly chown: string;
  /** --chmod: octal bits, the symbolic text, or '' for none. */
  readonly chmod: number | string;
  /** Heredoc files, by name and content. */
  readonly inline: string;
  /** --exclude patterns, COPY --parents, --link: in the object only when used. */
  readonly exclude?: readonly string[];
  readonly parents?: boolean;
  readonly link?: boolean;
}

/** The optional members, only when set: a plain step keeps the key it always had. */
function selection(k: { exclude?: readonly string[]; parents?: boolean; link?: boolean }): Record<string, unknown> {
  return {
    ...(k.exclude ? { exclude: k.exclude } : {}),
    ...(k.parents ? { parents: true } : {}),
    ...(k.link ? { link: true } : {}),
  };
}

/**
 * COPY and ADD from the context (or URLs): what is copied, by content, and where to. With
 * --link, `parent` is '': the layer is made apart from the stage's, so it is the same on any base.
 */
export function copyKey(k: CopyKey): Digest {
  return key({
    parent: k.parent,
    kind: k.kind,
    sources: k.sources,
    checksum: k.checksum,
    dest: k.dest,
    workdir: k.workdir,
    chown: k.chown,
    chmod: k.chmod,
    inline: k.inline,
    ...selection(k),
  });
}

export interface CopyFromKey {
  readonly parent: string;
  /** The source root's chainID ('scratch' for no layers): the same chain is the same files. */
  readonly source: string;
  readonly sources: readonly string[];
  readonly dest: string;
  readonly workdir: string;
  readonly chown: string;
  readonly chmod: number | string;
  readonly exclude?: readonly string[];
  readonly parents?: boolean;
  readonly link?: boolean;
}

/** COPY --from a stage or an image: the source root by its chainID, then as for COPY. */
export function copyFromKey(k: CopyFromKey): Digest {
  return copyFromRecipe(k, { kind: 'COPY --from', source: k.source });
}

/**
 * COPY --from by what it copies: the selected files' checksum (owners included) in place of the
 * source root's chainID. A stage built again makes other layers (new mtimes) but often the same
 * files: a cache that lacks the stage (mode=min, inline) still hits on this key.
 */
export function copyFromContentKey(k: Omit<CopyFromKey, 'source'> & { readonly checksum: string }): Digest {
  return copyFromRecipe(k, { kind: 'COPY --from content', checksum: k.checksum });
}

/** The two COPY --from recipes: what the sources are (`what`), then the same fields in the same order. */
function copyFromRecipe(k: Omit<CopyFromKey, 'source'>, what: Record<string, string>): Digest {
  return key({
    parent: k.parent,
    ...what,
    sources: k.sources,
    dest: k.dest,
    workdir: k.workdir,
    chown: k.chown,
    chmod: k.chmod,
    ...selection(k),
  });
}

export interface MetadataRunKey {
  readonly parent: string;
  /**
   * The stage's history before the run, created times included: the run's record then hits only
   * after the very same entries, so a rebuild that reused them reuses the run's times as well.
   */
  readonly before: readonly unknown[];
  /** The run's instructions, as their entries' created_by. */
  readonly createdBy: readonly string[];
  /** The image config the run leaves, less its history and layers (ENV, LABEL, CMD, ... as set). */
  readonly config: unknown;
}

/**
 * A run of steps that write no layer: ENV, LABEL, CMD and the like, between two layer steps. Its
 * record only keeps the created times of their history entries, the one part of the image that
 * would otherwise differ on every rebuild (metadata-step.ts).
 */
export function metadataRunKey(k: MetadataRunKey): Digest {
  return key({ parent: k.parent, kind: 'metadata-run', before: k.before, createdBy: k.createdBy, config: k.config });
}

// What each key was made of, for a cache to say why a step missed (src/cache/explain.ts). Values
// that may be private (the command, environment values, mount options, heredocs) enter only as
// digests: a cache in a shared registry must not carry a build arg's value.

const digestOf = (v: unknown): string => sha256(JSON.stringify(v));

export function runInputs(k: RunKey): StepInputs {
  return {
    kind: 'RUN',
    parent: k.parent,
    command: digestOf(k.argv),
    env: k.env.map((kv) => {
      const i = kv.indexOf('=');
      return `${i < 0 ? kv : kv.slice(0, i)}=${digestOf(i < 0 ? '' : kv.slice(i + 1))}`;
    }),
    user: k.user,
    workdir: k.cwd,
    network: k.network,
    heredocs: digestOf(k.pipes),
    mounts: digestOf(k.mounts ?? ''),
    security: k.security ?? '',
    hosts: digestOf(k.hosts ?? ''),
  };
}

export function workdirInputs(k: { readonly parent: string; readonly dir: string; readonly user: string }): StepInputs {
  return { kind: 'WORKDIR', parent: k.parent, dir: k.dir, user: k.user };
}

export function copyInputs(k: CopyKey): StepInputs {
  return {
    kind: k.kind,
    parent: k.parent,
    sources: k.sources,
    checksum: k.checksum,
    dest: k.dest,
    workdir: k.workdir,
    heredocs: digestOf(k.inline),
    options: digestOf({ chown: k.chown, chmod: k.chmod, ...selection(k) }),
  };
}

export function copyFromInputs(k: CopyFromKey): StepInputs {
  return {
    kind: 'COPY --from',
    parent: k.parent,
    source: k.source,
    sources: k.sources,
    dest: k.dest,
    workdir: k.workdir,
    options: digestOf({ chown: k.chown, chmod: k.chmod, ...selection(k) }),
  };
}
