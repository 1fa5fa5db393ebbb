// Renders a build's events in one of three views: plain lines (`STEP n/N: ...`, each step's
// duration and the build's total), the live view of a terminal (progress-tty.ts, BuildKit's), or
// one JSON object per line (progress-json.ts, buildx's rawjson). The engine only says when a
// step starts; this file times the steps (a step ends when the next starts or the build returns)
// and hands each view the same calls, so the views hold no bookkeeping of their own.
import { Writable } from 'node:stream';
import type { BuildEvents } from '../src/builder/request.js';
import { hex, type Digest } from '../src/digest.js';
import { humanSize } from './format.js';
import { oneLine } from './terminal.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'rawjson' | 'quiet';
export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'plain', 'tty', 'rawjson', 'quiet'];

/** A step as it started. */
export interface StepStart {
  readonly index: number;
  readonly total: number;
  /** The instruction as written (`RUN make`), not escaped: each view escapes what it shows. */
  readonly text: string;
  /** The stage's name, or its index. */
  readonly stage: string;
  readonly file: string;
  readonly line: number;
  /** Date.now() when it started. */
  readonly startedAt: number;
}

/** How the build ended. */
export interface BuildEnd {
  readonly durationMs: number;
  /** Steps that ended, and how many of them reused the cache. */
  readonly steps: number;
  readonly cached: number;
  readonly imageId?: Digest;
  /** The failure, and the step that was running then. */
  readonly error?: { readonly message: string; readonly step?: StepStart };
}

/** What a view is told, in order: a step starts, things happen in it, it ends; the build ends. */
export interface ProgressView {
  start(step: StepStart): void;
  /** The running step reused a cached layer (a FROM with ONBUILD triggers may say it again). */
  cached(): void;
  /** The running step made a layer. */
  layer(diffId: Digest, size: number): void;
  /** A line about the running step: why it missed the cache, a pull, an ONBUILD trigger. */
  note(text: string): void;
  /** Bytes the running step's command wrote; a promise to wait for before more (a slow terminal). */
  output(stream: 'stdout' | 'stderr', chunk: Buffer): Promise<void> | void;
  /** `cached`: the step reused a layer and made none. */
  end(step: StepStart, durationMs: number, cached: boolean): void;
  warning(message: string): void;
  close(end: BuildEnd): void;
}

export interface BuildOutput {
  readonly events: BuildEvents;
  /** RUN output goes through these, to the view. */
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** The build stored (or pushed) this image: the last step ends, the total is shown. */
  done(imageId: Digest): void;
  /** The build failed with this error (shown by the caller too: views add what they know). */
  failed(err: unknown): void;
}

