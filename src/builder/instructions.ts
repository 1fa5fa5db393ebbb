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
import { DockerfileError } from '../errors.js';
import { DEFAULT_PATH, DEFAULT_SHELL, type HistoryEntry, type ImageConfig, type RuntimeConfig } from '../image/config.js';
import { expandWords } from '../parse/index.js';
import type { CopyStep, RunNetwork, RunStep, Step, Word } from '../parse/plan.js';
import type { ModeChange } from '../fs/mode.js';
import { copyHeredocFiles, heredocRun, type InlineFile } from './heredoc.js';
import { atLine, expander, expandPorts, isSignal, linkChown, parseChmod } from './instruction-values.js';

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

/** The meaning of one instruction of a stage. */
export function dispatch(vars: StageVars, step: Step, scope: BuildScope): Outcome {
  const draft = new StageDraft(vars);
  const effect = draft.apply(step, scope);
  return { ...effect, vars: draft.vars() };
}

/** An Outcome without the next variables: what StageDraft.apply returns. */
export type Effect = Omit<Outcome, 'vars'>;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A stage's variables while its instructions change them in turn. Copying the labels (or Env,
 * the ARGs, ...) on every instruction made each step cost as much as all those before it: 20,000
 * LABELs took minutes. A draft copies each of the config's objects on its first change after
 * `vars()` handed it out, then changes its own copy in place; variables `vars()` returned never
 * change. The substitution environment is kept up to date as ENV and ARG change it, not rebuilt
 * per step. Keys keep the order spreads gave them, so configs and cache keys are unchanged.
 */
export class StageDraft {
  private image: ImageConfig;
  private rc: Mutable<RuntimeConfig>;
  private args: Map<string, string>;
  private cmdSet: boolean;
  /** The objects this draft made since `vars()` last handed its state out: changed in place. */
  private readonly owned = new Set<object>();
  private view: StageVars | undefined;
  /** Env's position of each variable (its first entry, where setEnv replaces it); made when first needed. */
  private envIndex: Map<string, number> | undefined;
  /** Env has two entries for one name (from a base image): the substitution map is rebuilt, not patched. */
  private envDuplicates = false;
  /** substitutionEnv of the current variables, made when first needed. */
  private subst: Map<string, string> | undefined;

  constructor(vars: StageVars) {
    this.image = vars.config;
    this.rc = vars.config.config;
    this.args = vars.args as Map<string, string>;
    this.cmdSet = vars.cmdSet;
    this.view = vars;
  }

  /** The variables as they stand; later changes to the draft leave them as they are. */
  vars(): StageVars {
    if (!this.view) {
      this.view = { config: { ...this.image, config: this.rc }, args: this.args, cmdSet: this.cmdSet };
      this.owned.clear();
    }
    return this.view;
  }

