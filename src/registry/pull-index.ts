// `pull --all-platforms`: every platform's image of a multi-platform image, stored as pull.ts
// stores one (untagged), then an index over them in the store, which the tag and the index's
// digest reference name: the store then holds the multi-platform image as `build --platform`
// makes one, for `save`, `push` and `--platform` to choose from. Entries that are not images
// for a platform (BuildKit's attestation manifests, `unknown/unknown`) are left out. A tag that
// names a single image is pulled as `pull` pulls it.
import { formatPlatform, parsePlatform, type Platform } from '../image/platform.js';
import { MediaType } from '../image/manifest.js';
import { parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { Registry } from './client.js';
import { DockerConfig } from './credentials.js';
import { getTopManifest, pullImage, type PullOptions, type PullResult } from './pull.js';

export interface PullAllResult extends PullResult {
  /** Each platform's pull, in the index's order. */
  readonly platforms: readonly (PullResult & { readonly platform: Platform })[];
}

export async function pullAllPlatforms(store: Store, ref: Reference | string, opts: PullOptions = {}): Promise<PullResult | PullAllResult> {
  const reference = withDefaultTag(typeof ref === 'string' ? parseReference(ref) : ref);
  const credentials = opts.credentials ?? (await DockerConfig.load());
  const registry = await Registry.open(reference.domain, { ...opts, credentials });
  let top;
  try {
    top = await getTopManifest(registry.repository(reference.path, ['pull']), reference);
  } finally {
    registry.close();
  }
  if (top.manifest.kind === 'image') return pullImage(store, reference, { ...opts, credentials });

  const seen = new Set<string>();
  const platforms: (PullResult & { platform: Platform })[] = [];
  for (const entry of top.manifest.manifests) {
    if (entry.mediaType !== MediaType.dockerManifest && entry.mediaType !== MediaType.ociManifest) continue;
    if (!entry.platform || entry.platform.os === 'unknown' || entry.platform.architecture === 'unknown') continue;
    const platform = parsePlatform(formatPlatform(entry.platform));
    if (seen.has(formatPlatform(platform))) continue;
    seen.add(formatPlatform(platform));
    const byDigest: Reference = { domain: reference.domain, path: reference.path, digest: entry.digest };
    const pulled = await pullImage(store, byDigest, { ...opts, credentials, platform, untagged: true });
    platforms.push({ ...pulled, platform });
  }
  opts.signal?.throwIfAborted();
  const indexId = await store.putIndex(platforms.map((p) => ({ platform: p.platform, imageId: p.imageId })));
  const tagBefore = reference.tag !== undefined ? await store.tagged(reference) : undefined;
  if (reference.tag !== undefined) await store.tag(reference, indexId);
  await store.tag({ domain: reference.domain, path: reference.path, digest: top.digest }, indexId);
  const downloaded = platforms.reduce((n, p) => n + p.downloaded, 0);
  return {
    reference,
    imageId: indexId,
    manifestDigest: top.digest,
    imageManifestDigest: top.digest,
    downloaded,
    upToDate: downloaded === 0 && tagBefore === indexId,
    platforms,
  };
}
