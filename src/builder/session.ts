// One build in progress: what every part of the executor shares (the store, the request, the
// build context, the stages built so far, the step counter) and the state of the stage being
// built. The executor's modules (stage.ts, base.ts, layer-step.ts, the *-step.ts files) take a
// session; the instruction semantics (instructions.ts) never see one.
import type { Digest } from '../digest.js';
import { DockerfileError, TsbuildError, type SourceLocation } from '../errors.js';
import { rfc3339, type HistoryEntry, type ImageConfig } from '../image/config.js';
import type { StepOrigin } from '../image/provenance.js';
import type { BuildContext } from '../context/index.js';
import type { BuildPlan, Stage } from '../parse/plan.js';
import type { LayerRecord, Store } from '../store/store.js';
import type { BuildScope, StageVars } from './instructions.js';
import type { BuildEvents, BuildRequest } from './request.js';
import type { Secrets } from './secrets.js';
import type { SshAgents } from './ssh.js';
import type { ResolvedFrom } from './stages.js';

/** --cache-from's images indexed by "<parent chainID> <created_by>" (cache-from.ts). */
export type CacheFromIndex = ReadonlyMap<string, { readonly layer: LayerRecord; readonly history: HistoryEntry }>;

export function cacheFromKey(parent: Digest | undefined, createdBy: string): string {
  return `${parent ?? ''} ${createdBy}`;
}

/** A stage once built: what a later FROM or COPY --from reads. */
export interface StageResult {
  readonly config: ImageConfig;
  readonly layers: readonly LayerRecord[];
  /** The stored image the stage started from, if any (Docker's `parent`). */
  readonly imageId?: Digest;
  readonly origins: readonly StepOrigin[];
}

/** The stage being built. */
export interface StageState {
  readonly stage: Stage;
  vars: StageVars;
  /** Bottom first; the image's diff_ids are theirs. */
  readonly layers: LayerRecord[];
  readonly history: HistoryEntry[];
  /** Which Dockerfile line made each history entry this build added. */
  readonly origins: StepOrigin[];
  /** Where the run of history entries of steps that made no layer starts, until settled (metadata-step.ts). */
  pendingMetadata?: number | undefined;
  /** The instruction being executed, for provenance (an ONBUILD trigger's is its FROM line). */
  current?: { readonly loc: SourceLocation; readonly text: string };
}

export class BuildSession {
  /** Stages built so far, by index. */
  readonly built = new Map<number, StageResult>();
  /** --build-arg names some ARG consumed. */
  readonly usedArgs = new Set<string>();
  /** The directories of --build-context NAME=DIR (or a fetched URL), opened with their own .dockerignore. */
  readonly localContexts = new Map<string, BuildContext>();
  /** The images of --build-context NAME=oci-layout://DIR, by NAME, as stored for this build. */
  readonly contextImages = new Map<string, Digest>();
  /** Images pulled by this build, by name as written: with --pull, each is asked for once. */
  readonly pulled = new Map<string, Digest>();
  private stepIndex = 0;
  // Loaded on first use: only Dockerfiles with secret or ssh mounts need them.
  private secretsLoaded: Promise<Secrets> | undefined;
  private sshLoaded: Promise<SshAgents> | undefined;

  constructor(
    readonly store: Store,
    readonly req: BuildRequest,
    readonly scope: BuildScope,
    /** Each stage's FROM line, expanded (stages.ts resolveFroms), by stage index. */
    readonly froms: readonly ResolvedFrom[],
    readonly context: BuildContext,
    readonly cacheFrom: CacheFromIndex,
    /** Every FROM and instruction of the stages to build. */
    readonly totalSteps: number,
  ) {}

  get plan(): BuildPlan {
    return this.req.plan;
  }

  get events(): BuildEvents {
    return this.req.events ?? {};
  }

  /** A timestamp for what is written now: SOURCE_DATE_EPOCH when given. */
  now(): string {
    const epoch = this.req.sourceDateEpoch;
    return rfc3339(epoch !== undefined ? new Date(epoch * 1000) : new Date());
  }

  checkAborted(): void {
    if (this.req.signal?.aborted) throw new TsbuildError('build interrupted');
  }

  /** The secrets of --secret, read when a step mounts one. */
  secrets(): Promise<Secrets> {
    this.secretsLoaded ??= import('./secrets.js').then((m) => new m.Secrets(this.req.secrets ?? []));
    return this.secretsLoaded;
  }

  /** The agents of --ssh; started on first use, stopped by close(). */
  sshAgents(): Promise<SshAgents> {
    this.sshLoaded ??= import('./ssh.js').then((m) => new m.SshAgents(this.req.ssh ?? []));
    return this.sshLoaded;
  }

  /** Ends what the build started for its steps (SSH agents). */
  async close(): Promise<void> {
    if (this.sshLoaded) await (await this.sshLoaded).close();
  }

  /** A step starts: counted and reported. */
  announce(text: string, loc: SourceLocation): void {
    this.checkAborted();
    this.stepIndex++;
    this.events.step?.({ index: this.stepIndex, total: this.totalSteps, text, loc });
  }
}

/** Appends a history entry and notes which Dockerfile line made it. */
export function addHistory(state: StageState, h: HistoryEntry): void {
  state.history.push(h);
  if (state.current) {
    const { loc, text } = state.current;
    state.origins.push({ history: state.history.length - 1, file: loc.file, line: loc.line, text });
  }
}

/** The stage's image config as it stands: its variables' config with its layers and history. */
export function stageConfig(state: StageState): ImageConfig {
  return { ...state.vars.config, rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) }, history: [...state.history] };
}

/** Errors of `f` (other than Dockerfile errors) become errors at the step's line. */
export async function atLine<T>(loc: SourceLocation, f: () => Promise<T>, prefix = ''): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof DockerfileError) throw err;
    throw new DockerfileError(loc, `${prefix}${(err as Error).message}`, { cause: err });
  }
}
