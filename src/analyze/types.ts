// What `tsbuild analyze` finds in an image. These values are also its `--json` output, so every
// field is documented in docs/analyze.md; change both together. Paths are absolute image paths.
import type { Digest } from '../digest.js';
import type { LayerOrigin } from './origin.js';

export interface PathBytes {
  readonly path: string;
  readonly bytes: number;
}

export interface LayerAnalysis {
  /** Position in the image, 0 = bottom. */
  readonly index: number;
  readonly chainId: Digest;
  readonly diffId: Digest;
  /** The layer's size as `docker history` shows it. */
  readonly size: number;
  readonly origin: LayerOrigin;
  /** Files (anything but directories) this layer adds, changes and deletes. */
  readonly files: { readonly added: number; readonly modified: number; readonly removed: number };
  /** Content bytes this layer stores (regular files and symlink targets). */
  readonly storedBytes: number;
  /** Of those, the bytes a later layer hides: stored for nothing. */
  readonly wastedBytes: number;
  /** This layer's largest stored files, largest first. */
  readonly largest: readonly PathBytes[];
}

export interface InefficientPath {
  readonly path: string;
  /** How many layers store content at this path. */
  readonly count: number;
  /** Bytes stored at this path, all layers together. */
  readonly storedBytes: number;
  /** Of those, the bytes no longer visible: every copy but the visible one, or all if deleted. */
  readonly wastedBytes: number;
  /** The layers that store it, bottom first. */
  readonly layers: readonly number[];
  /** The layer that deleted it, when the final image no longer has it. */
  readonly removedBy?: number;
}

export type HintKind =
  /** Files a later layer deletes (the seed's COPY-then-rm). */
  | 'deleted-later'
  /** Files a later layer stores again with other content. */
  | 'rewritten-later'
  /** Files a later layer stores again only to change owner or mode (chown/chmod). */
  | 'chown-chmod-later'
  /** The same content stored again: at the same paths, or at other paths in another layer. */
  | 'duplicate-content'
  /** Package manager caches left in the image. */
  | 'package-cache'
  /** Large files in the build context that no COPY/ADD reads. */
  | 'unused-context-file';

export interface Hint {
  readonly kind: HintKind;
  /** What following the hint saves (context files: bytes not sent with the context). */
  readonly bytes: number;
  readonly files: number;
  /** The layer the hint is about (the one that stores the bytes); absent for context files. */
  readonly layer?: number;
  /** The other layer involved: the one that deletes, rewrites or duplicates. */
  readonly otherLayer?: number;
  /** Some of the paths, largest first. */
  readonly paths: readonly string[];
  /** What happens, naming the Dockerfile lines. */
  readonly message: string;
  /** What to change. */
  readonly fix: string;
}

export interface ImageAnalysis {
  readonly id: Digest;
  readonly tags: readonly string[];
  /** Sum of the layer sizes: what `tsbuild images` shows. */
  readonly size: number;
  /** Sum of the sizes of the layers this Dockerfile's own steps made (not the base image's). */
  readonly userSize: number;
  /** Content bytes all layers store (regular files and symlink targets). */
  readonly storedBytes: number;
  /** Stored bytes the final filesystem does not show; each byte counted once. */
  readonly wastedBytes: number;
  /** Wasted bytes hidden by this Dockerfile's own steps. */
  readonly userWastedBytes: number;
  /** userWastedBytes / userSize (0 when userSize is 0). */
  readonly userWastedPercent: number;
  /**
   * Package-manager caches (apt lists and archives, apk, dnf/yum, pip, npm, yarn, Go; ./caches.ts)
   * that this Dockerfile's own layers store, visible or hidden later: bytes the image carries
   * that no program in it needs.
   */
  readonly userCacheBytes: number;
  /** 1 - wastedBytes / storedBytes (1 for an empty image). */
  readonly efficiency: number;
  /** Bottom first. */
  readonly layers: readonly LayerAnalysis[];
  /** Paths with wasted bytes, most wasted first. */
  readonly inefficientPaths: readonly InefficientPath[];
  /** Largest saving first. */
  readonly hints: readonly Hint[];
  /** Checks that could not be made, and why (e.g. the build context is gone). */
  readonly notes: readonly string[];
}