  /** The meaning of one instruction: the draft takes the variables it leaves. */
  apply(step: Step, scope: BuildScope): Effect {
    const c = this.rc;
    const x = expander(this.substitution(), scope.escapeChar, step.loc);
    const entry = (createdBy: string, emptyLayer = true): HistoryEntry => ({
      created: scope.now(),
      created_by: createdBy,
      comment: HISTORY_COMMENT,
      ...(emptyLayer ? { empty_layer: true } : {}),
    });
    switch (step.kind) {
      case 'RUN':
        return run(this.vars(), step, scope);
      case 'COPY':
      case 'ADD':
        return copy(this.vars(), step, scope, x);
      case 'WORKDIR': {
        const dir = posix.resolve('/', c.WorkingDir || '/', x(step.path));
        const user = c.User ?? '';
        this.config().WorkingDir = dir;
        const history = entry(`WORKDIR ${dir}`, dir === '/');
        return dir === '/' ? { history } : { history, work: { kind: 'WORKDIR', dir, user } };
      }
      case 'ENV': {
        // Every value of one ENV line sees the environment from before the line, as in Docker.
        const pairs = step.pairs.map(([k, v]) => [k, x(v)] as const);
        this.env();
        for (const [k, v] of pairs) this.setEnv(k, v);
        return { history: entry(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`) };
      }
      case 'ARG': {
        // Every default of one ARG line sees the variables from before the line.
        const shown: string[] = [];
        const used: string[] = [];
        const values: [string, string][] = [];
        for (const a of step.args) {
          const given = scope.buildArgs[a.name];
          if (given !== undefined) used.push(a.name);
          const value = given ?? (a.default !== undefined ? x(a.default) : scope.globalArgs.get(a.name));
          if (value !== undefined) values.push([a.name, value]);
          shown.push(a.default !== undefined ? `${a.name}=${x(a.default)}` : a.name);
        }
        const args = this.ownArgs();
        for (const [name, value] of values) {
          args.set(name, value);
          // ENV of the same name wins.
          if (!this.envHas(name)) this.subst?.set(name, value);
        }
        return { history: entry(`ARG ${shown.join(' ')}`), usedArgs: used };
      }
      case 'CMD':
      case 'ENTRYPOINT': {
        const argv = step.cmd.form === 'exec' ? [...step.cmd.argv] : [...(c.Shell ?? DEFAULT_SHELL), step.cmd.command];
        const history = entry(`${step.kind} ${JSON.stringify(argv)}`);
        if (step.kind === 'CMD') {
          this.config().Cmd = argv;
          this.cmdSet = true;
          return { history };
        }
        // `ENTRYPOINT []` unsets it (null in the config): Docker's instruction parser reads an
        // empty ENTRYPOINT as no list at all (parseShellDependentCommand's emptyAsNil), an empty
        // CMD as an empty list. An ENTRYPOINT resets a CMD the stage did not set itself.
        const { Entrypoint: _entrypoint, Cmd, ...others } = c;
        this.replaceConfig({ ...others, ...(argv.length > 0 ? { Entrypoint: argv } : {}), ...(this.cmdSet && Cmd ? { Cmd } : {}) });
        return { history };
      }
      case 'USER': {
        const user = x(step.user);
        this.config().User = user;
        return { history: entry(`USER ${user}`) };
      }
      case 'EXPOSE': {
        // EXPOSE is the one instruction whose words split after expansion (BuildKit).
        const env = this.substitution();
        const ports = step.ports
          .flatMap((w) => atLine(step.loc, () => expandWords(w, env, scope.escapeChar)))
          .flatMap((p) => expandPorts(p, step.loc));
        const exposed = this.ownRecord('ExposedPorts');
        for (const p of ports) exposed[p] = {};
        return { history: entry(`EXPOSE ${ports.join(' ')}`) };
      }
      case 'LABEL': {
        const pairs = step.pairs.map(([k, v]) => [x(k), x(v)] as const);
        const labels = this.ownRecord('Labels');
        for (const [key, value] of pairs) labels[key] = value;
        return { history: entry(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`) };
      }
      case 'VOLUME': {
        const paths = step.paths.map(x);
        if (paths.includes('')) throw new DockerfileError(step.loc, 'VOLUME specified can not be an empty string');
        const volumes = this.ownRecord('Volumes');
        for (const p of paths) volumes[p] = {};
        return { history: entry(`VOLUME [${paths.join(' ')}]`) };
      }
      case 'SHELL':
        this.config().Shell = [...step.argv];
        return { history: entry(`SHELL ${JSON.stringify(step.argv)}`) };
      case 'STOPSIGNAL': {
        const sig = x(step.signal);
        if (!isSignal(sig)) throw new DockerfileError(step.loc, `invalid signal: ${sig}`);
        this.config().StopSignal = sig;
        return { history: entry(`STOPSIGNAL ${sig}`) };
      }
      case 'HEALTHCHECK': {
        this.config().Healthcheck = {
          Test: [...step.test],
          ...(step.intervalNs !== undefined ? { Interval: step.intervalNs } : {}),
          ...(step.timeoutNs !== undefined ? { Timeout: step.timeoutNs } : {}),
          ...(step.startPeriodNs !== undefined ? { StartPeriod: step.startPeriodNs } : {}),
          ...(step.startIntervalNs !== undefined ? { StartInterval: step.startIntervalNs } : {}),
          ...(step.retries !== undefined ? { Retries: step.retries } : {}),
        };
        return { history: entry(step.text) };
      }
      case 'ONBUILD': {
        const rc = this.config();
        if (rc.OnBuild === undefined || !this.owned.has(rc.OnBuild)) rc.OnBuild = this.own([...(rc.OnBuild ?? [])]);
        rc.OnBuild.push(step.trigger);
        return { history: entry(`ONBUILD ${step.trigger}`) };
      }
      case 'MAINTAINER':
        this.view = undefined;
        this.image = { ...this.image, author: step.name };
        return { history: entry(`MAINTAINER ${step.name}`) };
    }
  }

  private own<T extends object>(o: T): T {
    this.owned.add(o);
    return o;
  }

  /** The runtime config, ours to change; the view handed out stays as it was. */
  private config(): Mutable<RuntimeConfig> {
    this.view = undefined;
    if (!this.owned.has(this.rc)) this.rc = this.own({ ...this.rc });
    return this.rc;
  }

  private replaceConfig(rc: RuntimeConfig): void {
    this.view = undefined;
    this.rc = this.own(rc);
  }

  /** Labels, ExposedPorts or Volumes, made if missing, ours to change. */
  private ownRecord<K extends 'Labels' | 'ExposedPorts' | 'Volumes'>(key: K): NonNullable<RuntimeConfig[K]> {
    const rc = this.config();
    const current = rc[key];
    if (current === undefined || !this.owned.has(current)) rc[key] = this.own({ ...(current ?? {}) }) as RuntimeConfig[K];
    return rc[key]!;
  }

  private ownArgs(): Map<string, string> {
    this.view = undefined;
    if (!this.owned.has(this.args)) this.args = this.own(new Map(this.args));
    return this.args;
  }

  /** Env, made if missing, ours to change. */
  private env(): string[] {
    const rc = this.config();
    if (rc.Env === undefined || !this.owned.has(rc.Env)) rc.Env = this.own([...(rc.Env ?? [])]);
    return rc.Env;
  }

  private index(): Map<string, number> {
    if (!this.envIndex) {
      this.envIndex = new Map();
      for (const [i, kv] of (this.rc.Env ?? []).entries()) {
        const k = envName(kv);
        if (this.envIndex.has(k)) this.envDuplicates = true;
        else this.envIndex.set(k, i);
      }
    }
    return this.envIndex;
  }

  private envHas(name: string): boolean {
    return this.index().has(name);
  }

  /** A variable already set keeps its place in Env (as Docker's ENV replaces it in place); a new one is appended. */
  private setEnv(key: string, value: string): void {
    const env = this.env();
    const index = this.index();
    const at = index.get(key);
    if (at !== undefined) env[at] = `${key}=${value}`;
    else index.set(key, env.push(`${key}=${value}`) - 1);
    // With two entries of one name only the first changes, and substitution takes the last.
    if (this.envDuplicates) this.subst = undefined;
    else this.subst?.set(key, value);
  }

  private substitution(): Map<string, string> {
    this.subst ??= substitutionEnv({ config: { ...this.image, config: this.rc }, args: this.args, cmdSet: this.cmdSet });
    return this.subst;
  }
}

/** A variable's name in an Env entry, as Docker's ENV finds it. */
function envName(kv: string): string {
  return kv.slice(0, kv.indexOf('='));
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
