// Docker's manifest.json → the images it describes. Both layouts Docker writes read the same
// way, since manifest.json carries paths, not digests:
//   Docker ≤ 24:  {"Config": "<imageID hex>.json", "Layers": ["<v1 id>/layer.tar", ...]}
//   Docker ≥ 25:  {"Config": "blobs/sha256/<hex>", "Layers": ["blobs/sha256/<hex>", ...]}
// A path under blobs/sha256/ names its content, so that content is verified against it; every
// layer is verified against the diffID the config gives it in any case (storeImage).
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { cleanArchivePath, digestOfBlobPath, DOCKER_MANIFEST_FILE } from './formats.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { BlobRef, PlannedImage } from './reader.js';

function invalid(detail: string): never {
  throw new InvalidInputError(`invalid ${DOCKER_MANIFEST_FILE} in the image archive: ${detail}`);
}

function blob(path: unknown, what: string): BlobRef {
  if (typeof path !== 'string' || path === '') invalid(`${what} is not a path`);
  const clean = cleanArchivePath(path, what);
  const digest: Digest | undefined = digestOfBlobPath(clean);
  return { path: clean, what, ...(digest ? { digest } : {}) };
}

/** A RepoTags entry: Docker requires `name:tag` (a digest or a bare name is refused). */
function repoTag(s: unknown, what: string): Reference {
  if (typeof s !== 'string') invalid(`${what} is not a string`);
  let ref: Reference;
  try {
    ref = parseReference(s);
  } catch (err) {
    invalid(`${what}: ${(err as Error).message}`);
  }
  if (ref.tag === undefined || ref.digest !== undefined) invalid(`${what}: invalid tag ${JSON.stringify(s)}`);
  return ref;
}

export function planDockerArchive(manifestJson: Buffer): PlannedImage[] {
  let items: unknown;
  try {
    items = JSON.parse(manifestJson.toString('utf8'));
  } catch (err) {
    invalid(`not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(items)) invalid('not a list of images');
  return items.map((raw: unknown, k): PlannedImage => {
    const n = k + 1;
    if (typeof raw !== 'object' || raw === null) invalid(`image ${n} is not an object`);
    const item = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (!Array.isArray(item.Layers)) invalid(`image ${n} has no Layers list`);
    if (item.RepoTags !== undefined && item.RepoTags !== null && !Array.isArray(item.RepoTags))
      invalid(`image ${n}: RepoTags is not a list`);
    const tags = ((item.RepoTags as unknown[] | null | undefined) ?? []).map((t, j) => repoTag(t, `image ${n}, tag ${j + 1}`));
    return {
      config: blob(item.Config, `the config of image ${n} in ${DOCKER_MANIFEST_FILE}`),
      layers: item.Layers.map((l: unknown, i) => blob(l, `layer ${i + 1} of image ${n} in ${DOCKER_MANIFEST_FILE}`)),
      tags,
    };
  });
}
