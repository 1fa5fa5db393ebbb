// One read-only view of an image, whoever holds it (go-containerregistry's v1.Image and
// v1.Layer): the store, a Docker or OCI archive, a registry. Sources hand images out in this
// shape and sinks take them in it, so that load, pull and import write to the store through one
// path (Store.writeImage), and save, push and build --output read from it through one shape.
// Views are immutable: what can change (tags) is not part of them.
import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import type { ImageConfig } from './config.js';

/** One layer of an image. */
export interface Layer {
  /** sha256 of the uncompressed tar: what the image config's rootfs names. */
  readonly diffId: Digest;
  /** The media type of the blob as this source holds it (compressed or not). */
  readonly mediaType: string;
  /** sha256 of that blob (the diffID when the source holds the layer uncompressed). */
  digest(): Promise<Digest>;
  /** Bytes of that blob. A source may need to read it to know (the store: its tar-split). */
  size(): Promise<number>;
  /** The blob as the source holds it, checked against its digest where the source knows it. */
  compressed(): Promise<Readable>;
  /** The layer tar. */
  uncompressed(): Promise<Readable>;
  /**
   * The layer tar as pieces, its big files by reference, for a sink that reads files itself
   * (the push's gzip helper: their bytes then never pass through Node). Only a source whose
   * layers are files on disk (the store) has it.
   */
  tarPieces?(): Promise<LayerPieces>;
}

/**
 * A piece of a layer tar: bytes in hand, or the `size` bytes of the regular file at `path`
 * (absolute; checked to be the layer's own, to be opened without following a symlink).
 */
export type TarPiece = Uint8Array | { readonly path: Buffer; readonly size: number };

export interface LayerPieces {
  readonly pieces: AsyncIterable<TarPiece>;
  /**
   * Takes the sha256 of the tar the pieces made and fails, as uncompressed() would have, when
   * it is not the diffID (naming the file that changed where it can).
   */
  verify(tarDigest: Digest): Promise<void>;
  /** Checks each file against the layer's record: the error naming the first that changed, if one did. */
  diagnose(): Promise<Error | undefined>;
}

/** An image: its config and its layers. */
export interface Image {
  /** The image ID: sha256 of the config bytes. */
  readonly id: Digest;
  /** The config exactly as stored (its bytes define the ID). */
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  /** Bottom first, one per diff_id of the config. */
  readonly layers: readonly Layer[];
}
