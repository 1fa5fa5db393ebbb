// Multi-platform images in the store (indexdb.ts holds their records): storing one, resolving a
// name to an index or an image, and choosing a platform's image from an index, as `docker
// --platform` chooses one. An index is stored after its images and before its tag, each step
// leased, so that prune never takes a half-made multi-platform image for garbage, and a kill in
// between leaves images and an index that are merely untagged.
import { hex, isDigest, type Digest } from '../digest.js';
import { InvalidInputError, NotFoundError, PlatformNotFoundError, TsbuildError } from '../errors.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import { familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { IndexEntry, StoredIndexRecord } from './indexdb.js';
import type { StoreParts } from './parts.js';

/** What a name resolves to: one image, or a multi-platform image's index. */
export type ResolvedTarget =
  { readonly kind: 'image'; readonly id: Digest } | { readonly kind: 'index'; readonly index: StoredIndexRecord };

/**
 * Stores an index over images the store has (and leases it until it is tagged or this process
 * exits). Every entry's image must be there and be for the platform the entry says.
 */
export async function putIndex(parts: StoreParts, entries: readonly IndexEntry[]): Promise<Digest> {
  if (entries.length === 0) throw new InvalidInputError('an image index needs at least one image');
  return parts.exclusive(async () => {
    for (const e of entries) {
      const config = await parts.images.get(e.imageId);
      if (!platformMatches(e.platform, config)) {
        throw new InvalidInputError(`image ${e.imageId} is for ${formatPlatform(config)}, not ${formatPlatform(e.platform)}`);
      }
    }
    const id = await parts.indexes.put(entries);
    await parts.lease.add({ images: [id] });
    return id;
  });
}

/**
 * Resolves what a user typed to an image or an index: a name[:tag] or name@digest, a full ID, or
 * a unique prefix of an image's or an index's ID, as `docker` accepts.
 */
export async function resolveTarget(parts: StoreParts, s: string): Promise<ResolvedTarget> {
  const asTarget = async (id: Digest): Promise<ResolvedTarget> =>
    (await parts.indexes.has(id)) ? { kind: 'index', index: await parts.indexes.get(id) } : { kind: 'image', id };
  if (isDigest(s) && ((await parts.images.has(s)) || (await parts.indexes.has(s)))) return asTarget(s);
  if (/^[0-9a-f]{4,64}$/.test(s)) {
    const ids = [...(await parts.images.list()), ...(await parts.indexes.list())];
    const matches = ids.filter((id) => hex(id).startsWith(s));
    if (matches.length === 1) return asTarget(matches[0]!);
    if (matches.length > 1) throw new TsbuildError(`ambiguous image ID prefix ${s}`);
  }
  let ref: Reference;
  try {
    ref = parseReference(s);
  } catch {
    throw new NotFoundError(`No such image: ${s}`);
  }
  const id = await parts.tags.get(ref);
  if (!id) throw new NotFoundError(`No such image: ${familiarString(withDefaultTag(ref))}`);
  return asTarget(id);
}

/**
 * The image of `index` for `platform` (default: this machine's), as containerd's matcher picks
 * it; `name` is what the user typed, for the error when the index lacks the platform.
 */
export function imageForPlatform(index: StoredIndexRecord, name: string, platform?: Platform): Digest {
  const want = platform ?? hostPlatform();
  const exact = index.entries.find((e) => formatPlatform(e.platform) === formatPlatform(want));
  const entry = exact ?? index.entries.find((e) => platformMatches(want, e.platform));
  if (entry) return entry.imageId;
  throw new PlatformNotFoundError(
    `image ${name} has no ${formatPlatform(want)} image (it has ${index.entries.map((e) => formatPlatform(e.platform)).join(', ')})${
      platform ? '' : '; choose one with --platform'
    }`,
  );
}

/** Each stored index, and the images each stored index names (image ID → index IDs). */
export async function indexMembership(parts: StoreParts): Promise<{ indexes: StoredIndexRecord[]; byImage: Map<Digest, Digest[]> }> {
  const indexes = await parts.indexes.all();
  const byImage = new Map<Digest, Digest[]>();
  for (const ix of indexes) for (const e of ix.entries) byImage.set(e.imageId, [...(byImage.get(e.imageId) ?? []), ix.id]);
  return { indexes, byImage };
}

/** The indexes that name image `id`. */
export async function indexesNaming(parts: StoreParts, id: Digest): Promise<Digest[]> {
  return (await indexMembership(parts)).byImage.get(id) ?? [];
}
