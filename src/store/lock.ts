// The store lock: one flock(2) on `<root>/lock`, shared by every tsbuild process using the root.
//
// Why flock and not a lock file holding a PID: a PID lock outlives a killed holder, and taking
// over a stale one (read it, see the holder is dead, replace it) races with a second process
// doing the same; flock belongs to an open file, and the kernel drops it the moment its holder
// dies, however it dies. Node has no flock, so the native helper's `lock` subcommand holds it:
// one helper process per store, started on first use, answering "ok" to each request on a pipe
// (native/helper/lock.c). When tsbuild exits or is killed, the pipe closes and the helper exits.
//
// The lock is held exclusively only for short critical sections (publishing a layer, storing
// an image, rewriting repositories.json, unpublishing what rmi and prune delete, repairing after
// a dead process). Readers take no lock: every file is published by an atomic rename. Within one
// process the sections queue behind each other, and a section may call code that takes the lock
// again (the same async context already holds it: AsyncLocalStorage tells).
import { spawn, type ChildProcess } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Readable, Writable } from 'node:stream';
import { helperPath } from '../runtime/binary.js';
import { TsbuildError } from '../errors.js';

type Unrefable = { ref?(): void; unref?(): void };

/**
 * One `tsbuild-helper lock FILE` process and its request pipe: the flock is the helper's, and
 * dies with it. Requests are answered in order; `t` may be answered `busy`.
 */
export class LockProcess {
  private child: ChildProcess | undefined;
  private waiting: { resolve(answer: 'ok' | 'busy'): void; reject(err: Error): void } | undefined;
  private buffered = '';
  private stderr = '';
  private failure: Error | undefined;

  constructor(readonly file: string) {}

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(helperPath(), ['lock', '--', this.file], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.buffered += chunk;
      while (this.buffered.includes('\n')) {
        const i = this.buffered.indexOf('\n');
        const line = this.buffered.slice(0, i);
        this.buffered = this.buffered.slice(i + 1);
        const w = this.waiting;
        this.waiting = undefined;
        if (line === 'ok' || line === 'busy') w?.resolve(line);
        else w?.reject(new TsbuildError(`lock ${this.file}: unexpected answer from tsbuild-helper: ${line}`));
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (this.stderr += chunk));
    const broken = (why: string): void => {
      if (this.child !== child) return; // closed on purpose
      this.failure = new TsbuildError(`lock ${this.file}: ${this.stderr.trim().split('\n').at(-1) || why}`);
      this.child = undefined;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.failure);
    };
    child.on('error', (err) => broken(`cannot run tsbuild-helper: ${err.message} (run \`npm run build:helper\`)`));
    child.on('exit', (code, signal) => broken(`tsbuild-helper lock exited (${signal ?? `status ${code}`})`));
    // Writing to a helper that died raises EPIPE here; the exit handler reports it.
    child.stdin!.on('error', () => undefined);
    this.child = child;
    this.idle(child);
    return child;
  }

  /** Between requests the helper must not keep the process alive. */
  private idle(child: ChildProcess): void {
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (Unrefable | null)[]) s?.unref?.();
  }

  private busy(child: ChildProcess): void {
    child.ref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (Unrefable | null)[]) s?.ref?.();
  }

  /** x: exclusive, s: shared, u: release (each waits); t: exclusive if free, else `busy`. */
  request(op: 'x' | 's' | 'u' | 't'): Promise<'ok' | 'busy'> {
    if (this.failure) return Promise.reject(this.failure);
    const child = this.start();
    this.busy(child);
    return new Promise<'ok' | 'busy'>((resolve, reject) => {
      this.waiting = { resolve, reject };
      (child.stdin as Writable).write(`${op}\n`);
    }).finally(() => {
      if (this.child) this.idle(this.child);
    });
  }

  /** Ends the helper, and with it any lock it holds. */
  close(): void {
    const child = this.child;
    this.child = undefined;
    (child?.stdin as Writable | undefined)?.end();
    (child?.stdout as Readable | undefined)?.destroy();
  }
}

export class StoreLock {
  private readonly process: LockProcess;
  private tail: Promise<void> = Promise.resolve();
  private readonly holder = new AsyncLocalStorage<StoreLock>();

  constructor(readonly file: string) {
    this.process = new LockProcess(file);
  }

  /** Runs `fn` holding the lock exclusively. Re-entrant within `fn`'s async context. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.holder.getStore() === this) return fn();
    const before = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((r) => (done = r));
    try {
      await before;
      await this.process.request('x');
      try {
        return await this.holder.run(this, fn);
      } finally {
        await this.process.request('u');
      }
    } finally {
      done();
    }
  }

  /** Whether the calling async context holds the lock. */
  get held(): boolean {
    return this.holder.getStore() === this;
  }

  /** Ends the helper (and with it any lock held): for tests that open many stores in one process. */
  close(): void {
    this.process.close();
  }
}
