// Bounded concurrency for filesystem work. Copying 20,000 small files one at a time leaves
// libuv's thread pool idle between calls; starting all of them at once queues 20,000 requests
// and as many open descriptors. A few dozen in flight keeps the pool busy and memory flat.
import { checkpoint } from '../abort.js';

export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private failure: { error: unknown } | undefined;

  /**
   * With a signal, every run is a cancellation point (src/abort.ts): runs whose work is
   * synchronous (small files) hand slots on through microtasks alone, and would otherwise keep a
   * signal handler from running until the whole tree is done.
   */
  constructor(
    readonly max: number,
    private readonly signal?: AbortSignal,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Limiter: max must be a positive integer, got ${max}`);
  }

  /**
   * Run `fn` when a slot is free. After any run has failed, queued and later runs are refused
   * with that first error, so a failed copy stops promptly instead of finishing the tree.
   * `fn` must not wait for other runs of the same limiter (that could take every slot).
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing run hands its slot straight to the next waiter, so `active` never overshoots.
    if (this.active < this.max) this.active++;
    else await new Promise<void>((wake) => this.waiting.push(wake));
    try {
      if (this.failure) throw this.failure.error;
      const turn = this.signal && checkpoint(this.signal);
      if (turn) await turn;
      return await fn();
    } catch (err) {
      this.failure ??= { error: err };
      throw err;
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Wait for every promise to settle, then throw the first rejection if any. Unlike Promise.all
 * this never returns while work is still running, so a caller that fails can be sure nothing
 * keeps writing into a rootfs it is about to unmount.
 */
export async function settleAll(promises: Iterable<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
