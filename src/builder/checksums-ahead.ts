// The COPY checksums of a build, started with it. A COPY from the build context needs its
// sources' checksum for its cache key before it can do anything, and nothing before it in the
// build changes what that checksum is: the context is fixed for the build, and a source written
// without variables, quotes or escapes names the same files whatever the stage's ARGs and ENVs
// become. So those checksums run while the cache sources load, the base image is resolved and
// pulled and the steps before them run (a RUN leaves a core idle while it waits), and the step
// finds its checksum done. BuildKit gets the same overlap by solving a graph whose context sources load on their own.
//
// Only what a step would compute the same way is started: COPY (not ADD, whose URLs and git
// sources are fetched under the step's own rules), from the build context (not --from), with
// no heredoc-only source list. A checksum that fails is reported by its step, as before; one
// whose step never runs (an earlier step failed) is waited for when the build closes.
import { selectionOf, type BuildContext, type SelectOptions } from '../context/index.js';
import type { Digest } from '../digest.js';
import type { CopyStep, Stage } from '../parse/plan.js';
import { sourcesChecksum } from './checksum.js';
import { parseGitRef } from './git-ref.js';
import { isUrlSource } from './remote.js';

/** A checksum and, when the build keeps them, the listing it was computed over. */
export interface AheadChecksum {
  readonly digest: Digest;
  readonly listing?: string;
}

export interface ChecksumsAheadOptions {
  readonly context: BuildContext;
  readonly cacheDir: string;
  readonly memoDir: string;
  readonly escapeChar: string;
  /** Whether the steps keep their listings (a cache that explains misses, or one being written). */
  readonly listings: boolean;
  readonly signal?: AbortSignal;
}

export class ChecksumsAhead {
  private readonly started = new Map<string, Promise<AheadChecksum>>();

  constructor(private readonly opts: ChecksumsAheadOptions) {}

  /**
   * Starts the checksums of every qualifying COPY of `stages`, one after another in the order
   * the steps come (the first needed is the first done; one at a time, as the steps would).
   */
  start(stages: readonly Stage[]): void {
    let previous: Promise<unknown> = Promise.resolve();
    for (const step of stages.flatMap((s) => s.steps)) {
      if (step.kind !== 'COPY' || !this.qualifies(step)) continue;
      const key = keyOf(step.sources, step);
      if (this.started.has(key)) continue;
      const running = previous.then(() => this.compute(step));
      previous = running.catch(() => undefined);
      // Reported by the step that takes it; if none does, settled() waits for it.
      running.catch(() => undefined);
      this.started.set(key, running);
    }
  }

  /** The checksum started for these sources and selection, if one was. */
  take(sources: readonly string[], select: SelectOptions): Promise<AheadChecksum> | undefined {
    return this.started.get(keyOf(sources, select));
  }

  /** Resolves when every started checksum has finished, however it finished. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.started.values());
  }

  private qualifies(step: CopyStep): boolean {
    if (step.from !== undefined || step.sources.length === 0) return false;
    const { escapeChar } = this.opts;
    // As written is as used: nothing for the stage's expansion to change, no URL or git source.
    return step.sources.every((s) => !/[$'"]/.test(s) && !s.includes(escapeChar) && !isUrlSource(s) && !parseGitRef(s));
  }

  private async compute(step: CopyStep): Promise<AheadChecksum> {
    const { context, cacheDir, memoDir, listings, signal } = this.opts;
    let listing: string | undefined;
    const digest = await sourcesChecksum(context, step.sources, {
      cacheDir,
      memoDir,
      isAdd: false,
      select: selectionOf(step),
      ...(signal ? { signal } : {}),
      ...(listings ? { onListing: (text: string) => (listing = text) } : {}),
    });
    return { digest, ...(listing !== undefined ? { listing } : {}) };
  }
}

/** The sources and the selection that decide a checksum: equal keys, equal checksums. */
function keyOf(sources: readonly string[], select: SelectOptions): string {
  return JSON.stringify([sources, select.exclude ?? [], select.parents === true]);
}
