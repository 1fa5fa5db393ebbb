// One build in progress: what every part of the executor shares (the store, the request, the
// build context, the stages built so far, the step counter) and the state of the stage being
// built. The executor's modules (stage.ts, base.ts, layer-step.ts, the *-step.ts files) take a
// session; the instruction semantics (instructions.ts) never see one.
import { rm } from 'node:fs/promises';
import { yieldIfBusy } from '../abort.js';
import { isPending, type PendingLayer } from '../cache/pending.js';
import type { StepInputs } from '../cache/format.js';
import type { BlobFiles } from '../cache/blob-files.js';
import type { ExportRecord } from '../cache/export.js';
import type { CacheSources } from '../cache/sources.js';
import type { Digest } from '../digest.js';
import { DockerfileError, TsbuildError, type SourceLocation } from '../errors.js';
import { hostArchitecture, rfc3339, type HistoryEntry, type ImageConfig } from '../image/config.js';
import { formatPlatform } from '../image/platform.js';
import { checkEmulation } from '../runtime/binfmt.js';
import type { StepOrigin } from '../image/provenance.js';
import type { BuildContext, SelectOptions } from '../context/index.js';
import type { BuildPlan, Stage } from '../parse/plan.js';
import type { CacheRecord, LayerRecord, Store } from '../store/store.js';
import type { BuildScope, StageDraft } from './instructions.js';
import type { BuildEvents, BuildRequest } from './request.js';
import type { Secrets } from './secrets.js';
import type { SshAgents } from './ssh.js';
import type { BaseImage } from './base.js';
import type { ResolvedFrom } from './stages.js';
import { stagePlatform } from './platforms.js';
import { ChecksumsAhead, type AheadChecksum } from './checksums-ahead.js';

/** --cache-from's images indexed by "<parent chainID> <created_by>" (cache-from.ts). */
export type CacheFromIndex = ReadonlyMap<string, { readonly layer: LayerRecord; readonly history: HistoryEntry }>;

export function cacheFromKey(parent: Digest | undefined, createdBy: string): string {
  return `${parent ?? ''} ${createdBy}`;
}

/**
 * A layer of a stage being built: stored, or known from a cache and not unpacked until a step
 * needs its files (BuildSession.stored).
 */
export type StageLayer = LayerRecord | PendingLayer;

/** A cache record this build used or made, for --cache-to (src/cache/export.ts takes it with its chain's bytes). */
export interface LoggedRecord extends Omit<ExportRecord, 'chain'> {
  /** The stage it belongs to, by index: mode=min exports the final stage's alone. */
  readonly stage: number;
  /** The layers it left (or stood on), bottom first. */
  readonly chain: readonly StageLayer[];
  /**
   * The step is recorded by its content key too (COPY --from): an inline cache keeps only that
   * one, since this key names another stage's layers, which an inline cache does not hold.
   */
  readonly twin?: boolean;
}

/** What a step hands the caches besides its key: what the key was made of, and where it stands. */
export interface StepCacheInfo {
  readonly inputs?: StepInputs;
  /** A COPY's source listing (checksum.ts onListing). */
  readonly listing?: string;
}

/** A record found for a key: in the store's build cache or in a --cache-from cache. */
export interface FoundRecord {
  readonly history: HistoryEntry;
  readonly createdTimes?: readonly string[];
  /** The layer it left (for an empty layer: stood on); undefined on scratch. */
  readonly top?: StageLayer;
}

/** A stage once built: what a later FROM or COPY --from reads. */
export interface StageResult {
  readonly config: ImageConfig;
  readonly layers: readonly StageLayer[];
  /** The stored image the stage started from, if any (Docker's `parent`). */
  readonly imageId?: Digest;
  readonly origins: readonly StepOrigin[];
}

