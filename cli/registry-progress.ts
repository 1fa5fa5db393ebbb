// Renders pull/push progress: on a terminal, one spinner summing up the transfers in flight
// (ora) above the per-layer lines; otherwise plain `<id>: <status>` lines, as docker prints them
// when its output is not a terminal.
import type { Ora } from 'ora';
import type { TransferProgress } from '../src/progress.js';
import { humanSize } from './format.js';
import { usageError } from './common.js';

export type TransferMode = 'auto' | 'plain' | 'tty' | 'quiet';

export interface TransferOutput {
  readonly progress: TransferProgress;
  /** A line of its own (e.g. `Digest: ...`); nothing in quiet mode. */
  line(text: string): void;
  /** Stops the spinner; call before printing anything else. */
  finish(): void;
}

export function transferMode(progress: string | undefined, quiet: boolean | undefined): TransferMode {
  if (quiet) return 'quiet';
  const mode = progress ?? 'auto';
  if (mode !== 'auto' && mode !== 'plain' && mode !== 'tty') throw usageError(`invalid --progress ${mode}: use auto, plain or tty`);
  return mode;
}

export async function transferOutput(mode: TransferMode, verb: string): Promise<TransferOutput> {
  const quiet = mode === 'quiet';
  // A terminal that reports no width (some ptys) would make ora's line counting go wrong.
  const tty = !quiet && (mode === 'tty' || (mode === 'auto' && process.stdout.isTTY === true)) && (process.stdout.columns ?? 0) > 0;
  const active = new Map<string, { moved: number; total?: number }>();
  let spinner: Ora | undefined;
  if (tty) {
    const ora = (await import('ora')).default;
    spinner = ora({ text: verb, stream: process.stdout, discardStdin: false });
  }
  const summary = (): string => {
    let moved = 0;
    let total = 0;
    for (const t of active.values()) {
      moved += t.moved;
      total += t.total ?? t.moved;
    }
    return `${verb} ${active.size} layer${active.size === 1 ? '' : 's'}: ${humanSize(moved)}${total > moved ? `/${humanSize(total)}` : ''}`;
  };
  const line = (text: string): void => {
    if (quiet) return;
    if (!spinner) {
      process.stdout.write(`${text}\n`);
      return;
    }
    spinner.clear();
    process.stdout.write(`${text}\n`);
    if (active.size) {
      spinner.text = summary();
      if (!spinner.isSpinning) spinner.start();
      else spinner.render();
    } else if (spinner.isSpinning) spinner.stop();
  };
  const progress: TransferProgress = {
    start(id, what, total) {
      active.set(id, { moved: 0, ...(total !== undefined ? { total } : {}) });
      line(`${id}: ${what}`);
    },
    advance(id, bytes) {
      const t = active.get(id);
      if (!t) return;
      t.moved = Math.max(0, t.moved + bytes); // a restarted transfer reports what it threw away
      if (spinner) spinner.text = summary();
    },
    done(id, note) {
      active.delete(id);
      line(`${id}: ${note}`);
    },
  };
  return { progress, line, finish: () => spinner?.stop() };
}
