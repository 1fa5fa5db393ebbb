// The executor: walks a BuildPlan stage by stage and turns each step into either a change of
// the image config (metadata instructions) or a new layer (COPY, ADD, RUN), by preparing a
// snapshot on the current top layer, doing the step in it, and committing it.
// It never re-reads Dockerfile text: everything it needs is in the plan.
import { join, posix, resolve } from 'node:path';
import type { Digest } from '../digest.js';
import { DockerfileError, NotFoundError, TsbuildError, type SourceLocation } from '../errors.js';
import type { PullOptions } from '../registry/index.js';
import {
  DEFAULT_PATH,
  DEFAULT_SHELL,
  hostArchitecture,
  rfc3339,
  serializeConfig,
  type HistoryEntry,
  type ImageConfig,
} from '../image/config.js';
import type { BuildPlan, CopyStep, FromClause, RunStep, Stage, Step, WorkdirStep, Word } from '../parse/plan.js';
import { expandWord, expandWords, parseDockerfile, type Env } from '../parse/index.js';
import { openContext, openRootfsSource, type BuildContext } from '../context/index.js';
import type { LayerRecord } from '../store/layerdb.js';
import { parseReference, familiarString, withDefaultTag } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { explainNoSpace } from '../fs/nospace.js';
import { newSnapshotId, type MountedRootfs } from '../snapshot/snapshotter.js';
import { mkdirAll } from '../fs/mkdirall.js';
import { initLayerFor } from '../container/initlayer.js';
import { runInContainer } from '../runtime/helper.js';
import { resolveInRoot } from '../fs/securejoin.js';
import { copyIntoRootfs } from './copy.js';
import { resolveChown, resolveUser } from '../container/users.js';
import { commitSnapshot } from './commit.js';
import { BuildCache } from './cache.js';
import { provenanceMetadata, type StepOrigin } from '../image/provenance.js';
import { sourcesChecksum } from './checksum.js';
import { copyHeredocFiles, heredocRun, inlineFilesKey, PIPES_DIR, writeCopyHeredocs, writePipes, type InlineFile } from './heredoc.js';
import { Downloads } from './remote.js';
import { lstat, rm } from 'node:fs/promises';


/** What the builder reports while it works; the CLI renders it. */
export interface BuildEvents {
  /** A step starts. `index` counts from 1 over every FROM and instruction of the stages built. */
  step?(e: { index: number; total: number; text: string; loc: SourceLocation }): void;
  /** The step just announced reused a cached layer. */
  cached?(): void;
  /** The step just announced produced a layer. */
  layer?(e: { diffId: Digest; size: number }): void;
  warning?(message: string): void;
  /** FROM names an image the store lacks: it is pulled. */
  pull?(name: string): void;
  /** A base image's ONBUILD trigger runs (part of the FROM step). */
  trigger?(text: string): void;
}

export interface BuildRequest {
  readonly plan: BuildPlan;
  readonly contextDir: string;
  readonly tags?: readonly string[];
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string;
  readonly noCache?: boolean;
  /** How FROM pulls a base image the store lacks. */
  readonly pull?: Pick<PullOptions, 'insecureRegistries' | 'credentials' | 'progress' | 'platform'>;
  /** Images whose layers may be reused for RUN and WORKDIR steps (docker build --cache-from). */
  readonly cacheFrom?: readonly string[];
  /** Clamp created times and file mtimes (SOURCE_DATE_EPOCH). */
  readonly sourceDateEpoch?: number;
  readonly signal?: AbortSignal;
  readonly events?: BuildEvents;
  /** Where RUN output goes. */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

export interface BuildResult {
  readonly imageId: Digest;
  readonly tags: readonly string[];
  readonly config: ImageConfig;
}

/** What BuildKit writes in the comment of every history entry a Dockerfile made. */
const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** Build args Docker predefines: usable without an ARG line, never persisted in the image. */
const PREDEFINED_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);

interface StageState {
  readonly stage: Stage;
  config: ImageConfig;
  layers: LayerRecord[];
  /** ARG values declared so far in this stage. */
  args: Map<string, string>;
  /** CMD was set in this stage (so a later ENTRYPOINT keeps it). */
  cmdSet: boolean;
  /** The base's ONBUILD triggers, to run right after FROM. */
  triggers: readonly string[];
  /** The step being executed, for provenance. */
  current?: { loc: SourceLocation; text: string };
  /** Which line made each history entry this build added. */
  origins: StepOrigin[];
}

interface StageResult {
  readonly config: ImageConfig;
  readonly layers: LayerRecord[];
  readonly imageId?: Digest;
  readonly origins: readonly StepOrigin[];
}

