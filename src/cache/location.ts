// Where a cache lives, as one small interface over its two kinds: a registry repository and
// tag (registry-location.ts), or a directory in an OCI image layout (layout.ts). Blobs are
// written through the push's LayerPusher (a location is a BlobTarget) and read verified against
// their digests; the manifest is the cache's entry point.
import type { Digest } from '../digest.js';
import type { FetchedManifest } from '../registry/client.js';
import type { BlobTarget } from '../registry/push.js';

export interface CacheLocation extends BlobTarget {
  /** For messages: the reference or the directory. */
  readonly where: string;
  /** The manifest the cache's tag (or the layout's index) names, or the one `digest` names; undefined if there is none. */
  manifest(digest?: Digest): Promise<FetchedManifest | undefined>;
  putManifest(mediaType: string, bytes: Buffer): Promise<void>;
  /** A small blob in memory, checked against its digest. */
  readBlob(digest: Digest, limit: number): Promise<Buffer>;
  /** A blob into `file`, checked against its digest and size. */
  downloadBlob(digest: Digest, size: number, file: string): Promise<void>;
  /** Before an export: remove what an export killed midway left (a directory; a registry keeps no such thing). */
  sweep?(): Promise<void>;
  /** After an export: remove the blobs the new cache does not name (a directory; a registry collects its own garbage). */
  removeUnreferenced?(keep: ReadonlySet<Digest>): Promise<void>;
  close(): void;
}
