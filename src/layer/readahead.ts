// Ordered read-ahead. A layer is mostly small files, and each async fs call costs a round trip
// through libuv's thread pool; reading one file at a time leaves that pool idle. Starting the
// next few small reads while the current chunk is being hashed or written keeps the pool busy
// without giving up the tar's order; memory stays bounded by `depth` small files.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * Yields fn(item) for each item of source, in order, with up to `depth` calls started ahead of
 * the consumer. A failure surfaces when the consumer reaches the failed item; stopping early
 * lets calls already started finish on their own.
 */
export async function* mapAhead<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T) => Promise<R>,
  depth: number,
): AsyncGenerator<R, void, undefined> {
  const inFlight: Promise<R>[] = [];
  for await (const item of source) {
    const p = fn(item);
    // Handled when its turn comes; until then, keep Node from treating a rejection as unhandled.
    p.catch(() => undefined);
    inFlight.push(p);
    if (inFlight.length > depth) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
}

/** Files up to this size are read whole, ahead of time; bigger ones are streamed when their turn comes. */
export const SMALL_FILE = 64 * 1024;
export const READ_AHEAD = 32;

/**
 * Up to `size + 1` bytes of a file, so a caller expecting `size` can tell "grew" from "exact".
 * O_NOFOLLOW: the layer's own files are read, never what a symlink swapped in would point to.
 */
export async function readSmallFile(path: string | Buffer, size: number): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got === buf.length) break;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/**
 * readSmallFile, synchronously: open, read and close on the calling thread. For files of a
 * few KiB in the page cache the syscalls take microseconds, while each async call costs a
 * round trip through libuv's pool and a promise; see write.ts for where it pays.
 */
export function readSmallFileSync(path: string | Buffer, size: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
      if (got === buf.length) break;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
