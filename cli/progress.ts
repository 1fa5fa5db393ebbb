// Renders build events: a spinner per step on a terminal (ora), plain lines otherwise.
import { Writable } from 'node:stream';
import type { Ora } from 'ora';
import type { BuildEvents } from '../src/builder/request.js';
import { hex } from '../src/digest.js';
import { humanSize } from './format.js';
import { oneLine } from './terminal.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'quiet';

export interface BuildOutput {
  readonly events: BuildEvents;
  /** RUN output goes through these so that the spinner gets out of the way first. */
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Ends the current step's line. */
  finish(): void;
}

/** A Writable that runs `before` and then passes the bytes on to `to`. */
function relay(before: () => void, to: NodeJS.WriteStream | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!to) return cb();
      before();
      to.write(chunk, (err) => cb(err ?? null));
    },
  });
}

/** `to`: where progress and RUN output go; stderr when stdout carries a result (build -o -). */
export async function buildOutput(mode: ProgressMode, to: NodeJS.WriteStream = process.stdout): Promise<BuildOutput> {
  const quiet = mode === 'quiet';
  const tty = !quiet && (mode === 'tty' || (mode === 'auto' && to.isTTY === true));
  const ora = tty ? (await import('ora')).default : undefined;
  let spinner: Ora | undefined;
  let stepText = '';
  const settle = (suffix?: string): void => {
    if (spinner) {
      spinner.stopAndPersist({ symbol: '•', text: suffix ? `${stepText} ${suffix}` : stepText });
      spinner = undefined;
    }
  };
  const line = (s: string): void => {
    if (!quiet) to.write(`${s}\n`);
  };
  const events: BuildEvents = {
    step: (e) => {
      settle();
      stepText = oneLine(`STEP ${e.index}/${e.total}: ${e.text}`);
      if (ora) spinner = ora({ text: stepText, stream: to }).start();
      else line(stepText);
    },
    cached: () => (spinner ? settle('CACHED') : line('--> CACHED')),
    layer: (e) => {
      const msg = `--> ${hex(e.diffId).slice(0, 12)} (${humanSize(e.size)})`;
      if (spinner) settle(msg);
      else line(msg);
    },
    miss: (reason) => {
      settle();
      line(oneLine(`--> cache miss: ${reason}`));
    },
    pull: (name) => {
      settle();
      line(oneLine(`--> pulling ${name}`));
    },
    trigger: (t) => {
      settle();
      line(oneLine(`--> ONBUILD ${t}`));
    },
    warning: (m) => {
      settle();
      process.stderr.write(`${oneLine(m)}\n`);
    },
  };
  return {
    events,
    stdout: relay(settle, quiet ? undefined : to),
    stderr: relay(settle, process.stderr),
    finish: () => settle(),
  };
}
