// Cancellation points for long loops. The CLI turns SIGINT and SIGTERM into an aborted
// AbortSignal (cli/signals.ts), but a signal handler runs only when Node's event loop turns: a
// loop whose awaits all settle at once (thousands of LABEL steps, small files copied with
// synchronous calls) runs on microtasks alone, so the handler never runs and the abort is never
// seen until the loop ends. A checkpoint lets the loop turn once a slice of work has taken a
// few milliseconds (so a signal is acted on within about that long), then checks the signal.
// Both return undefined when there is nothing to wait for, so a hot loop pays no await for them.
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long work may keep the event loop busy between two turns. */
const SLICE_MS = 20;

let sliceStart = performance.now();

/** A turn of the event loop to wait for, if the current slice of work has run for SLICE_MS. */
export function yieldIfBusy(): Promise<void> | undefined {
  if (performance.now() - sliceStart < SLICE_MS) return undefined;
  return nextTurn().then(() => {
    sliceStart = performance.now();
  });
}

/** A cancellation point: yieldIfBusy, then throws the signal's reason if it was aborted. */
export function checkpoint(signal: AbortSignal | undefined): Promise<void> | undefined {
  const turn = yieldIfBusy();
  if (turn) return turn.then(() => signal?.throwIfAborted());
  signal?.throwIfAborted();
  return undefined;
}
