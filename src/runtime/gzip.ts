// gzip through `tsbuild-helper gzip` (native/helper/gzip.c): libdeflate on every core, in blocks
// cut at fixed input offsets, one gzip member per block. The bytes depend only on the input, the
// level and the block size (the helper's header says why and what the format is).
//
// A stream in, a stream out, and the helper's exit in between (filter.ts). A stored layer goes
// in as pieces instead, its big files named rather than read (helperGzipPieces).
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import type { LayerPieces, TarPiece } from '../image/image.js';
import { failed, helperPath, notRunning } from './binary.js';
import { filterThrough } from './filter.js';

export interface GzipOptions {
  /** libdeflate level, 1-12; 1-9 mean what zlib's do. */
  readonly level: number;
  /** Input bytes per member; the output depends on it, so it is fixed for a given level. */
  readonly blockSize?: number;
  /** Compressing threads (default: one per core, at most 4). The output does not depend on it. */
  readonly threads?: number;
}

/** 1 MiB: the ratio is within 0.3 % of 4 MiB blocks on layer tars, for a quarter of the memory. */
export const GZIP_BLOCK_SIZE = 1 << 20;

export function helperGzip(input: Readable, opts: GzipOptions): Readable {
  const file = helperPath();
  const args = gzipArgs(opts);
  const command = [file, ...args];
  return filterThrough(input, file, args, {
    notRunning: (result, stderr) => notRunning(command, result, stderr),
    failed: (exitCode, stderr) => failed({ command, exitCode, stderr }),
  });
}

/**
 * A layer gzipped from its pieces: the helper reads the big files itself (its --framed input),
 * so that their bytes go from the page cache into its blocks instead of through Node's reads, a
 * pipe and Node's sha256 (W7's push: ~0.3 s of CPU of ~4.8 s), and it hashes the tar it made
 * (--digest-fd). The output ends only once `layer.verify` has passed that digest; the same
 * blob as helperGzip of the layer's tar.
 */
export function helperGzipPieces(layer: LayerPieces, opts: GzipOptions): Readable {
  const file = helperPath();
  const args = [...gzipArgs(opts), '--framed', '--digest-fd', '3'];
  const command = [file, ...args];
  return filterThrough(
    Readable.from(frames(layer.pieces), { objectMode: false }),
    file,
    args,
    {
      notRunning: (result, stderr) => notRunning(command, result, stderr),
      // A file that changed under the helper is named as the tar's reader would name it.
      failed: async (exitCode, stderr) => (await layer.diagnose()) ?? failed({ command, exitCode, stderr }),
    },
    {
      check: async (report) => {
        const digest = /^(sha256:[0-9a-f]{64})\n$/.exec(report)?.[1];
        if (digest === undefined) return new TsbuildError(`${file} gzip reported no digest of its input (${JSON.stringify(report)})`);
        await layer.verify(digest as Digest);
        return undefined;
      },
    },
  );
}

function gzipArgs(opts: GzipOptions): string[] {
  const threads = opts.threads ?? Math.min(4, availableParallelism());
  return ['gzip', '--level', String(opts.level), '--block-size', String(opts.blockSize ?? GZIP_BLOCK_SIZE), '--threads', String(threads)];
}

/** Bytes in hand gathered into one 'B' frame up to this size: fewer, larger writes to the pipe. */
const FRAME_BYTES = 256 * 1024;

/** The helper's --framed input (native/helper/gzip.c): bytes as 'B' frames, files as 'F' frames naming them. */
async function* frames(pieces: AsyncIterable<TarPiece>): AsyncGenerator<Buffer, void, undefined> {
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  const gathered = (): Buffer => {
    const frame = Buffer.concat([frameHeader(0x42, heldBytes, 0), ...held]);
    held = [];
    heldBytes = 0;
    return frame;
  };
  for await (const piece of pieces) {
    if (piece instanceof Uint8Array) {
      if (piece.length === 0) continue;
      held.push(piece);
      heldBytes += piece.length;
      if (heldBytes >= FRAME_BYTES) yield gathered();
      continue;
    }
    if (heldBytes > 0) yield gathered();
    yield Buffer.concat([frameHeader(0x46, piece.size, piece.path.length), piece.path]);
  }
  if (heldBytes > 0) yield gathered();
}

/** A frame's 17-byte header: its type, then two little-endian 64-bit numbers. */
function frameHeader(type: number, a: number, b: number): Buffer {
  const h = Buffer.alloc(17);
  h[0] = type;
  h.writeBigUInt64LE(BigInt(a), 1);
  h.writeBigUInt64LE(BigInt(b), 9);
  return h;
}
