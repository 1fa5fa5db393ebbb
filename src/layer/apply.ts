// Layer tar -> unpacked directory (containerd's differ Apply, UnpackLayer in moby/go-archive's
// diff.go), recording the tar-split of the exact uncompressed bytes so the diffID can be
// reproduced later. The unpacking itself is extract.ts with a layer's rules (the defaults in
// extract-rules.ts, whiteouts as the snapshot driver needs them); this adds what only a layer
// has: the diffID and the tar-split.
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import type { Digest } from '../digest.js';
import { ByteReader } from './bytereader.js';
import { decompress } from './decompress.js';
import { extract } from './extract.js';
import { readTar, tarReadError } from './tarreader.js';
import { TarSplitWriter, disassemble } from './tarsplit.js';
import type { LayerDescriptor } from './types.js';
import type { OverlayXattrPrefix } from './whiteout.js';

export interface ApplyLayerOptions {
  /**
   * overlay: the target is an empty overlay upper dir; whiteouts become 0/0 char devices and
   * opaque markers the trusted.overlay.opaque xattr.
   * delete: the target already holds the parent's files (plain-directory drivers); whiteouts
   * delete what they name and opaque markers empty their directory of lower content.
   */
  readonly whiteouts: 'overlay' | 'delete';
  /** overlay: the upper dir's mount keeps its xattrs here (default trusted.overlay., as root mounts it). */
  readonly overlayXattrPrefix?: OverlayXattrPrefix;
  /** Where the tar-split of the uncompressed archive is written (atomically). */
  readonly tarSplitPath: string;
}

/**
 * Unpacks a layer tar (uncompressed, gzip, bzip2, xz or zstd) into targetDir and returns the
 * diffID and sizes of its uncompressed bytes. Refuses hostile or malformed archives with an
 * InvalidInputError naming the entry; on any error targetDir is left for the caller to delete
 * and nothing outside it has been touched.
 */
export async function applyLayer(
  tar: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  targetDir: string,
  opts: ApplyLayerOptions,
): Promise<LayerDescriptor> {
  const hash = createHash('sha256');
  let tarSize = 0;
  const uncompressed = decompress(tar as AsyncIterable<Uint8Array>);
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of uncompressed) {
      hash.update(chunk);
      tarSize += chunk.length;
      yield chunk;
    }
  };
  const src = new ByteReader(counted());
  const split = new TarSplitWriter(opts.tarSplitPath);
  try {
    // Every path below is built from the real path, so none passes through a symlink above the target.
    const root = await realpath(targetDir);
    // Duplicate paths are refused by the tar-split writer, which cannot represent them.
    const { size } = await extract(disassemble(readTar(src), split), root, {
      whiteouts: opts.whiteouts,
      ...(opts.overlayXattrPrefix !== undefined ? { opaqueXattr: `${opts.overlayXattrPrefix}opaque` } : {}),
    });
    await split.commit();
    return { diffId: `sha256:${hash.digest('hex')}` as Digest, size, tarSize };
  } catch (e) {
    await split.abort();
    await src.cancel().catch(() => undefined); // the error being thrown says more than a failed close
    throw tarReadError(e, 'layer tar', tarSize);
  }
}
