// Media types, descriptors and the four manifest kinds an image travels in (Docker schema 2 and
// its manifest list, OCI image manifest and index), as typed values shared by registries and
// archives. Parsing checks the fields we rely on so that a malformed manifest fails here with a
// clear message, not later as an undefined.
import { isDigest, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import { MediaType } from './mediatypes.js';
import { platformMatches, formatPlatform, type Platform } from './platform.js';

export { Annotation, INDEX_MEDIA_TYPES, LAYER_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType } from './mediatypes.js';

/** What we ask a registry for, in order of preference; registries pick the first they can serve. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest];

/** Manifests are small; a bigger one is not a manifest (containerd refuses past 4 MiB too). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Image configs are small JSON; a bound keeps a hostile registry from filling memory. */
export const MAX_CONFIG_BYTES = 16 << 20;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
}

export interface ImageManifest {
  readonly kind: 'image';
  readonly schemaVersion: 2;
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface ImageIndex {
  readonly kind: 'index';
  readonly schemaVersion: 2;
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
}

export type Manifest = ImageManifest | ImageIndex;

export class ManifestError extends TsbuildError {}

function descriptor(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object') throw new ManifestError(`${where}: not a descriptor`);
  if (typeof d.mediaType !== 'string') throw new ManifestError(`${where}: mediaType missing`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest))
    throw new ManifestError(`${where}: unsupported digest ${JSON.stringify(d.digest)}`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw new ManifestError(`${where}: bad size`);
  return d as Descriptor;
}

/**
 * Parses a manifest body. The Content-Type header is authoritative when it names a kind we know
 * (Docker's manifest list has no mediaType field in some old registries' output); otherwise the
 * body's own mediaType decides.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): Manifest {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new ManifestError('the registry sent a manifest that is not JSON');
  }
  const header = contentType?.split(';')[0]?.trim();
  const known: string[] = [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.ociIndex];
  const mediaType = header && known.includes(header) ? header : typeof raw.mediaType === 'string' ? raw.mediaType : guess(raw);
  if (mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed || raw.schemaVersion === 1) {
    throw new ManifestError(
      'the image has a Docker schema 1 manifest, which is deprecated and not supported: push it again with a current client',
    );
  }
  if (raw.schemaVersion !== 2) throw new ManifestError(`unsupported manifest schemaVersion ${JSON.stringify(raw.schemaVersion)}`);
  if (mediaType === MediaType.dockerManifestList || mediaType === MediaType.ociIndex) {
    if (!Array.isArray(raw.manifests)) throw new ManifestError('manifest list without manifests');
    return { kind: 'index', schemaVersion: 2, mediaType, manifests: raw.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)) };
  }
  if (mediaType === MediaType.dockerManifest || mediaType === MediaType.ociManifest) {
    if (!Array.isArray(raw.layers)) throw new ManifestError('image manifest without layers');
    return {
      kind: 'image',
      schemaVersion: 2,
      mediaType,
      config: descriptor(raw.config, 'config'),
      layers: raw.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
    };
  }
  throw new ManifestError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
}

/** OCI allows an index or manifest without mediaType; its shape says which it is. */
function guess(raw: Record<string, unknown>): string {
  if (Array.isArray(raw.manifests)) return MediaType.ociIndex;
  if (raw.config !== undefined) return MediaType.ociManifest;
  return '';
}

/** The entry of an index to pull for `platform`: the first match, as containerd picks it. */
export function selectPlatform(index: ImageIndex, platform: Platform): Descriptor {
  const images = index.manifests.filter((m) => m.mediaType === MediaType.dockerManifest || m.mediaType === MediaType.ociManifest);
  const match = images.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
  if (!match) throw new ManifestError(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
  return match;
}

/** What a layer's media type says about its compression (the bytes are checked again when unpacked). */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  switch (mediaType) {
    case MediaType.dockerLayerGzip:
    case MediaType.dockerForeignLayerGzip:
    case MediaType.ociLayerGzip:
    case MediaType.ociNondistributableGzip:
      return 'gzip';
    case MediaType.ociLayerZstd:
    case MediaType.ociNondistributableZstd:
      return 'zstd';
    case MediaType.ociLayer:
    case MediaType.ociNondistributable:
    case MediaType.dockerLayer:
      return 'none';
    default:
      return undefined;
  }
}

/** Serialized as Docker and BuildKit write them: fixed key order, no whitespace. */
export function serializeImageManifest(m: Omit<ImageManifest, 'kind'>): Buffer {
  const desc = (d: Descriptor) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform ? { platform: d.platform } : {}),
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: m.mediaType, config: desc(m.config), layers: m.layers.map(desc) }));
}

export function serializeIndex(m: Omit<ImageIndex, 'kind'>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: m.mediaType,
      manifests: m.manifests.map((d) => ({
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        ...(d.platform ? { platform: d.platform } : {}),
      })),
    }),
  );
}
