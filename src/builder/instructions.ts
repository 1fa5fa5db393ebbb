// What each Dockerfile instruction means, as pure functions: from a stage's variables (its
// image config, the ARGs it declared) and an instruction to the stage's next variables, the
// history entry the instruction writes, and the filesystem work it asks for (RUN, COPY, ADD,
// WORKDIR), described, not done. Nothing here touches the filesystem or the store, and inputs
// are never changed; the executor (stage.ts) carries the work out. BuildKit keeps the same
// split: dispatchState and its dispatch functions, then the solver.
//
// Words are expanded here with the environment in force at the step: the stage's ARGs, with ENV
// of the same name winning (both builders of Docker do it this way).
import { posix } from 'node:path';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { DEFAULT_PATH, DEFAULT_SHELL, type HistoryEntry, type ImageConfig, type RuntimeConfig } from '../image/config.js';
import { expandWord, expandWords, type Env } from '../parse/index.js';
import type { CopyStep, RunNetwork, RunStep, Step, Word } from '../parse/plan.js';
import { ModeSyntaxError, parseModeChange, type ModeChange } from '../fs/mode.js';
import { copyHeredocFiles, heredocRun, type InlineFile } from './heredoc.js';

/** Build args Docker predefines: usable without an ARG line, never persisted in the image. */
export const PREDEFINED_ARGS: ReadonlySet<string> = new Set(
  'HTTP_PROXY http_proxy HTTPS_PROXY https_proxy FTP_PROXY ftp_proxy NO_PROXY no_proxy ALL_PROXY all_proxy'.split(' '),
);

/** What BuildKit writes in the comment of every history entry a Dockerfile made. */
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** The part of a stage's state that instructions read and change. */
export interface StageVars {
  readonly config: ImageConfig;
  /** ARG values declared so far in this stage. */
  readonly args: ReadonlyMap<string, string>;
  /** CMD was set in this stage (so a later ENTRYPOINT keeps it). */
  readonly cmdSet: boolean;
}

/** What instructions see of the build beyond their stage. */
export interface BuildScope {
  readonly escapeChar: string;
  /** --build-arg values. */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** ARGs declared before the first FROM, with their values. */
  readonly globalArgs: ReadonlyMap<string, string>;
  /** The `created` time of a history entry written now (RFC 3339). */
  now(): string;
}

/** A RUN, ready to run. */
export interface RunWork {
  readonly kind: 'RUN';
  readonly argv: readonly string[];
  /** The process environment: the image's Env plus the ARGs in scope (not persisted). */
  readonly env: readonly string[];
  readonly network: RunNetwork;
  /** For a shell-form command: the shell, which the image must have. */
  readonly shell?: string;
  /** Heredoc scripts to mount at /dev/pipes (heredoc.ts). */
  readonly pipes?: readonly InlineFile[];
  /** USER as written, and the working directory. */
  readonly user: string;
  readonly cwd: string;
}

/** A COPY or ADD, its words expanded and checked. */
export interface CopyWork {
  readonly kind: 'COPY' | 'ADD';
  readonly sources: readonly string[];
  readonly dest: string;
  readonly workdir: string;
  readonly chown?: string;
  /** --chmod, octal or symbolic (fs/mode.ts). */
  readonly chmod?: ModeChange;
  /** --exclude patterns, as written. */
  readonly exclude?: readonly string[];
  /** COPY --parents. */
  readonly parents?: boolean;
  /**
   * --link: the files are copied into an empty directory that becomes the layer, stacked on
   * the stage's without reading it (BuildKit's MergeOp). BuildKit ignores --link when --chmod is
   * given (dispatchCopy's `cfg.link && cfg.chmod == ""`); so is it here.
   */
  readonly link?: boolean;
  /** ADD --keep-git-dir, when given (true or false). */
  readonly keepGitDir?: boolean;
  /** ADD --checksum, as written. */
  readonly checksum?: string;
  /** Heredoc sources, made into files. */
  readonly inline: readonly InlineFile[];
  /** COPY --from: a stage (name or index) or an image. */
  readonly from?: string;
}

/** WORKDIR of a directory other than `/`: created in a layer of its own if missing, owned by USER. */
export interface WorkdirWork {
  readonly kind: 'WORKDIR';
  readonly dir: string;
  readonly user: string;
}

export type FsWork = RunWork | CopyWork | WorkdirWork;

export interface Outcome {
  readonly vars: StageVars;
  /**
   * The history entry the instruction writes. With `work`, it is written without `empty_layer`
   * when the work makes a layer, and with it when the work changed nothing.
   */
  readonly history: HistoryEntry;
  readonly work?: FsWork;
  /** The --build-arg names this instruction consumed (for the unused-args warning). */
  readonly usedArgs?: readonly string[];
}

