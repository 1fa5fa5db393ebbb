// Parallel gzip, pigz-style: one gzip member whose deflate stream is made of independently
// compressed blocks, so that both cores compress at once on libuv's pool.
//
// The input is cut into blocks at fixed input offsets (every BLOCK_SIZE bytes), never where the
// stream's chunks happened to end, and each block is compressed with the previous block's last
// 32 KiB as its dictionary. The output therefore depends only on the input bytes and the level
// (the push cache relies on "same tar, same blob digest"), and the ratio stays within a fraction
// of a percent of one serial stream, because matches still reach back across block edges.
//
// Each block but the last ends with Z_SYNC_FLUSH (byte-aligned, not final); after the last one
// comes an empty final block, then the trailer with the crc32 of the whole input, which is
// computed on the main thread as blocks go by (zlib's crc32 runs at several GB/s).
//
// Memory is bounded by design: at most WINDOW blocks are being compressed or waiting to be
// read, plus the one being filled; input is not read while that window is full and the reader
// has not taken the oldest block.
import { Readable } from 'node:stream';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

export interface ParallelGzipOptions {
  /** zlib level, 0-9 or Z_DEFAULT_COMPRESSION. */
  readonly level: number;
  /** Input bytes per block; the output depends on it, so it is fixed for a given level. */
  readonly blockSize?: number;
  /** Blocks compressing or compressed but not yet read, at most. */
  readonly window?: number;
}

/** 1 MiB: few enough blocks that the pool's round trips cost nothing, small enough to bound memory. */
export const BLOCK_SIZE = 1 << 20;
/** Two cores: two blocks compressing, two more ready so that neither core waits for the reader. */
const WINDOW = 4;
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

async function* members(input: Readable, level: number, blockSize: number, window: number): AsyncGenerator<Buffer> {
  yield header(level);
  const inFlight: Promise<Buffer>[] = [];
  let crc = 0;
  let size = 0;
  let dictionary: Buffer | undefined;
  for await (const block of fixedBlocks(input, blockSize)) {
    crc = crc32(block, crc);
    size += block.length;
    const job = deflateBlock(block, dictionary, level);
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
  const parts = members(input, level, opts.blockSize ?? BLOCK_SIZE, opts.window ?? WINDOW);
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
