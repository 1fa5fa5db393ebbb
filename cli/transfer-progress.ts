// Renders byte transfers (save, load, pull, push). On a terminal: one ora spinner whose text
// holds a Docker-style bar per transfer in flight, with a persisted line when one ends.
// Otherwise: one plain `<id>: <status>` line when a transfer starts and one when it ends, as
// docker prints them when its output is not a terminal. save and load render on stderr, so
// that stdout stays free for the archive or for the result lines scripts read; pull and push
// render on stdout, as docker does.
import type { Ora } from 'ora';
import type { TransferProgress } from '../src/progress.js';
import { usageError } from './common.js';
import { humanSize } from './format.js';

export type TransferMode = 'auto' | 'plain' | 'tty' | 'quiet';

export interface TransferOutput {
  readonly progress: TransferProgress;
  /** A line of its own (e.g. `Digest: ...`), printed above the bars; nothing in quiet mode. */
  line(text: string): void;
  /** Stops the spinner; call on success and on failure, before printing anything else. */
  finish(): void;
}

/** The mode from `--progress` and `--quiet`; quiet wins. */
export function transferMode(progress: string | undefined, quiet?: boolean): TransferMode {
  if (quiet) return 'quiet';
  const mode = progress ?? 'auto';
  if (mode !== 'auto' && mode !== 'plain' && mode !== 'tty')
    throw usageError(`invalid --progress ${JSON.stringify(mode)}: use auto, plain or tty`);
  return mode;
}

interface Active {
  readonly what: string;
  readonly total: number | undefined;
  bytes: number;
}

const BAR_WIDTH = 50;

/** Docker's progress bar: `[=====>      ]  1.2MB/3.4MB`. */
function bar(bytes: number, total: number | undefined): string {
  if (total === undefined || total <= 0) return humanSize(bytes);
  const filled = Math.max(0, Math.min(BAR_WIDTH, Math.floor((bytes / total) * BAR_WIDTH)));
  return `[${'='.repeat(filled)}>${' '.repeat(BAR_WIDTH - filled)}]  ${humanSize(bytes)}/${humanSize(total)}`;
}

export async function transferOutput(mode: TransferMode, stream: NodeJS.WriteStream = process.stderr): Promise<TransferOutput> {
  if (mode === 'quiet') return { progress: { start() {}, advance() {}, done() {} }, line() {}, finish() {} };
  // A terminal that reports no width (some ptys) would make ora's line counting go wrong.
  const tty = mode === 'tty' || (mode === 'auto' && stream.isTTY === true && (stream.columns ?? 0) > 0);
  const write = (text: string): void => void stream.write(`${text}\n`);
  if (!tty) {
    return {
      progress: { start: (id, what) => write(`${id}: ${what}`), advance() {}, done: (id, note) => write(`${id}: ${note}`) },
      line: write,
      finish() {},
    };
  }

  const ora = (await import('ora')).default;
  const active = new Map<string, Active>();
  let spinner: Ora | undefined;
  const text = (): string => [...active].map(([id, a]) => `${id}: ${a.what} ${bar(a.bytes, a.total)}`).join('\n');
  /** Prints a line above the spinner and redraws it, or stops it once nothing is in flight. */
  const line = (out: string): void => {
    spinner?.clear();
    write(out);
    if (!spinner) return;
    if (active.size === 0) {
      spinner.stop();
      spinner = undefined;
    } else {
      spinner.text = text();
      spinner.render();
    }
  };
  return {
    progress: {
      start(id, what, total) {
        active.set(id, { what, total, bytes: 0 });
        if (spinner) spinner.text = text();
        else spinner = ora({ text: text(), stream, discardStdin: false }).start();
      },
      advance(id, bytes) {
        const a = active.get(id);
        if (!a) return;
        a.bytes = Math.max(0, a.bytes + bytes); // a restarted transfer reports what it threw away
        // ora repaints on its own timer; setting the text is cheap.
        if (spinner) spinner.text = text();
      },
      done(id, note) {
        active.delete(id);
        line(`${id}: ${note}`);
      },
    },
    line,
    finish() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}
