// Compressing layer tars for a registry. Both compressors are run so their output depends only
// on the input (gzip: libdeflate in the native helper at a fixed level, in blocks cut at fixed
// input offsets and compressed in parallel, header mtime 0, see src/runtime/gzip.ts; zstd: the `zstd` tool at a fixed level
// in its multi-threaded mode, whose output does not depend on the number of workers), which is
// what lets the push cache trust a recorded digest: the same tar compressed again gives the same
// blob, as long as the compressor's version is the same. A push that does compress again checks
// the digest it gets rather than assuming.
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { TsbuildError } from '../errors.js';
import type { Layer } from '../image/image.js';
import { filterThrough } from '../runtime/filter.js';
import { helperGzip, helperGzipPieces } from '../runtime/gzip.js';

export type LayerCompression = 'gzip' | 'zstd';

/** zlib's default level, 6, as Docker's gzip writer uses (DefaultCompression); libdeflate's 6 is its equal. */
const GZIP_LEVEL = 6;
/**
 * zstd's default level, as BuildKit uses; two workers. -T1 and -T2 give the same bytes (zstd
 * cuts jobs by size, not by worker count), so blobs recorded before -T2 still match.
 */
const ZSTD_ARGS = ['-3', '-T2', '-q', '-c', '--no-progress'];

/**
 * Fails early, with the package to install, if the compressor is a tool the host lacks: better
 * than an error from deep inside a stream once layers are being pushed.
 */
export async function checkCompressor(kind: LayerCompression): Promise<void> {
  if (kind !== 'zstd') return;
  const r = await execa('zstd', ['--version'], { reject: false });
  if ((r as { code?: string }).code === 'ENOENT' || r.failed) {
    throw new TsbuildError('pushing with --compression zstd needs the zstd tool (apt-get install zstd)');
  }
}

/**
 * A layer's blob: compressed from its tar, or, for gzip from a layer whose files are on disk
 * (the store's), from its pieces, the helper reading the big files itself. Same bytes either way.
 */
export async function compressLayer(layer: Layer, kind: LayerCompression): Promise<Readable> {
  if (kind === 'gzip' && layer.tarPieces) return helperGzipPieces(await layer.tarPieces(), { level: GZIP_LEVEL });
  return compress(await layer.uncompressed(), kind);
}

/**
 * The compressed bytes of `input`, as a stream. An error on either side ends both: a failing
 * input (a layer whose diffID does not verify) fails the output, and an output destroyed by its
 * reader stops reading the input.
 */
export function compress(input: Readable, kind: LayerCompression): Readable {
  if (kind === 'gzip') return helperGzip(input, { level: GZIP_LEVEL });
  return filterThrough(input, 'zstd', ZSTD_ARGS, {
    notRunning: (result) =>
      new TsbuildError(
        result.code === 'ENOENT'
          ? 'pushing with --compression zstd needs the zstd tool (apt-get install zstd)'
          : `zstd ${result.signal ? `was killed by ${result.signal}` : `could not be started: ${result.originalMessage ?? result.code}`}`,
      ),
    failed: (exitCode, stderr) =>
      new TsbuildError(`zstd exited with status ${exitCode}${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`),
  });
}
