// Renders byte transfers (save, load; pull and push can use it too) on stderr, so that stdout
// stays free for the archive or for the result lines scripts read. On a terminal: one ora
// spinner whose text holds a Docker-style bar per active transfer, and a persisted line when
// one ends. Otherwise: one plain line when a transfer starts and one when it ends.
import type { Ora } from 'ora';
import type { TransferProgress } from '../src/progress.js';
import { usageError } from './common.js';
import { humanSize } from './format.js';

export type TransferProgressMode = 'auto' | 'plain' | 'tty' | 'quiet';

export interface TransferOutput {
  readonly progress: TransferProgress;
  /** Stops the spinner; call on success and on failure. */
  finish(): void;
}

export function parseProgressMode(v: string | undefined): TransferProgressMode {
  const mode = v ?? 'auto';
  if (mode !== 'auto' && mode !== 'plain' && mode !== 'tty') throw usageError(`invalid --progress ${JSON.stringify(mode)}: use auto, plain or tty`);
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

export async function transferOutput(mode: TransferProgressMode, stream: NodeJS.WriteStream = process.stderr): Promise<TransferOutput> {
  if (mode === 'quiet') return { progress: { start() {}, advance() {}, done() {} }, finish() {} };
  const tty = mode === 'tty' || (mode === 'auto' && stream.isTTY === true);
  if (!tty) {
    return {
      progress: {
        start: (id, what, total) => void stream.write(`${id}: ${what}${total !== undefined ? ` (${humanSize(total)})` : ''}\n`),
        advance() {},
        done: (id, note) => void stream.write(`${id}: ${note}\n`),
      },
      finish() {},
    };
  }

  const ora = (await import('ora')).default;
  const active = new Map<string, Active>();
  let spinner: Ora | undefined;
  const text = (): string => [...active].map(([id, a]) => `${id}: ${a.what} ${bar(a.bytes, a.total)}`).join('\n');
  return {
    progress: {
      start(id, what, total) {
        active.set(id, { what, total, bytes: 0 });
        if (spinner) spinner.text = text();
        else spinner = ora({ text: text(), stream }).start();
      },
      advance(id, bytes) {
        const a = active.get(id);
        if (!a) return;
        a.bytes += bytes;
        // ora repaints on its own timer; setting the text is cheap.
        if (spinner) spinner.text = text();
      },
      done(id, note) {
        active.delete(id);
        spinner?.clear();
        stream.write(`${id}: ${note}\n`);
        if (!spinner) return;
        if (active.size === 0) {
          spinner.stop();
          spinner = undefined;
        } else {
          spinner.text = text();
          spinner.render();
        }
      },
    },
    finish() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}
