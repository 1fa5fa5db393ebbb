// Blobs downloaded for pending layers (pending.ts), one file each in the build's scratch
// directory, and the pending layers that read them.
import { join } from 'node:path';
import { hex, type Digest } from '../digest.js';
import type { Descriptor } from '../image/manifest.js';
import { blobLayer } from '../layer/blob-layer.js';
import { Limiter } from '../fs/limit.js';
import type { BlobRecord } from '../store/distribution.js';
import type { PendingLayer } from './pending.js';

/**
 * Blobs downloaded for pending layers, one file each in the build's scratch directory: a blob is
 * fetched once however many layers name it, and a failed download may be tried again.
 */
export class BlobFiles {
  private readonly files = new Map<Digest, Promise<string>>();
  /** Downloads at once, as pull's (Docker's default is 3). */
  private readonly limiter = new Limiter(3);

  constructor(private readonly scratch: () => Promise<string>) {}

  /** The blob `d` as a file; `download` writes it, checked against its digest and size. */
  file(d: Descriptor, download: (file: string) => Promise<void>): Promise<string> {
    let p = this.files.get(d.digest);
    if (!p) {
      p = this.limiter.run(async () => {
        const file = join(await this.scratch(), hex(d.digest));
        await download(file);
        return file;
      });
      p.catch(() => this.files.delete(d.digest));
      this.files.set(d.digest, p);
    }
    return p;
  }

  /** A pending layer whose bytes are the blob `d`, downloaded by `download` when first read. */
  pending(
    d: Descriptor,
    at: { readonly diffId: Digest; readonly chainId: Digest; readonly parent: Digest | undefined },
    download: (file: string) => Promise<void>,
    known?: BlobRecord,
  ): PendingLayer {
    const layer = blobLayer(d, at.diffId, () => this.file(d, download));
    return {
      pending: true,
      chainId: at.chainId,
      diffId: at.diffId,
      ...(at.parent ? { parent: at.parent } : {}),
      layer,
      ...(known ? { known } : {}),
      // A failure shows again, with its step, when the layer is unpacked.
      prefetch: () => void this.file(d, download).catch(() => undefined),
    };
  }
}