export class Builder {
  private readonly cache: BuildCache;
  private readonly usedArgs = new Set<string>();
  private readonly globalArgs = new Map<string, string>();
  private context?: BuildContext;
  /** Stages built so far, by index: FROM and COPY --from read them. */
  private readonly built = new Map<number, StageResult>();
  /** From --cache-from images: "<parent chainID> <created_by>" → the layer that step made. */
  private readonly cacheFrom = new Map<string, { layer: LayerRecord; history: HistoryEntry }>();
  private stepIndex = 0;
  private totalSteps = 0;

  constructor(
    private readonly store: Store,
    private readonly req: BuildRequest,
  ) {
    this.cache = new BuildCache(store);
  }

  private get events(): BuildEvents {
    return this.req.events ?? {};
  }

  private now(): string {
    const epoch = this.req.sourceDateEpoch;
    return rfc3339(epoch !== undefined ? new Date(epoch * 1000) : new Date());
  }

  private checkAborted(): void {
    if (this.req.signal?.aborted) throw new TsbuildError('build interrupted');
  }

  async build(): Promise<BuildResult> {
    const { plan } = this.req;
    const stages = this.stagesToBuild(plan);
    this.totalSteps = stages.reduce((n, s) => n + 1 + s.steps.length, 0);
    for (const arg of plan.globalArgs) {
      for (const a of arg.args) {
        const value = this.req.buildArgs?.[a.name] ?? (a.default !== undefined ? this.expand(a.default, this.globalArgs, arg.loc) : undefined);
        if (this.req.buildArgs?.[a.name] !== undefined) this.usedArgs.add(a.name);
        if (value !== undefined) this.globalArgs.set(a.name, value);
      }
    }
    this.context = await openContext(this.req.contextDir);
    for (const ref of this.req.cacheFrom ?? []) await this.indexCacheFrom(ref);
    let last: StageResult | undefined;
    for (const stage of stages) {
      last = await this.buildStage(stage, this.built);
      this.built.set(stage.index, last);
    }
    // Docker's classic builder (BuildArgs.WarnOnUnusedBuildArgs): one line, the names sorted,
    // as Go prints a []string.
    const unused = Object.keys(this.req.buildArgs ?? {}).filter((n) => !this.usedArgs.has(n) && !PREDEFINED_ARGS.has(n));
    if (unused.length > 0) {
      this.events.warning?.(`[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed`);
    }
    const final = last!;
    const bytes = serializeConfig(final.config);
    const provenance = provenanceMetadata({ context: resolve(this.req.contextDir), steps: final.origins });
    const imageId = await this.store.putImage(bytes, final.imageId, provenance);
    const tags: string[] = [];
    for (const t of this.req.tags ?? []) {
      const ref = withDefaultTag(parseReference(t));
      await this.store.tags.set(ref, imageId);
      tags.push(familiarString(ref));
    }
    return { imageId, tags, config: final.config };
  }

  /** The target stage and the stages it stands on, in Dockerfile order; unused stages are not built. */
  private stagesToBuild(plan: BuildPlan): Stage[] {
    let target = plan.stages[plan.stages.length - 1]!;
    if (this.req.target !== undefined) {
      const t = plan.stages.find((s) => s.name === this.req.target!.toLowerCase());
      if (!t) throw new TsbuildError(`target stage "${this.req.target}" could not be found`);
      target = t;
    }
    const needed = new Set<number>();
    const visit = (s: Stage): void => {
      if (needed.has(s.index)) return;
      needed.add(s.index);
      const base = this.stageByName(plan, s.from.image, s.index);
      if (base) visit(base);
      for (const step of s.steps) {
        if (step.kind !== 'COPY' && step.kind !== 'ADD') continue;
        const from = step.from !== undefined ? this.stageByName(plan, step.from, s.index) : undefined;
        if (from) visit(from);
      }
    };
    visit(target);
    return plan.stages.filter((s) => needed.has(s.index));
  }

  private stageByName(plan: BuildPlan, name: string, before: number): Stage | undefined {
    const lower = name.toLowerCase();
    return plan.stages.find((s) => s.index < before && (s.name === lower || String(s.index) === name));
  }

