// A stored layer as a tar stream: rebuilt from its tar-split and its snapshot's files, and
// checked against its diffID while it streams. A mismatch is an error at the end of the
// stream, never a silently different layer.
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import { regenerateLayer } from '../layer/index.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { Store } from '../store/store.js';

export class DigestMismatchError extends TsbuildError {}

/** Passes bytes through and fails at the end unless their sha256 is `expected`. */
export function verifyDigest(expected: Digest, what: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const got = `sha256:${hash.digest('hex')}`;
      cb(got === expected ? null : new DigestMismatchError(`${what}: digest mismatch: expected ${expected}, got ${got}`));
    },
  });
}

/** The uncompressed layer tar, verified against the layer's diffID as it streams. */
export function openLayerTar(store: Store, layer: LayerRecord): Readable {
  const tar = regenerateLayer(store.layers.tarSplitPath(layer.chainId), store.snapshotter.fileRoot(layer.cacheId));
  const check = verifyDigest(layer.diffId, `layer ${layer.diffId}`);
  tar.on('error', (err) => check.destroy(err));
  return tar.pipe(check);
}
