// The crc64 of a big file, computed on the second core. A layer's tar-split needs each file's
// CRC-64 beside the sha256 of the whole tar; on one thread a 256 MB file costs ~150 ms of
// sha256 then ~200 ms of crc64. A worker thread reads the file on its own (it was just
// written: the page cache serves it) and runs the same WebAssembly code while the main
// thread hashes the tar, so a big RUN output costs the slower of the two, not their sum.
import { Worker } from 'node:worker_threads';
import { crc64Module } from './crc64.js';

export interface FileCrc {
  readonly crc: Buffer;
  /** Bytes the worker read: the caller compares them with what it streamed. */
  readonly bytes: number;
}

interface Reply {
  readonly id: number;
  readonly state?: bigint;
  readonly bytes?: number;
  readonly error?: string;
}

/**
 * The worker's code. It runs from a string (eval) rather than a file so that it needs no
 * path: the same code serves dist/, the CLI's bundle and the TypeScript sources under test. Plain
 * JavaScript only, no imports: `require` is what an eval worker has, and it comes in as a
 * parameter, because a bundler rewrites a free `require` into a helper the worker lacks.
 */
function workerMain(load: NodeJS.Require): void {
  const { parentPort, workerData } = load('node:worker_threads');
  const fs = load('node:fs');
  const { module, tables, dataOffset, dataCap } = workerData;
  const instance = new WebAssembly.Instance(module);
  const memory = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
  memory.set(tables, 0);
  const update = instance.exports.update as (ptr: number, len: number, state: bigint) => bigint;
  parentPort.on('message', ({ id, path }: { id: number; path: string }) => {
    try {
      // O_NOFOLLOW: the layer's own file, never what a symlink swapped in would point to.
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      let state = (1n << 64n) - 1n;
      let bytes = 0;
      try {
        for (;;) {
          const n = fs.readSync(fd, memory, dataOffset, dataCap, null);
          if (n === 0) break;
          state = BigInt.asUintN(64, update(dataOffset, n, state));
          bytes += n;
        }
      } finally {
        fs.closeSync(fd);
      }
      parentPort.postMessage({ id, state, bytes });
    } catch (err) {
      parentPort.postMessage({ id, error: (err as Error).message });
    }
  });
}

let worker: Worker | null | undefined;
let nextId = 0;
const pending = new Map<number, { resolve: (r: FileCrc) => void; reject: (e: Error) => void }>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = undefined;
}

/** The worker, started on first use; null when this platform cannot run it. */
function theWorker(): Worker | null {
  if (worker !== undefined) return worker;
  const parts = crc64Module();
  if (parts === undefined) return (worker = null);
  const w = new Worker(`(${workerMain.toString()})(require)`, { eval: true, workerData: parts });
  // Idle, it must not keep the process alive; while a file is pending it must (ref below).
  w.unref();
  w.on('message', (r: Reply) => {
    const p = pending.get(r.id);
    if (p === undefined) return;
    pending.delete(r.id);
    if (pending.size === 0) w.unref();
    if (r.error !== undefined) p.reject(new Error(r.error));
    else {
      const crc = Buffer.alloc(8);
      crc.writeBigUInt64BE(~r.state! & ((1n << 64n) - 1n));
      p.resolve({ crc, bytes: r.bytes! });
    }
  });
  w.on('error', (err) => failAll(err));
  w.on('exit', (code) => failAll(new Error(`the crc64 worker exited (code ${code})`)));
  return (worker = w);
}

/**
 * The CRC-64/ISO of the file at `path` computed by the worker thread, or undefined if no
 * worker can run here (the caller then computes it itself).
 */
export function crc64OfFile(path: string): Promise<FileCrc> | undefined {
  const w = theWorker();
  if (w === null) return undefined;
  const id = nextId++;
  return new Promise<FileCrc>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, path });
  });
}
