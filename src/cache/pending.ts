// A layer a build knows by its diffID and place in a chain, but whose bytes are still elsewhere:
// in a cache's location, in a base image's registry, or (COPY --link stacked on such a layer) a
// standalone layer of the store. The build carries it like a stored layer, and unpacks it into
// the store only when a step needs its files (a RUN on it, a COPY --from it, the image stored at
// the end): a cache hit downloads nothing it does not need.
import type { Digest } from '../digest.js';
import type { Layer } from '../image/image.js';
import type { BlobRecord } from '../store/distribution.js';

export interface PendingLayer {
  readonly pending: true;
  readonly chainId: Digest;
  readonly diffId: Digest;
  /** The chainID below it. */
  readonly parent?: Digest;
  /** Its blob, read (and checked against its digest) only when it is unpacked or exported. */
  readonly layer: Layer;
  /** Where its compressed blob is, when a registry has it: a push or export there mounts it. */
  readonly known?: BlobRecord;
  /** Starts fetching the blob, so that unpacking the layers below overlaps the transfer. */
  prefetch(): void;
}

export function isPending(l: { readonly chainId: Digest }): l is PendingLayer {
  return (l as Partial<PendingLayer>).pending === true;
}
