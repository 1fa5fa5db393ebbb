// The layer module speaks in tars and digests only (containerd's differ idea). It never mounts,
// never knows which snapshot driver made a directory: a driver turns its directories into a
// stream of Changes, and the layer writer turns Changes into a tar.
import type { Digest } from '../digest.js';
import type { WalkRecord } from '../runtime/types.js';

/**
 * One entry of a layer's change set, in tar order (depth-first, names sorted bytewise within a
 * directory; a directory before its contents).
 */
export type Change =
  /** A file, directory, link, device or fifo present in this layer. `source` is where its content lives on disk. */
  | { readonly kind: 'entry'; readonly name: string; readonly record: WalkRecord; readonly source: string }
  /** `name` was deleted: written as the empty file `<dir>/.wh.<base>`. */
  | { readonly kind: 'whiteout'; readonly name: string }
  /** The directory `name` hides everything below it in lower layers: written as `<name>/.wh..wh..opq` right after the directory. */
  | { readonly kind: 'opaque'; readonly name: string };

export interface LayerWriteOptions {
  /** Clamp every mtime to at most this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  readonly sourceDateEpoch?: number;
  /**
   * A whiteout's permission bits: 0600 (the default) as moby's overlay whiteout converter writes
   * them, 0 as its naive differ (archive.ExportChanges) does, which Docker's squash uses.
   */
  readonly whiteoutMode?: number;
}

/** What committing a change set produced. */
export interface LayerDescriptor {
  /** sha256 of the uncompressed tar. */
  readonly diffId: Digest;
  /**
   * What `docker history` shows: the layer's bytes as Docker's overlay2 driver counts them
   * (moby's directory.Size on the diff dir): regular file contents, each inode once, plus
   * symlink target lengths.
   */
  readonly size: number;
  /** Bytes of the tar itself. */
  readonly tarSize: number;
}