/** The stage being built. */
export interface StageState {
  readonly stage: Stage;
  /** Its variables, changed by each instruction in turn (instructions.ts); `draft.vars()` reads them. */
  readonly draft: StageDraft;
  /** Bottom first; the image's diff_ids are theirs. */
  readonly layers: StageLayer[];
  readonly history: HistoryEntry[];
  /** Which Dockerfile line made each history entry this build added. */
  readonly origins: StepOrigin[];
  /** Where the run of history entries of steps that made no layer starts, until settled (metadata-step.ts). */
  pendingMetadata?: number | undefined;
  /** The instruction being executed, for provenance (an ONBUILD trigger's is its FROM line). */
  current?: { readonly loc: SourceLocation; readonly text: string };
  /** Where the step stands (`<stage>/<n>`), for caches to compare a missed step with. */
  slot?: string;
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
  /** Registry images this build reads without pulling them (base.ts remoteBase), by name as written. */
  readonly remoteBases = new Map<string, Promise<BaseImage>>();
  private readonly closers: (() => void | Promise<void>)[] = [];
  private ahead: ChecksumsAhead | undefined;
  /** --cache-from caches beyond the store (src/cache/sources.ts); undefined without any. */
  remote: CacheSources | undefined;
  /** The records used or made, by key, when a cache is to be exported. */
  readonly cacheLog: Map<Digest, LoggedRecord> | undefined;
  /** Pending layers unpacked so far, by chainID. */
  private readonly unpacked = new Map<Digest, LayerRecord>();
  private scratchDir: Promise<string> | undefined;
  private blobs: Promise<BlobFiles> | undefined;
  private stepIndex = 0;
  private readonly emulation = new Set<string>();
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
    opts: { logRecords?: boolean } = {},
  ) {
    this.cacheLog = opts.logRecords ? new Map() : undefined;
  }

  /**
   * Whether this machine runs the stage's RUN steps (natively or under an emulator), checked once
   * per platform: the check before the build sees the Dockerfile's RUN steps, this one an ONBUILD
   * trigger's too.
   */
  canRun(stage: Stage): void {
    const p = stagePlatform(this.plan, this.froms, stage, this.req.platform);
    const key = formatPlatform(p);
    if (this.emulation.has(key)) return;
    checkEmulation(p, { host: hostArchitecture() });
    this.emulation.add(key);
  }

  /** Whether the image carries its cache (--cache-to type=inline). */
  get inlineExport(): boolean {
    return this.req.cacheExports?.some((c) => c.type === 'inline') ?? false;
  }

  /** Whether steps should say why they missed: a --cache-from cache was given. */
  get explainsMisses(): boolean {
    return this.remote !== undefined;
  }

  /** The record for `key`: the store's first, then the --cache-from caches' in order. */
  async findRecord(key: Digest): Promise<FoundRecord | undefined> {
    const local = await this.store.cacheRecord(key);
    if (local) {
      const top = local.chainId ? await this.store.useLayer(local.chainId) : undefined;
      if (!local.chainId || top) {
        return { history: local.history, ...(local.createdTimes ? { createdTimes: local.createdTimes } : {}), ...(top ? { top } : {}) };
      }
    }
    const hit = await this.remote?.lookup(key);
    if (!hit) return undefined;
    const top = hit.chain.at(-1);
    return { history: hit.history, ...(hit.createdTimes ? { createdTimes: hit.createdTimes } : {}), ...(top ? { top } : {}) };
  }

  /**
   * The record for `key` if this build may use it: under --no-cache, only one this invocation
   * recorded itself (request.ts's recordedThisBuild).
   */
  async usableRecord(key: Digest): Promise<FoundRecord | undefined> {
    if (this.req.noCache && !this.req.recordedThisBuild?.has(key)) return undefined;
    return this.findRecord(key);
  }

  /** Records a step's result in the store's build cache. */
  async putRecord(key: Digest, rec: CacheRecord): Promise<void> {
    await this.store.putCacheRecord(key, rec);
    this.req.recordedThisBuild?.add(key);
  }

  /** Notes a record the build used or made, for --cache-to. */
  logRecord(
    state: StageState,
    key: Digest,
    rec: Omit<LoggedRecord, 'key' | 'stage' | 'slot' | 'chain'>,
    chain: readonly StageLayer[],
  ): void {
    if (!this.cacheLog) return;
    this.cacheLog.set(key, { key, stage: state.stage.index, chain: [...chain], ...(state.slot ? { slot: state.slot } : {}), ...rec });
  }

  /**
   * Starts the checksums of the COPY steps of `stages` that nothing in the build can change
   * (checksums-ahead.ts); the steps take them with checksumAhead. Stopped and waited for when the
   * build closes.
   */
  startChecksums(stages: readonly Stage[]): void {
    const stop = new AbortController();
    const signal = this.req.signal ? AbortSignal.any([this.req.signal, stop.signal]) : stop.signal;
    const ahead = new ChecksumsAhead({
      context: this.context,
      cacheDir: this.store.contextHashDir,
      memoDir: this.store.treeMemoDir,
      escapeChar: this.scope.escapeChar,
      // A cache that explains misses, or one being written, keeps each step's listing.
      listings: (this.req.cacheImports?.length ?? 0) > 0 || this.cacheLog !== undefined,
      signal,
    });
    ahead.start(stages);
    this.ahead = ahead;
    this.onClose(async () => {
      stop.abort();
      await ahead.settled();
    });
  }

  /** The checksum startChecksums started for a COPY of these sources, if it did. */
  checksumAhead(sources: readonly string[], select: SelectOptions): Promise<AheadChecksum> | undefined {
    return this.ahead?.take(sources, select);
  }

  /** Runs `f` when the build ends, however it ends. */
  onClose(f: () => void | Promise<void>): void {
    this.closers.push(f);
  }

  /** Reports why a step runs although caches were given (a `miss` event), when they were. */
  async explainMiss(state: StageState, info: StepCacheInfo): Promise<void> {
    if (!this.remote || !info.inputs || !state.slot || this.req.noCache) return;
    this.events.miss?.(await this.remote.explain(state.slot, info.inputs, info.listing));
  }

  /**
   * The layers as the store has them: pending ones (cache hits, whose files no step needed yet)
   * are downloaded and unpacked, bottom up, each checked to be the layer its chainID names.
   */
  async stored(layers: readonly StageLayer[]): Promise<LayerRecord[]> {
    // What the store has is used; the rest is fetched all at once (a few at a time), while the
    // layers below are unpacked.
    const have = await Promise.all(
      layers.map(async (l) => (isPending(l) ? (this.unpacked.get(l.chainId) ?? (await this.store.useLayer(l.chainId))) : l)),
    );
    layers.forEach((l, i) => {
      if (isPending(l) && !have[i]) l.prefetch();
    });
    const out: LayerRecord[] = [];
    for (const [i, l] of layers.entries()) {
      if (!isPending(l)) {
        out.push(l);
        continue;
      }
      let rec = have[i];
      if (!rec) {
        const { CacheContentError } = await import('../cache/errors.js');
        try {
          rec = await this.store.applyLayer(await l.layer.compressed(), out.at(-1));
        } catch (err) {
          this.checkAborted();
          throw new CacheContentError(`layer ${l.diffId} from a cache could not be read: ${(err as Error).message}`, { cause: err });
        }
        if (rec.chainId !== l.chainId)
          throw new CacheContentError(`a cache's blob for layer ${l.diffId} holds another layer (${rec.diffId})`);
        if (l.known) await this.store.rememberBlob(l.diffId, l.known);
      }
      this.unpacked.set(l.chainId, rec);
      out.push(rec);
    }
    return out;
  }

  /** The stage's layers, stored (see stored); the state keeps the stored records from now on. */
  async storedStack(state: StageState): Promise<LayerRecord[]> {
    const layers = await this.stored(state.layers);
    state.layers.splice(0, layers.length, ...layers);
    return layers;
  }

  /** A scratch directory for this build (downloaded cache blobs), removed by close(). */
  scratch(): Promise<string> {
    this.scratchDir ??= this.store.tempDir('build');
    return this.scratchDir;
  }

  /** Blobs of pending layers, downloaded into the scratch directory when first read. */
  async blobFiles(): Promise<BlobFiles> {
    this.blobs ??= import('../cache/blob-files.js').then((m) => new m.BlobFiles(() => this.scratch()));
    return this.blobs;
  }

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

  /**
   * A cancellation point between steps: steps that make no layer never wait for anything, so
   * without it a run of thousands of them never lets a signal handler run (src/abort.ts).
   */
  async checkpoint(): Promise<void> {
    const turn = yieldIfBusy();
    if (turn) await turn;
    this.checkAborted();
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

  /** Ends what the build started for its steps (SSH agents, cache connections, scratch space). */
  async close(): Promise<void> {
    for (const close of this.closers.splice(0)) await close();
    if (this.sshLoaded) await (await this.sshLoaded).close();
    this.remote?.close();
    if (this.scratchDir) await rm(await this.scratchDir, { recursive: true, force: true });
  }

  /** A step starts: counted and reported. */
  announce(text: string, loc: SourceLocation, stage: string): void {
    this.checkAborted();
    this.stepIndex++;
    this.events.step?.({ index: this.stepIndex, total: this.totalSteps, text, loc, stage });
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
  return {
    ...state.draft.vars().config,
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) },
    history: [...state.history],
  };
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