/** The variables a stage starts with on its base's config (none: scratch), and its base's ONBUILD triggers. */
export function startStage(base: ImageConfig): { vars: StageVars; triggers: readonly string[] } {
  const { OnBuild, ...rest } = base.config;
  const config: RuntimeConfig = { ...rest };
  // After the base's own variables, as both of Docker's builders add it (classic
  // setDefaultPath, BuildKit dispatchState's "make sure that PATH is always set").
  if (!config.Env?.some((e) => e.startsWith('PATH='))) config.Env = [...(config.Env ?? []), `PATH=${DEFAULT_PATH}`];
  // The base's triggers run now, in this build, and are not inherited.
  return { vars: { config: { ...base, config }, args: new Map(), cmdSet: false }, triggers: OnBuild ?? [] };
}

/** The variables a word of this stage is expanded with: ARGs, overridden by ENV of the same name. */
export function substitutionEnv(vars: StageVars): Map<string, string> {
  const env = new Map(vars.args);
  for (const kv of vars.config.config.Env ?? []) {
    const i = kv.indexOf('=');
    env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

/** Substitution errors are errors at the step's line. */
function atLine<T>(loc: SourceLocation, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof DockerfileError) throw err;
    throw new DockerfileError(loc, (err as Error).message, { cause: err });
  }
}

function expander(env: Env, scope: BuildScope, loc: SourceLocation): (w: Word) => string {
  return (w) => atLine(loc, () => expandWord(w, env, scope.escapeChar));
}

