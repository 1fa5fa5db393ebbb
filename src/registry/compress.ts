// Compressing layer tars for a registry. Both compressors are run so their output depends only
// on the input (gzip: Node's zlib at a fixed level, header mtime 0; zstd: the `zstd` tool,
// single-threaded at a fixed level), which is what lets the push cache trust a recorded digest:
// the same tar compressed again gives the same blob, as long as the compressor's version is the
// same. A push that does compress again checks the digest it gets rather than assuming.
import type { Duplex, Readable } from 'node:stream';
import { createGzip, constants } from 'node:zlib';
import { execa } from 'execa';
import { TsbuildError } from '../errors.js';

export type LayerCompression = 'gzip' | 'zstd';

/** zlib's default level, as Docker's gzip writer uses (DefaultCompression). */
const GZIP_LEVEL = constants.Z_DEFAULT_COMPRESSION;
/** zstd's default level, as BuildKit uses. */
const ZSTD_LEVEL = 3;

/** A compressor that reads `input` and produces the compressed bytes. */
export function compress(input: Readable, kind: LayerCompression): Readable {
  if (kind === 'gzip') {
    const gz = createGzip({ level: GZIP_LEVEL });
    input.on('error', (err) => gz.destroy(err));
    return input.pipe(gz);
  }
  const proc = execa('zstd', [`-${ZSTD_LEVEL}`, '-T1', '-q', '-c', '--no-progress'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false } });
  const out: Duplex = proc.duplex();
  // A missing zstd is the host's problem, named with the package to install.
  proc.catch((err: { code?: string }) => {
    if (err.code === 'ENOENT') out.destroy(new TsbuildError('pushing with --compression zstd needs the zstd tool (apt-get install zstd)'));
  });
  input.on('error', (err) => out.destroy(err));
  input.pipe(out);
  return out;
}