  /** Substitution errors become errors at the step's line. */
  private atLine<T>(loc: SourceLocation, f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new DockerfileError(loc, (err as Error).message, { cause: err });
    }
  }

  private expand(word: Word, env: Env, loc: SourceLocation): string {
    return this.atLine(loc, () => expandWord(word, env, this.req.plan.escapeChar));
  }

  private expandSplit(word: Word, env: Env, loc: SourceLocation): string[] {
    return this.atLine(loc, () => expandWords(word, env, this.req.plan.escapeChar));
  }

  private announce(text: string, loc: SourceLocation): void {
    this.checkAborted();
    this.stepIndex++;
    this.events.step?.({ index: this.stepIndex, total: this.totalSteps, text, loc });
  }

  private async buildStage(stage: Stage, built: Map<number, StageResult>): Promise<StageResult> {
    this.announce(stage.from.text, stage.from.loc);
    const state = await this.fromBase(stage, built);
    await this.runTriggers(state);
    for (const step of stage.steps) {
      this.announce(step.text, step.loc);
      state.current = { loc: step.loc, text: step.text };
      await this.dispatch(state, step);
    }
    const parentId = (await this.baseImageId(stage, built)) ?? undefined;
    return {
      config: { ...state.config, created: this.now() },
      layers: state.layers,
      origins: state.origins,
      ...(parentId ? { imageId: parentId } : {}),
    };
  }

  private async baseImageId(stage: Stage, built: Map<number, StageResult>): Promise<Digest | undefined> {
    const name = this.expand(stage.from.image, this.globalArgs, stage.from.loc);
    if (name === 'scratch') return undefined;
    const prev = this.stageByName(this.req.plan, name, stage.index);
    if (prev) return built.get(prev.index)?.imageId;
    return this.store.resolveImage(name).catch(() => undefined);
  }

  private async fromBase(stage: Stage, built: Map<number, StageResult>): Promise<StageState> {
    const from: FromClause = stage.from;
    const name = this.expand(from.image, this.globalArgs, from.loc);
    if (from.platform !== undefined) {
      const platform = this.expand(from.platform, this.globalArgs, from.loc);
      const want = `linux/${hostArchitecture()}`;
      if (platform !== want && platform !== '$BUILDPLATFORM' && platform !== '$TARGETPLATFORM') {
        throw new DockerfileError(from.loc, `platform ${platform} is not supported: this machine builds ${want}`);
      }
    }
    let config: ImageConfig;
    let layers: LayerRecord[] = [];
    let origins: StepOrigin[] = [];
    const prev = this.stageByName(this.req.plan, name, stage.index);
    if (name === 'scratch') {
      config = { architecture: hostArchitecture(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
    } else if (prev) {
      const r = built.get(prev.index);
      if (!r) throw new DockerfileError(from.loc, `stage ${name} was not built`);
      config = structuredClone(r.config);
      layers = [...r.layers];
      origins = [...r.origins];
    } else {
      const id = await this.baseImage(name, from);
      config = await this.store.images.get(id);
      layers = await this.store.imageLayers(config);
    }
    // The base's ONBUILD triggers run now, in this build, and are not inherited.
    const triggers = config.config.OnBuild ?? [];
    delete config.config.OnBuild;
    // After the base's own variables, as both of Docker's builders add it (classic
    // setDefaultPath, BuildKit dispatchState's "make sure that PATH is always set").
    if (!config.config.Env?.some((e) => e.startsWith('PATH='))) {
      config.config.Env = [...(config.config.Env ?? []), `PATH=${DEFAULT_PATH}`];
    }
    return { stage, config, layers, args: new Map(), cmdSet: false, triggers, origins };
  }

  /** The store's image by that name, or else the one a registry has (as docker build pulls). */
  private async baseImage(name: string, from: FromClause): Promise<Digest> {
    try {
      return await this.store.resolveImage(name);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.events.pull?.(name);
    try {
      // Loaded only when a base is missing: the registry client is a large part of start-up.
      const { pullImage } = await import('../registry/index.js');
      const pulled = await pullImage(this.store, name, {
        ...(this.req.pull ?? {}),
        ...(this.req.signal ? { signal: this.req.signal } : {}),
      });
      return pulled.imageId;
    } catch (err) {
      if (this.req.signal?.aborted) throw err;
      throw new DockerfileError(from.loc, `base image ${name} is not in the store and could not be pulled: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Runs a base image's ONBUILD triggers as if they stood right after the FROM line. */
  private async runTriggers(state: StageState): Promise<void> {
    const from = state.stage.from;
    for (const trigger of state.triggers) {
      let steps: readonly Step[];
      try {
        steps = parseDockerfile(`FROM scratch\n${trigger}\n`, from.loc.file).stages[0]!.steps;
      } catch (err) {
        throw new DockerfileError(from.loc, `invalid ONBUILD trigger "${trigger}" in the base image: ${(err as DockerfileError).detail ?? (err as Error).message}`);
      }
      for (const step of steps) {
        this.events.trigger?.(step.text);
        state.current = { loc: from.loc, text: `ONBUILD ${step.text}` };
        await this.dispatch(state, { ...step, loc: from.loc });
      }
    }
  }

  /** The variables a word of this step is expanded with: ARGs, overridden by ENV of the same name. */
  private substitutionEnv(state: StageState): Map<string, string> {
    const env = new Map(state.args);
    for (const kv of state.config.config.Env ?? []) {
      const i = kv.indexOf('=');
      env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return env;
  }

  /** A variable already set keeps its place in Env (as Docker's ENV replaces it in place); a new one is appended. */
  private setEnv(state: StageState, key: string, value: string): void {
    const env = [...(state.config.config.Env ?? [])];
    const at = env.findIndex((kv) => kv.slice(0, kv.indexOf('=')) === key);
    if (at >= 0) env[at] = `${key}=${value}`;
    else env.push(`${key}=${value}`);
    state.config.config.Env = env;
  }

  private history(state: StageState, createdBy: string, emptyLayer: boolean): HistoryEntry {
    const h: HistoryEntry = { created: this.now(), created_by: createdBy, comment: HISTORY_COMMENT, ...(emptyLayer ? { empty_layer: true } : {}) };
    this.addHistory(state, h);
    return h;
  }

  /** Appends a history entry and notes which Dockerfile line made it. */
  private addHistory(state: StageState, h: HistoryEntry): void {
    state.config.history.push(h);
    if (state.current) {
      state.origins.push({ history: state.config.history.length - 1, file: state.current.loc.file, line: state.current.loc.line, text: state.current.text });
    }
  }

  private async dispatch(state: StageState, step: Step): Promise<void> {
    const c = state.config.config;
    const env = (): Map<string, string> => this.substitutionEnv(state);
    const x = (w: Word): string => this.expand(w, env(), step.loc);
    switch (step.kind) {
      case 'RUN':
        return this.run(state, step);
      case 'COPY':
      case 'ADD':
        return this.copy(state, step);
      case 'ENV': {
        // Every value of one ENV line sees the environment from before the line, as in Docker.
        const e = env();
        const pairs = step.pairs.map(([k, v]) => [k, this.expand(v, e, step.loc)] as const);
        for (const [k, v] of pairs) this.setEnv(state, k, v);
        this.history(state, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, true);
        return;
      }
      case 'ARG': {
        const shown: string[] = [];
        for (const a of step.args) {
          const given = this.req.buildArgs?.[a.name];
          if (given !== undefined) this.usedArgs.add(a.name);
          const value = given ?? (a.default !== undefined ? x(a.default) : this.globalArgs.get(a.name));
          if (value !== undefined) state.args.set(a.name, value);
          shown.push(a.default !== undefined ? `${a.name}=${x(a.default)}` : a.name);
        }
        this.history(state, `ARG ${shown.join(' ')}`, true);
        return;
      }
      case 'WORKDIR':
        c.WorkingDir = posix.resolve('/', c.WorkingDir || '/', x(step.path));
        return this.workdir(state, step, c.WorkingDir);
      case 'CMD':
      case 'ENTRYPOINT': {
        const argv = step.cmd.form === 'exec' ? [...step.cmd.argv] : [...(c.Shell ?? DEFAULT_SHELL), step.cmd.command];
        // `ENTRYPOINT []` unsets it (null in the config): Docker's instruction parser reads an
        // empty ENTRYPOINT as no list at all (parseShellDependentCommand's emptyAsNil), an empty
        // CMD as an empty list.
        if (step.kind === 'CMD') {
          c.Cmd = argv;
          state.cmdSet = true;
        } else {
          if (argv.length > 0) c.Entrypoint = argv;
          else delete c.Entrypoint;
          if (!state.cmdSet) delete c.Cmd;
        }
        this.history(state, `${step.kind} ${JSON.stringify(argv)}`, true);
        return;
      }
      case 'USER':
        c.User = x(step.user);
        this.history(state, `USER ${c.User}`, true);
        return;
      case 'EXPOSE': {
        // EXPOSE is the one instruction whose words split after expansion (BuildKit).
        const e = env();
        const ports = step.ports
          .flatMap((w) => this.expandSplit(w, e, step.loc))
          .flatMap((p) => expandPorts(p, step.loc));
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of ports) c.ExposedPorts[p] = {};
        this.history(state, `EXPOSE ${ports.join(' ')}`, true);
        return;
      }
      case 'LABEL': {
        const e = env();
        c.Labels = { ...(c.Labels ?? {}) };
        const shown: string[] = [];
        for (const [k, v] of step.pairs) {
          const key = this.expand(k, e, step.loc);
          const value = this.expand(v, e, step.loc);
          c.Labels[key] = value;
          shown.push(`${key}=${value}`);
        }
        this.history(state, `LABEL ${shown.join(' ')}`, true);
        return;
      }
      case 'VOLUME': {
        c.Volumes = { ...(c.Volumes ?? {}) };
        const paths = step.paths.map(x);
        for (const p of paths) {
          if (p === '') throw new DockerfileError(step.loc, 'VOLUME specified can not be an empty string');
          c.Volumes[p] = {};
        }
        this.history(state, `VOLUME [${paths.join(' ')}]`, true);
        return;
      }
      case 'SHELL':
        c.Shell = [...step.argv];
        this.history(state, `SHELL ${JSON.stringify(step.argv)}`, true);
        return;
      case 'STOPSIGNAL': {
        const sig = x(step.signal);
        if (!isSignal(sig)) throw new DockerfileError(step.loc, `invalid signal: ${sig}`);
        c.StopSignal = sig;
        this.history(state, `STOPSIGNAL ${sig}`, true);
        return;
      }
      case 'HEALTHCHECK': {
        c.Healthcheck = {
          Test: [...step.test],
          ...(step.intervalNs !== undefined ? { Interval: step.intervalNs } : {}),
          ...(step.timeoutNs !== undefined ? { Timeout: step.timeoutNs } : {}),
          ...(step.startPeriodNs !== undefined ? { StartPeriod: step.startPeriodNs } : {}),
          ...(step.startIntervalNs !== undefined ? { StartInterval: step.startIntervalNs } : {}),
          ...(step.retries !== undefined ? { Retries: step.retries } : {}),
        };
        this.history(state, step.text, true);
        return;
      }
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), step.trigger];
        this.history(state, `ONBUILD ${step.trigger}`, true);
        return;
      case 'MAINTAINER':
        state.config.author = step.name;
        this.history(state, `MAINTAINER ${step.name}`, true);
        return;
    }
  }

  /** The environment a RUN process gets: the image's Env plus the ARGs in scope (not persisted). */
  private runEnv(state: StageState): string[] {
    const env = [...(state.config.config.Env ?? [])];
    const has = new Set(env.map((kv) => kv.slice(0, kv.indexOf('='))));
    for (const [k, v] of state.args) if (!has.has(k)) env.push(`${k}=${v}`);
    for (const [k, v] of Object.entries(this.req.buildArgs ?? {})) {
      if (PREDEFINED_ARGS.has(k) && !has.has(k) && !state.args.has(k)) env.push(`${k}=${v}`);
    }
    return env;
  }

  /**
   * The shape every layer-making step shares: reuse the cached layer for `key` if there is one;
   * else prepare a snapshot on the current top layer, mount it (with an init layer for RUN),
   * let `work` change it, unmount, and commit it as a layer. `work` returns false when it
   * changed nothing and no layer should be recorded. On any failure the snapshot is removed.
   */
  private async layerStep(
    state: StageState,
    key: Digest,
    createdBy: string,
    opts: { init?: boolean; cacheFromByCommand?: boolean },
    work: (mounted: MountedRootfs, snapshotId: string) => Promise<boolean>,
  ): Promise<void> {
    const parent = state.layers.at(-1);
    if (await this.reuseCached(state, key, parent, opts.cacheFromByCommand ? createdBy : undefined)) return;
    const snap = newSnapshotId();
    await this.store.prepareSnapshot(snap, parent);
    let layer: LayerRecord | undefined;
    try {
      const init = opts.init ? await initLayerFor(snap.slice(0, 12)) : undefined;
      const mounted = await this.store.snapshotter.mount(snap, init);
      let changed: boolean;
      try {
        changed = await work(mounted, snap);
      } finally {
        await this.store.snapshotter.unmount(snap);
      }
      this.checkAborted();
      if (changed) layer = await commitSnapshot(this.store, snap, parent, this.commitOptions());
      else await this.store.snapshotter.remove(snap);
    } catch (err) {
      await this.store.snapshotter.remove(snap);
      const explained = explainNoSpace(err, "writing this step's files into its layer", this.store.root);
      if (explained !== err && err instanceof DockerfileError) throw new DockerfileError(err.location, (explained as Error).message, { cause: err });
      throw explained;
    }
    if (!layer) {
      this.history(state, createdBy, true);
      return;
    }
    const h: HistoryEntry = { created: this.now(), created_by: createdBy, comment: HISTORY_COMMENT };
    await this.cache.put(key, { chainId: layer.chainId, history: h });
    this.pushLayer(state, layer, h);
    this.events.layer?.({ diffId: layer.diffId, size: layer.size });
  }

  private async run(state: StageState, step: RunStep): Promise<void> {
    const c = state.config.config;
    const shell = c.Shell ?? DEFAULT_SHELL;
    // Heredocs become part of the shell's script, or a script file mounted at /dev/pipes.
    const plan =
      step.cmd.form === 'exec'
        ? { argv: [...step.cmd.argv] }
        : this.atLine(step.loc, () => heredocRun({ shell, command: step.cmd.form === 'shell' ? step.cmd.command : '', heredocs: step.heredocs ?? [] }));
    const argv = plan.argv;
    const argsShown = [...state.args].map(([k, v]) => `${k}=${v}`);
    const createdBy = `RUN ${argsShown.length ? `|${argsShown.length} ${argsShown.join(' ')} ` : ''}${argv.join(' ')} # buildkit`;
    const network = step.network === undefined ? 'host' : this.expand(step.network, this.substitutionEnv(state), step.loc);
    if (network !== 'host' && network !== 'none' && network !== 'default') {
      throw new DockerfileError(step.loc, `unsupported network mode: ${network}`);
    }
    const env = this.runEnv(state);
    const key = BuildCache.key({
      parent: state.layers.at(-1)?.chainId ?? '',
      argv,
      env,
      user: c.User ?? '',
      cwd: c.WorkingDir ?? '/',
      network,
      pipes: plan.pipes ? inlineFilesKey(plan.pipes) : '',
    });
    await this.layerStep(state, key, createdBy, { init: true, cacheFromByCommand: true }, async (mounted, snap) => {
      const binds = [...mounted.binds];
      let pipesDir: string | undefined;
      if (plan.pipes) {
        pipesDir = await this.store.tempDir('pipes');
        await writePipes(pipesDir, plan.pipes);
        binds.push({ source: pipesDir, target: PIPES_DIR, readonly: true });
      }
      try {
        return await this.runStep(state, step, { ...mounted, binds }, { argv, env, network, hostname: snap.slice(0, 12) });
      } finally {
        if (pipesDir) await rm(pipesDir, { recursive: true, force: true });
      }
    });
  }

  /** Runs one RUN command in the mounted snapshot; a non-zero exit is an error at its line. */
  private async runStep(
    state: StageState,
    step: RunStep,
    mounted: MountedRootfs,
    run: { argv: readonly string[]; env: readonly string[]; network: string; hostname: string },
  ): Promise<boolean> {
    const c = state.config.config;
    const shell = c.Shell ?? DEFAULT_SHELL;
    if (step.cmd.form === 'shell' && !(await existsInRoot(mounted.rootfs, shell[0]!))) {
      throw new DockerfileError(step.loc, `RUN needs ${shell[0]} to run a shell-form command, and the image has no ${shell[0]}`);
    }
    const user = await this.atLineAsync(step.loc, () => resolveUser(mounted.rootfs, c.User ?? ''));
    const { exitCode } = await runInContainer(
      {
        rootfs: mounted.rootfs,
        argv: run.argv,
        env: run.env,
        cwd: c.WorkingDir || '/',
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
        hostname: run.hostname,
        network: run.network === 'none' ? 'none' : 'host',
        binds: mounted.binds,
      },
      {
        ...(this.req.stdout ? { stdout: this.req.stdout } : {}),
        ...(this.req.stderr ? { stderr: this.req.stderr } : {}),
        ...(this.req.signal ? { signal: this.req.signal } : {}),
      },
    );
    this.checkAborted();
    if (exitCode !== 0) throw new DockerfileError(step.loc, `${step.text} exited with code ${exitCode}`);
    // Docker's classic builder records a layer even for a RUN that changed nothing.
    return true;
  }

  /**
   * WORKDIR, as BuildKit does it: the directory is created (with parents, 0755, owned by the
   * current USER) in a layer of its own; if it already exists, nothing is recorded.
   */
  private async workdir(state: StageState, step: WorkdirStep, dir: string): Promise<void> {
    const createdBy = `WORKDIR ${dir}`;
    if (dir === '/') {
      this.history(state, createdBy, true);
      return;
    }
    const user = state.config.config.User ?? '';
    const key = BuildCache.key({ parent: state.layers.at(-1)?.chainId ?? '', workdir: dir, user });
    await this.layerStep(state, key, createdBy, { cacheFromByCommand: true }, async (mounted) =>
      this.atLineAsync(step.loc, async () => {
        const owner = user === '' ? { uid: 0, gid: 0 } : await resolveChown(mounted.rootfs, user);
        const target = await resolveInRoot(mounted.rootfs, dir);
        const created = await mkdirAll(target, { mode: 0o755, owner, root: mounted.rootfs });
        return created.length > 0;
      }),
    );
  }

  private commitOptions(): { sourceDateEpoch?: number } {
    return this.req.sourceDateEpoch !== undefined ? { sourceDateEpoch: this.req.sourceDateEpoch } : {};
  }

  private pushLayer(state: StageState, layer: LayerRecord, h: HistoryEntry): void {
    state.layers.push(layer);
    state.config.rootfs.diff_ids.push(layer.diffId);
    this.addHistory(state, h);
  }

  /**
   * Indexes a --cache-from image's layers by what made them: the layer below and the history's
   * created_by. Like Docker's classic builder, this trusts the command text, so it is used for
   * RUN and WORKDIR only; COPY/ADD need the content checksum, which only the local cache has.
   */
  private async indexCacheFrom(ref: string): Promise<void> {
    let id: Digest;
    try {
      id = await this.store.resolveImage(ref);
    } catch {
      this.events.warning?.(`--cache-from ${ref}: no such image in the store, ignored`);
      return;
    }
    const config = await this.store.images.get(id);
    const layers = await this.store.imageLayers(config);
    let i = 0;
    for (const h of config.history) {
      if (h.empty_layer) continue;
      const layer = layers[i++];
      if (!layer) break;
      if (h.created_by) this.cacheFrom.set(`${layer.parent ?? ''} ${h.created_by}`, { layer, history: h });
    }
  }

  /** Reuses a cached layer for this step if there is one on the same parent. */
  private async reuseCached(state: StageState, key: Digest, parent: LayerRecord | undefined, createdBy?: string): Promise<boolean> {
    if (this.req.noCache) return false;
    const hit = await this.cache.get(key);
    let layer: LayerRecord | undefined;
    let history: HistoryEntry | undefined;
    if (hit) {
      // Leased as it is found: a prune running now cannot take it before a later step uses it.
      layer = await this.store.useLayer(hit.chainId);
      history = hit.history;
    } else if (createdBy !== undefined) {
      const from = this.cacheFrom.get(`${parent?.chainId ?? ''} ${createdBy}`);
      if (from) ({ layer, history } = from);
    }
    if (!layer || !history || layer.parent !== parent?.chainId) return false;
    this.pushLayer(state, layer, history);
    this.events.cached?.();
    return true;
  }

  private async copy(state: StageState, step: CopyStep): Promise<void> {
    const env = this.substitutionEnv(state);
    const x = (w: Word): string => this.expand(w, env, step.loc);
    const sources = step.sources.map(x);
    if (step.from !== undefined) return this.copyFrom(state, step, sources, x);
    const dest = x(step.dest);
    const chmod = step.chmod !== undefined ? this.parseChmod(x(step.chmod), step) : undefined;
    const chown = step.chown !== undefined ? x(step.chown) : undefined;
    const pin = step.checksum !== undefined ? x(step.checksum) : undefined;
    const inline = this.atLine(step.loc, () => copyHeredocFiles(step.heredocs ?? [], env));
    // One Downloads per step: a URL is fetched once, and the file copied is the one hashed.
    const downloads = new Downloads({ tmpDir: join(this.store.root, 'tmp'), ...(this.req.signal ? { signal: this.req.signal } : {}) });
    try {
      await this.copySources(state, step, { sources, dest, chmod, chown, pin, inline, downloads });
    } finally {
      await downloads.close();
    }
  }

  private async copySources(
    state: StageState,
    step: CopyStep,
    a: {
      sources: string[];
      dest: string;
      chmod: number | undefined;
      chown: string | undefined;
      pin: string | undefined;
      inline: InlineFile[];
      downloads: Downloads;
    },
  ): Promise<void> {
    const { sources, dest, chmod, chown, pin, inline, downloads } = a;
    const checksum = sources.length
      ? await this.atLineAsync(
          step.loc,
          () =>
            sourcesChecksum(this.context!, sources, {
              cacheDir: join(this.store.root, 'image', this.store.driver, 'contexthash'),
              isAdd: step.kind === 'ADD',
              downloads,
              ...(pin !== undefined ? { checksum: pin } : {}),
            }),
          `${step.kind} failed: `,
        )
      : '';
    const workdir = state.config.config.WorkingDir || '/';
    const key = BuildCache.key({
      parent: state.layers.at(-1)?.chainId ?? '',
      kind: step.kind,
      sources,
      checksum,
      dest,
      workdir,
      chown: chown ?? '',
      chmod: chmod ?? '',
      inline: inlineFilesKey(inline),
    });
    await this.layerStep(state, key, `${step.text} # buildkit`, {}, async (mounted) =>
      this.atLineAsync(
        step.loc,
        async () => {
          const owner = chown !== undefined ? await resolveChown(mounted.rootfs, chown) : undefined;
          const into = {
            dest,
            workdir,
            rootfs: mounted.rootfs,
            ...(owner ? { chown: owner } : {}),
            ...(chmod !== undefined ? { chmod } : {}),
          };
          if (sources.length) {
            await copyIntoRootfs({ ...into, context: this.context!, sources, isAdd: step.kind === 'ADD', downloads, ...(pin !== undefined ? { checksum: pin } : {}) });
          }
          if (inline.length) {
            // Heredoc files are copied after the context's sources, one copy each, never unpacked (BuildKit).
            const dir = await this.store.tempDir('heredoc');
            try {
              const epoch = this.req.sourceDateEpoch;
              const made = await writeCopyHeredocs(dir, inline, epoch !== undefined ? { mtime: new Date(epoch * 1000) } : {});
              for (const source of made.sources) await copyIntoRootfs({ ...into, context: made.context, sources: [source], isAdd: false });
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          }
          return true;
        },
        `${step.kind} failed: `,
      ),
    );
  }

  /** The layers a COPY --from reads: an earlier stage (by name or index), or an image. */
  private async copySourceLayers(state: StageState, step: CopyStep, from: string): Promise<{ layers: readonly LayerRecord[]; key: string }> {
    const stage = this.stageByName(this.req.plan, from, state.stage.index);
    if (stage) {
      const r = this.built.get(stage.index);
      if (!r) throw new DockerfileError(step.loc, `stage ${from} was not built`);
      return { layers: r.layers, key: r.layers.at(-1)?.chainId ?? 'scratch' };
    }
    if (/^\d+$/.test(from)) throw new DockerfileError(step.loc, `invalid from flag value ${from}: index out of bounds`);
    const id = await this.baseImage(from, { loc: step.loc, text: step.text, image: from });
    const config = await this.store.images.get(id);
    const layers = await this.store.imageLayers(config);
    return { layers, key: layers.at(-1)?.chainId ?? 'scratch' };
  }

  /**
   * COPY --from: the sources come from another stage's or an image's root filesystem, mounted
   * read-only for the copy (a throwaway snapshot on its top layer). Their identity for the
   * cache is that root's chainID: the same chain is the same files.
   */
  private async copyFrom(state: StageState, step: CopyStep, sources: string[], x: (w: Word) => string): Promise<void> {
    if (step.kind === 'ADD') throw new DockerfileError(step.loc, 'ADD does not support --from; use COPY --from');
    const from = step.from!;
    const source = await this.copySourceLayers(state, step, from);
    const dest = x(step.dest);
    const chown = step.chown !== undefined ? x(step.chown) : undefined;
    const chmod = step.chmod !== undefined ? this.parseChmod(x(step.chmod), step) : undefined;
    const workdir = state.config.config.WorkingDir || '/';
    const key = BuildCache.key({
      parent: state.layers.at(-1)?.chainId ?? '',
      kind: 'COPY --from',
      source: source.key,
      sources,
      dest,
      workdir,
      chown: chown ?? '',
      chmod: chmod ?? '',
    });
    await this.layerStep(state, key, `${step.text} # buildkit`, {}, async (mounted) =>
      this.atLineAsync(
        step.loc,
        () =>
          this.withReadonlyRootfs(source.layers, async (root) => {
            const owner = chown !== undefined ? await resolveChown(mounted.rootfs, chown) : undefined;
            await copyIntoRootfs({
              context: await openRootfsSource(root),
              sources,
              dest,
              workdir,
              rootfs: mounted.rootfs,
              isAdd: false,
              keepOwners: true,
              ...(owner ? { chown: owner } : {}),
              ...(chmod !== undefined ? { chmod } : {}),
            });
            return true;
          }),
        'COPY failed: ',
      ),
    );
  }

  /** Mounts a throwaway snapshot on `layers`' top layer for the duration of `f`. */
  private async withReadonlyRootfs<T>(layers: readonly LayerRecord[], f: (root: string) => Promise<T>): Promise<T> {
    const snap = newSnapshotId();
    await this.store.prepareSnapshot(snap, layers.at(-1));
    try {
      const mounted = await this.store.snapshotter.mount(snap);
      try {
        return await f(mounted.rootfs);
      } finally {
        await this.store.snapshotter.unmount(snap);
      }
    } finally {
      await this.store.snapshotter.remove(snap);
    }
  }

  private parseChmod(s: string, step: CopyStep): number {
    if (!/^[0-7]{3,4}$/.test(s)) throw new DockerfileError(step.loc, `invalid chmod parameter: ${s}: use an octal mode such as 0755`);
    return parseInt(s, 8);
  }

  /** Errors of `f` (other than Dockerfile errors) become errors at the step's line. */
  private async atLineAsync<T>(loc: SourceLocation, f: () => Promise<T>, prefix = ''): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof DockerfileError || this.req.signal?.aborted) throw err;
      throw new DockerfileError(loc, `${prefix}${(err as Error).message}`, { cause: err });
    }
  }
}

export async function build(store: Store, req: BuildRequest): Promise<BuildResult> {
  return new Builder(store, req).build();
}

async function existsInRoot(rootfs: string, path: string): Promise<boolean> {
  try {
    await lstat(await resolveInRoot(rootfs, path, { followFinal: true }));
    return true;
  } catch {
    return false;
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

const SIGNALS = new Set([
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM',
  'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'PWR', 'SYS',
]);

function isSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) > 0 && Number(s) < 65;
  const name = s.toUpperCase().replace(/^SIG/, '');
  return SIGNALS.has(name) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name);
}
