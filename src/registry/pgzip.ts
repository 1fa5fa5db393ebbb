// Parallel gzip, pigz-style: one gzip member whose deflate stream is made of independently
// compressed blocks, so that both cores compress at once on libuv's pool.
//
// The input is cut into blocks at fixed input offsets (every BLOCK_SIZE bytes), never where the
// stream's chunks happened to end, and each block is compressed with the previous block's last
// 32 KiB as its dictionary. The output therefore depends only on the input bytes, the level and
// the block size, not on the chunking or the number of threads (the push cache relies on "same
// tar, same blob digest"), and the ratio stays within a fraction of a percent of one serial
// stream, because matches still reach back across block edges.
//
// Every block ends with Z_SYNC_FLUSH (byte-aligned, not final); after the last one comes an
// empty final block, then the trailer with the crc32 of the whole input, which is computed on
// the main thread as blocks go by (zlib's crc32: ~20 ms per 100 MB).
//
// Memory is bounded by design: at most threads + 2 blocks are being compressed or waiting to be
// read, plus the one being filled; input is not read while that window is full and the reader
// has not taken the oldest block. With 1 MiB blocks and 2 cores that is 6 blocks, ~15 MB per layer.
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';
import { Limiter } from '../fs/limit.js';

export interface ParallelGzipOptions {
  /** zlib level, 0-9 or Z_DEFAULT_COMPRESSION. */
  readonly level: number;
  /** Input bytes per block; the output depends on it, so it is fixed for a given level. */
  readonly blockSize?: number;
  /** Blocks being compressed at once, at most (default: two per core, up to 4). */
  readonly threads?: number;
}

/** 1 MiB: few enough blocks that the pool's round trips cost nothing, small enough to bound memory. */
export const BLOCK_SIZE = 1 << 20;
/**
 * Blocks compressing at once: two per core (as many as libuv's pool has threads, see
 * cli/main.ts), so that a core that finishes a block finds the next one already queued rather
 * than waiting for the main thread, busy reading and hashing the tar, to hand it out (the tar's
 * file reads then wait for a pool thread now and then: measured, that costs less than an idle
 * core); at most 4, so that three layers pushed at once stay within a few tens of MB.
 */
const THREADS = Math.min(4, 2 * availableParallelism());
/** deflate's window: the most of the previous block a match can reach back into. */
const DICTIONARY = 32 * 1024;
/** An empty final block with fixed Huffman codes (BFINAL=1, BTYPE=01, end-of-block). */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** The gzip header zlib writes (mtime 0, OS Unix), with zlib's XFL for the level. */
function header(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);
}

function trailer(crc: number, size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(crc >>> 0, 0);
  b.writeUInt32LE(size % 2 ** 32, 4);
  return b;
}

/** One block as raw deflate ending on a byte boundary, compressed on libuv's pool. */
function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number): Promise<Buffer> {
  const opts: ZlibOptions = {
    level,
    finishFlush: constants.Z_SYNC_FLUSH,
    // Room for the whole block's output (incompressible data grows by a few bytes per 16 KiB),
    // so that zlib does it in one job on the pool rather than one per 16 KiB of output.
    chunkSize: block.length + (block.length >> 8) + 1024,
    ...(dictionary ? { dictionary } : {}),
  };
  return new Promise((resolve, reject) => deflateRaw(block, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

/** `input` cut into blocks of exactly `size` bytes (the last one shorter, never empty). */
async function* fixedBlocks(input: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let block = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of input) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(size - filled, chunk.length - at);
      chunk.copy(block, filled, at, at + n);
      filled += n;
      at += n;
      if (filled === size) {
        yield block;
        block = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

/**
 * The gzip member, part by part. Blocks are deflated in order of input with at most `threads` at
 * once, and at most `threads` + 2 compressing or done but not yet taken by the reader: input is
 * not read further until the oldest is taken.
 */
async function* member(input: Readable, level: number, blockSize: number, threads: number): AsyncGenerator<Buffer> {
  yield header(level);
  const slots = new Limiter(threads);
  const window = threads + 2;
  const inFlight: Promise<Buffer>[] = [];
  let crc = 0;
  let size = 0;
  let dictionary: Buffer | undefined;
  for await (const block of fixedBlocks(input, blockSize)) {
    crc = crc32(block, crc);
    size += block.length;
    const dict = dictionary;
    const job = slots.run(() => deflateBlock(block, dict, level));
    // Awaited in order below; this only keeps a failure behind a destroyed output from being
    // reported as unhandled.
    job.catch(() => undefined);
    inFlight.push(job);
    // A copy: the dictionary outlives `block`, which is otherwise dropped with its output.
    dictionary = Buffer.from(block.subarray(Math.max(0, block.length - DICTIONARY)));
    if (inFlight.length >= window) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
  yield FINAL_BLOCK;
  yield trailer(crc, size);
}

/**
 * `input` gzipped as one member, its blocks compressed in parallel. An input error fails the
 * output; destroying the output destroys the input at once (not when the input next delivers a
 * chunk, as a Readable.from() over the generator would), so reading stops.
 */
export function parallelGzip(input: Readable, opts: ParallelGzipOptions): Readable {
  const level = opts.level === constants.Z_DEFAULT_COMPRESSION ? 6 : opts.level;
  const parts = member(input, level, opts.blockSize ?? BLOCK_SIZE, Math.max(1, opts.threads ?? THREADS));
  let pumping = false;
  let wanted = false;
  // Moves parts to the output while it wants more; a read() that comes while a part is being
  // awaited (or from inside push()) is remembered in `wanted` rather than lost.
  const pump = async (): Promise<void> => {
    wanted = true;
    if (pumping) return;
    pumping = true;
    try {
      while (wanted && !output.destroyed) {
        wanted = false;
        const next = await parts.next();
        if (next.done) {
          output.push(null);
          return;
        }
        if (output.push(next.value)) wanted = true;
      }
    } catch (err) {
      output.destroy(err as Error);
    } finally {
      pumping = false;
    }
  };
  const output = new Readable({
    read: () => void pump(),
    destroy(err, cb) {
      input.destroy();
      cb(err);
    },
  });
  return output;
}