/** The meaning of one instruction of a stage. */
export function dispatch(vars: StageVars, step: Step, scope: BuildScope): Outcome {
  const c = vars.config.config;
  const x = expander(substitutionEnv(vars), scope, step.loc);
  const entry = (createdBy: string, emptyLayer = true): HistoryEntry => ({
    created: scope.now(),
    created_by: createdBy,
    comment: HISTORY_COMMENT,
    ...(emptyLayer ? { empty_layer: true } : {}),
  });
  const withConfig = (rc: RuntimeConfig, extra: Partial<ImageConfig> = {}): StageVars => ({
    ...vars,
    config: { ...vars.config, ...extra, config: rc },
  });
  switch (step.kind) {
    case 'RUN':
      return run(vars, step, scope);
    case 'COPY':
    case 'ADD':
      return copy(vars, step, scope, x);
    case 'WORKDIR': {
      const dir = posix.resolve('/', c.WorkingDir || '/', x(step.path));
      const next = withConfig({ ...c, WorkingDir: dir });
      const history = entry(`WORKDIR ${dir}`, dir === '/');
      return dir === '/' ? { vars: next, history } : { vars: next, history, work: { kind: 'WORKDIR', dir, user: c.User ?? '' } };
    }
    case 'ENV': {
      // Every value of one ENV line sees the environment from before the line, as in Docker.
      const pairs = step.pairs.map(([k, v]) => [k, x(v)] as const);
      let env = c.Env ?? [];
      for (const [k, v] of pairs) env = setEnv(env, k, v);
      return { vars: withConfig({ ...c, Env: env }), history: entry(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`) };
    }
    case 'ARG': {
      const args = new Map(vars.args);
      const shown: string[] = [];
      const used: string[] = [];
      for (const a of step.args) {
        const given = scope.buildArgs[a.name];
        if (given !== undefined) used.push(a.name);
        const value = given ?? (a.default !== undefined ? x(a.default) : scope.globalArgs.get(a.name));
        if (value !== undefined) args.set(a.name, value);
        shown.push(a.default !== undefined ? `${a.name}=${x(a.default)}` : a.name);
      }
      return { vars: { ...vars, args }, history: entry(`ARG ${shown.join(' ')}`), usedArgs: used };
    }
    case 'CMD':
    case 'ENTRYPOINT': {
      const argv = step.cmd.form === 'exec' ? [...step.cmd.argv] : [...(c.Shell ?? DEFAULT_SHELL), step.cmd.command];
      const history = entry(`${step.kind} ${JSON.stringify(argv)}`);
      if (step.kind === 'CMD') return { vars: { ...withConfig({ ...c, Cmd: argv }), cmdSet: true }, history };
      // `ENTRYPOINT []` unsets it (null in the config): Docker's instruction parser reads an
      // empty ENTRYPOINT as no list at all (parseShellDependentCommand's emptyAsNil), an empty
      // CMD as an empty list. An ENTRYPOINT resets a CMD the stage did not set itself.
      const { Entrypoint: _entrypoint, Cmd, ...others } = c;
      const rc: RuntimeConfig = { ...others, ...(argv.length > 0 ? { Entrypoint: argv } : {}), ...(vars.cmdSet && Cmd ? { Cmd } : {}) };
      return { vars: withConfig(rc), history };
    }
    case 'USER': {
      const user = x(step.user);
      return { vars: withConfig({ ...c, User: user }), history: entry(`USER ${user}`) };
    }
    case 'EXPOSE': {
      // EXPOSE is the one instruction whose words split after expansion (BuildKit).
      const env = substitutionEnv(vars);
      const ports = step.ports
        .flatMap((w) => atLine(step.loc, () => expandWords(w, env, scope.escapeChar)))
        .flatMap((p) => expandPorts(p, step.loc));
      const exposed = { ...(c.ExposedPorts ?? {}) };
      for (const p of ports) exposed[p] = {};
      return { vars: withConfig({ ...c, ExposedPorts: exposed }), history: entry(`EXPOSE ${ports.join(' ')}`) };
    }
    case 'LABEL': {
      const labels = { ...(c.Labels ?? {}) };
      const shown: string[] = [];
      for (const [k, v] of step.pairs) {
        const key = x(k);
        const value = x(v);
        labels[key] = value;
        shown.push(`${key}=${value}`);
      }
      return { vars: withConfig({ ...c, Labels: labels }), history: entry(`LABEL ${shown.join(' ')}`) };
    }
    case 'VOLUME': {
      const volumes = { ...(c.Volumes ?? {}) };
      const paths = step.paths.map(x);
      for (const p of paths) {
        if (p === '') throw new DockerfileError(step.loc, 'VOLUME specified can not be an empty string');
        volumes[p] = {};
      }
      return { vars: withConfig({ ...c, Volumes: volumes }), history: entry(`VOLUME [${paths.join(' ')}]`) };
    }
    case 'SHELL':
      return { vars: withConfig({ ...c, Shell: [...step.argv] }), history: entry(`SHELL ${JSON.stringify(step.argv)}`) };
    case 'STOPSIGNAL': {
      const sig = x(step.signal);
      if (!isSignal(sig)) throw new DockerfileError(step.loc, `invalid signal: ${sig}`);
      return { vars: withConfig({ ...c, StopSignal: sig }), history: entry(`STOPSIGNAL ${sig}`) };
    }
    case 'HEALTHCHECK': {
      const healthcheck = {
        Test: [...step.test],
        ...(step.intervalNs !== undefined ? { Interval: step.intervalNs } : {}),
        ...(step.timeoutNs !== undefined ? { Timeout: step.timeoutNs } : {}),
        ...(step.startPeriodNs !== undefined ? { StartPeriod: step.startPeriodNs } : {}),
        ...(step.startIntervalNs !== undefined ? { StartInterval: step.startIntervalNs } : {}),
        ...(step.retries !== undefined ? { Retries: step.retries } : {}),
      };
      return { vars: withConfig({ ...c, Healthcheck: healthcheck }), history: entry(step.text) };
    }
    case 'ONBUILD':
      return { vars: withConfig({ ...c, OnBuild: [...(c.OnBuild ?? []), step.trigger] }), history: entry(`ONBUILD ${step.trigger}`) };
    case 'MAINTAINER':
      return { vars: withConfig(c, { author: step.name }), history: entry(`MAINTAINER ${step.name}`) };
  }
}

/** A variable already set keeps its place in Env (as Docker's ENV replaces it in place); a new one is appended. */
function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const at = out.findIndex((kv) => kv.slice(0, kv.indexOf('=')) === key);
  if (at >= 0) out[at] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** The environment a RUN process gets: the image's Env plus the ARGs in scope and the proxy build args (not persisted). */
export function runEnv(vars: StageVars, buildArgs: Readonly<Record<string, string>>): string[] {
  const env = [...(vars.config.config.Env ?? [])];
  const has = new Set(env.map((kv) => kv.slice(0, kv.indexOf('='))));
  for (const [k, v] of vars.args) if (!has.has(k)) env.push(`${k}=${v}`);
  for (const [k, v] of Object.entries(buildArgs)) {
    if (PREDEFINED_ARGS.has(k) && !has.has(k) && !vars.args.has(k)) env.push(`${k}=${v}`);
  }
  return env;
}

function run(vars: StageVars, step: RunStep, scope: BuildScope): Outcome {
  const c = vars.config.config;
  const shell = c.Shell ?? DEFAULT_SHELL;
  // Heredocs become part of the shell's script, or a script file mounted at /dev/pipes.
  const plan =
    step.cmd.form === 'exec'
      ? { argv: [...step.cmd.argv] }
      : atLine(step.loc, () =>
          heredocRun({ shell, command: step.cmd.form === 'shell' ? step.cmd.command : '', heredocs: step.heredocs ?? [] }),
        );
  const argsShown = [...vars.args].map(([k, v]) => `${k}=${v}`);
  const createdBy = `RUN ${argsShown.length ? `|${argsShown.length} ${argsShown.join(' ')} ` : ''}${plan.argv.join(' ')} # buildkit`;
  const work: RunWork = {
    kind: 'RUN',
    argv: plan.argv,
    env: runEnv(vars, scope.buildArgs),
    network: step.network ?? 'host',
    ...(step.cmd.form === 'shell' ? { shell: shell[0]! } : {}),
    ...(plan.pipes ? { pipes: plan.pipes } : {}),
    user: c.User ?? '',
    cwd: c.WorkingDir || '/',
  };
  // Docker's classic builder records a layer even for a RUN that changed nothing.
  return { vars, history: { created: scope.now(), created_by: createdBy, comment: HISTORY_COMMENT }, work };
}

function copy(vars: StageVars, step: CopyStep, scope: BuildScope, x: (w: Word) => string): Outcome {
  const env = substitutionEnv(vars);
  // An empty --chmod (after expansion) is no --chmod at all, in BuildKit too.
  const chmodText = step.chmod !== undefined ? x(step.chmod) : '';
  const link = step.link === true && chmodText === '';
  const chown = step.chown !== undefined ? x(step.chown) : undefined;
  const work: CopyWork = {
    kind: step.kind,
    sources: step.sources.map(x),
    dest: x(step.dest),
    workdir: vars.config.config.WorkingDir || '/',
    ...(chown !== undefined ? { chown: link ? linkChown(chown, step.kind, step.loc) : chown } : {}),
    ...(chmodText !== '' ? { chmod: parseChmod(chmodText, step.loc) } : {}),
    ...(step.checksum !== undefined ? { checksum: x(step.checksum) } : {}),
    ...(step.exclude !== undefined ? { exclude: step.exclude } : {}),
    ...(step.parents ? { parents: true } : {}),
    ...(link ? { link: true } : {}),
    ...(step.keepGitDir !== undefined ? { keepGitDir: step.keepGitDir } : {}),
    // COPY --from names a stage or an image as written (the parser refuses variables in it).
    ...(step.from !== undefined ? { from: step.from } : {}),
    inline: step.from !== undefined ? [] : atLine(step.loc, () => copyHeredocFiles(step.heredocs ?? [], env)),
  };
  return { vars, history: { created: scope.now(), created_by: `${step.text} # buildkit`, comment: HISTORY_COMMENT }, work };
}

/**
 * --chown with --link: the files are copied into an empty directory, where no /etc/passwd
 * names a user, so only numeric IDs (and `root`, which llb.WithUser reads as 0) can work.
 * BuildKit fails such a build in its solver ("invalid user index: -1"); tsbuild says why, at
 * the line (as BuildKit's frontend does since moby/buildkit#7134).
 */
function linkChown(chown: string, kind: string, loc: SourceLocation): string {
  const parts = chown.split(':');
  for (const p of parts) {
    if (p !== '' && p !== 'root' && !/^\d+$/.test(p)) {
      throw new DockerfileError(
        loc,
        `${kind} --link --chown=${chown}: a user or group name cannot be looked up with --link (the layer is made without the stage's /etc/passwd and /etc/group); use numeric IDs`,
      );
    }
  }
  return parts.map((p) => (p === 'root' ? '0' : p)).join(':');
}

// Values with a syntax of their own, checked the way Docker checks them once variables are
// expanded: COPY --chmod, EXPOSE ports, STOPSIGNAL.

/** `--chmod=0755` or `--chmod=u+x,g-w` (BuildKit's Dockerfile 1.14 symbolic modes). */
function parseChmod(s: string, loc: SourceLocation): ModeChange {
  try {
    return parseModeChange(s);
  } catch (err) {
    if (err instanceof ModeSyntaxError) throw new DockerfileError(loc, err.message);
    throw err;
  }
}

/** `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ... as Docker records them. */
function expandPorts(spec: string, loc: SourceLocation): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw new DockerfileError(loc, `invalid containerPort: ${spec}`);
  const lo = Number(m[1]);
  const hi = m[2] !== undefined ? Number(m[2]) : lo;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (lo < 1 || hi > 65535 || hi < lo) throw new DockerfileError(loc, `invalid port range: ${spec}`);
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

const SIGNALS = new Set(
  'HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS'.split(
    ' ',
  ),
);

/** A signal as STOPSIGNAL takes it: a number 1-64, or a name with or without SIG (RTMIN+n too). */
function isSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) > 0 && Number(s) < 65;
  const name = s.toUpperCase().replace(/^SIG/, '');
  return SIGNALS.has(name) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name);
}
