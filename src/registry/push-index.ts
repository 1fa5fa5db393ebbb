// `push` of a multi-platform image: each platform's image pushed as push.ts pushes one, its
// manifest put by digest, then the index naming them under the tag. An OCI image index by
// default (with OCI manifests, as BuildKit writes them with oci-mediatypes=true), or Docker's
// manifest list (schema 2 manifests) with `ociMediaTypes: false`, for registries and tools that
// know only Docker's types. The index is made from the images alone, so a reproducible build
// pushes the same index digest every time.
import { InvalidInputError } from '../errors.js';
import { MediaType, serializeIndex, type Descriptor } from '../image/manifest.js';
import type { Reference } from '../image/reference.js';
import type { StoredIndexRecord, Store } from '../store/store.js';
import { pushImageView, type PushOptions, type PushResult } from './push.js';
import { Registry } from './client.js';
import { DockerConfig } from './credentials.js';

export async function pushIndex(store: Store, index: StoredIndexRecord, reference: Reference, opts: PushOptions): Promise<PushResult> {
  const oci = opts.ociMediaTypes ?? true;
  if (!oci && opts.compression === 'zstd') {
    throw new InvalidInputError("Docker's manifest list holds only Docker manifests, which have no zstd layers: push zstd as an OCI index");
  }
  const credentials = opts.credentials ?? (await DockerConfig.load());
  const platforms: PushResult[] = [];
  const manifests: Descriptor[] = [];
  for (const e of index.entries) {
    const pushed = await pushImageView(store, await store.image(e.imageId), reference, store, {
      ...opts,
      credentials,
      ociMediaTypes: oci,
      untagged: true,
    });
    platforms.push(pushed);
    const platform = {
      architecture: e.platform.architecture,
      os: e.platform.os,
      ...(e.platform.variant ? { variant: e.platform.variant } : {}),
    };
    manifests.push({ mediaType: pushed.manifestMediaType, digest: pushed.manifestDigest, size: pushed.manifestSize, platform });
  }
  const mediaType = oci ? MediaType.ociIndex : MediaType.dockerManifestList;
  const bytes = serializeIndex({ schemaVersion: 2, mediaType, manifests });
  const registry = await Registry.open(reference.domain, { ...opts, credentials });
  try {
    const manifestDigest = await registry.repository(reference.path, ['pull', 'push']).putManifest(reference.tag!, mediaType, bytes);
    await store.tag({ domain: reference.domain, path: reference.path, digest: manifestDigest }, index.id);
    return {
      reference,
      imageId: index.id,
      manifestDigest,
      manifestMediaType: mediaType,
      manifestSize: bytes.length,
      layers: platforms.flatMap((p) => p.layers),
      platforms,
    };
  } finally {
    registry.close();
  }
}