/** `1.2s`, as BuildKit shows a step's time; `1m02.5s` from a minute on. */
export function seconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${(s - m * 60).toFixed(1).padStart(4, '0')}s`;
}

/**
 * `to`: where progress goes (stderr when stdout carries a result, build -o -). rawjson always
 * goes to stderr, as buildx's does; quiet shows nothing.
 */
export async function buildOutput(mode: ProgressMode, to: NodeJS.WriteStream = process.stdout): Promise<BuildOutput> {
  let view: ProgressView;
  if (mode === 'quiet') view = quietView();
  else if (mode === 'rawjson') view = new (await import('./progress-json.js')).JsonView(process.stderr);
  else if (mode === 'tty' || (mode === 'auto' && to.isTTY === true)) view = new (await import('./progress-tty.js')).TtyView(to);
  else view = plainView(to);
  return track(view);
}

/** Times the steps of `events` and tells `view`. */
export function track(view: ProgressView): BuildOutput {
  const began = Date.now();
  let running: { step: StepStart; cached: boolean; layers: number } | undefined;
  let steps = 0;
  let cachedSteps = 0;
  const endStep = (): void => {
    if (!running) return;
    const { step, cached, layers } = running;
    running = undefined;
    const hit = cached && layers === 0;
    steps++;
    if (hit) cachedSteps++;
    view.end(step, Date.now() - step.startedAt, hit);
  };
  const events: BuildEvents = {
    step: (e) => {
      endStep();
      const step = {
        index: e.index,
        total: e.total,
        text: e.text,
        stage: e.stage,
        file: e.loc.file,
        line: e.loc.line,
        startedAt: Date.now(),
      };
      running = { step, cached: false, layers: 0 };
      view.start(step);
    },
    cached: () => {
      if (running) running.cached = true;
      view.cached();
    },
    layer: (e) => {
      if (running) running.layers++;
      view.layer(e.diffId, e.size);
    },
    miss: (reason) => view.note(`cache miss: ${reason}`),
    pull: (name) => view.note(`pulling ${name}`),
    trigger: (t) => view.note(`ONBUILD ${t}`),
    warning: (m) => view.warning(m),
  };
  const relay = (stream: 'stdout' | 'stderr'): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        Promise.resolve(view.output(stream, chunk)).then(() => cb(), cb);
      },
    });
  let closed = false;
  const close = (end: Omit<BuildEnd, 'durationMs' | 'steps' | 'cached'>): void => {
    if (closed) return;
    closed = true;
    const step = running?.step;
    // A failed step did not end: it is shown as the one that failed.
    if (end.error) running = undefined;
    else endStep();
    const error = end.error ? { ...end.error, ...(step ? { step } : {}) } : undefined;
    view.close({ durationMs: Date.now() - began, steps, cached: cachedSteps, ...end, ...(error ? { error } : {}) });
  };
  return {
    events,
    stdout: relay('stdout'),
    stderr: relay('stderr'),
    done: (imageId) => close({ imageId }),
    failed: (err) => close({ error: { message: err instanceof Error ? err.message : String(err) } }),
  };
}

/** Resolves once `to` took the bytes: a command's output waits for a slow terminal, as it did when it was piped straight there. */
function write(to: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => to.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** The most of a failed step's output `-q` keeps to show: its last bytes. */
const QUIET_KEEP = 256 * 1024;

/**
 * `-q`: stdout is the image ID's alone, and a command's output is not shown while it runs; a
 * failed step's is shown when the build fails (its last 256 KiB), before the error, as
 * `docker build -q` prints what it held back. Warnings still go to stderr.
 */
function quietView(): ProgressView {
  let held: Buffer[] = [];
  let bytes = 0;
  const drop = (): void => {
    held = [];
    bytes = 0;
  };
  return {
    start: drop,
    cached() {},
    layer() {},
    note() {},
    output: (_stream, chunk) => {
      held.push(chunk);
      bytes += chunk.length;
      while (bytes - held[0]!.length >= QUIET_KEEP) bytes -= held.shift()!.length;
    },
    end: drop,
    warning: (m) => void process.stderr.write(`${oneLine(m)}\n`),
    close(end) {
      if (!end.error || bytes === 0) return;
      const out = Buffer.concat(held);
      const shown = out.subarray(Math.max(0, out.length - QUIET_KEEP));
      process.stderr.write(shown);
      if (shown.at(-1) !== 0x0a) process.stderr.write('\n');
    },
  };
}

/**
 * Podman's plain lines, each step's time after it, and the total: `STEP 2/5: RUN make`, the
 * command's output as it comes, `--> 3f1c0e9a2b11 (6B)` or `--> CACHED`, `--> done in 1.2s`;
 * at the end `Built in 3.4s (5 steps, 2 cached)`.
 */
function plainView(to: NodeJS.WriteStream): ProgressView {
  // A command's last line without a newline is ended before the next line of ours.
  let open = false;
  const line = (s: string): void => {
    to.write(open ? `\n${s}\n` : `${s}\n`);
    open = false;
  };
  return {
    start: (s) => line(oneLine(`STEP ${s.index}/${s.total}: ${s.text}`)),
    cached: () => line('--> CACHED'),
    layer: (diffId, size) => line(`--> ${hex(diffId).slice(0, 12)} (${humanSize(size)})`),
    note: (text) => line(oneLine(`--> ${text}`)),
    output: (stream, chunk) => {
      if (stream === 'stderr') return write(process.stderr, chunk);
      if (chunk.length) open = chunk.at(-1) !== 0x0a;
      return write(to, chunk);
    },
    end: (_s, ms) => line(`--> done in ${seconds(ms)}`),
    warning: (m) => void process.stderr.write(`${oneLine(m)}\n`),
    close: (end) => {
      if (end.error) {
        if (end.error.step) line(`--> failed after ${seconds(Date.now() - end.error.step.startedAt)}`);
        line(`Build failed after ${seconds(end.durationMs)}`);
      } else {
        line(`Built in ${seconds(end.durationMs)} (${end.steps} steps, ${end.cached} cached)`);
      }
    },
  };
}
