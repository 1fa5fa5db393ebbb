// Read buffers that a producer lends out and the last consumer gives back. A layer's tar is
// read in 1 MiB chunks, and each fresh Buffer is memory outside V8's heap that only a garbage
// collection frees; V8 starts one once tens of MB more of it exist. A 300 MB save or push so kept
// ~50 MB of dead chunks and ran a full collection every ~80 ms (W7-save's peak RSS was 145 MB).
//
// A consumer that writes a chunk out and keeps it nowhere else gives it back once the write is
// done (writeGivingBack does so), and the next read reuses it. The rules that make reuse safe:
//  - a chunk not given back is garbage as before: a consumer that may hold a chunk (a tee, a
//    buffer for retries) simply never gives it back;
//  - only the chunk exactly as lent is taken back: a piece of it, or a copy joining it with
//    others, is ignored, so a stage that splits chunks cannot have one half reused while the
//    other is still queued;
//  - a chunk is taken back once; a second giveBack of the same chunk does nothing.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** The size of every lent chunk's memory; a borrower asks for at most this many bytes. */
export const LENT_CHUNK_SIZE = 1 << 20;
/** Free chunks kept for reuse: enough for the few a pipeline has in flight. */
const KEEP = 16;

const free: ArrayBuffer[] = [];
/** The memory of every chunk out on loan, with the length it was lent at. */
const lent = new WeakMap<ArrayBuffer, number>();

/** A buffer of `size` bytes (at most LENT_CHUNK_SIZE), uninitialised, reused when one was given back. */
export function borrowChunk(size: number): Buffer {
  if (size > LENT_CHUNK_SIZE) throw new RangeError(`borrowChunk: ${size} bytes is more than ${LENT_CHUNK_SIZE}`);
  const memory = free.pop() ?? new ArrayBuffer(LENT_CHUNK_SIZE);
  lent.set(memory, size);
  return Buffer.from(memory, 0, size);
}

/** Hands back a chunk the caller is done with and holds nowhere. Anything else is ignored. */
export function giveBack(chunk: Buffer): void {
  const memory = chunk.buffer as ArrayBuffer;
  if (chunk.byteOffset !== 0 || lent.get(memory) !== chunk.length) return;
  lent.delete(memory);
  if (free.length < KEEP) free.push(memory);
}

/**
 * Writes every chunk of `source` to `dest`, with backpressure, giving each back once its write
 * has completed (the bytes are then in the kernel: a pipe, a socket, a file); then ends `dest`
 * and waits for it to finish. The first error on either side destroys `dest` and is thrown; the
 * source is closed (for await's return). What `dest` is also given in its writes is its own: a
 * Writable that keeps chunks past their write callback must not be given lent ones.
 */
export async function writeGivingBack(source: AsyncIterable<Buffer>, dest: Writable): Promise<void> {
  const done = finished(dest);
  done.catch(() => undefined); // awaited below; meanwhile not an unhandled rejection
  try {
    for await (const chunk of source) {
      if (dest.errored) throw dest.errored;
      if (dest.destroyed) await done; // throws: closed before it finished
      const more = dest.write(chunk, (err) => {
        if (!err) giveBack(chunk);
      });
      if (!more) await Promise.race([once(dest, 'drain'), done]);
    }
    dest.end();
    await done;
  } catch (err) {
    dest.destroy(err as Error);
    throw err;
  }
}
