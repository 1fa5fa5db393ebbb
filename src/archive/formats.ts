// The two image archive formats, as data: the names of their files and the JSON documents they
// hold. The writer (save.ts) writes these shapes and the readers
// (load.ts, *-index.ts) read them; neither knows the other's code, only this page.
//
// Docker image archive (`docker save`): `manifest.json` is the index,
//   [{"Config": "<path of the config>", "RepoTags": ["name:tag", ...] | null, "Layers": ["<path of a layer tar>", ...]}]
// bottom layer first, plus an informational `repositories`. Docker 20.10 names files
// `<imageID hex>.json` and `<v1 id>/layer.tar`; Docker 25 and later put everything under
// `blobs/sha256/<hex>` and add an OCI image layout alongside, so one archive is both.
//
// OCI image layout (image-spec image-layout.md): `oci-layout` ({"imageLayoutVersion":"1.0.0"}),
// `index.json` (an image index whose descriptors name manifests, each tagged by the annotation
// org.opencontainers.image.ref.name), and content-addressed `blobs/<alg>/<hex>`. Media types,
// descriptors and manifests are the image model's (src/image/manifest.ts).
import { posix } from 'node:path';
import { hex, isDigest, type Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';

export const DOCKER_MANIFEST_FILE = 'manifest.json';
export const DOCKER_REPOSITORIES_FILE = 'repositories';
export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_INDEX_FILE = 'index.json';
export const OCI_LAYOUT_VERSION = '1.0.0';

/** One element of Docker's manifest.json. */
export interface DockerManifestItem {
  readonly Config: string;
  readonly RepoTags: readonly string[] | null;
  readonly Layers: readonly string[];
}

/** Where a blob lives in an OCI layout (and in Docker 25's archives). */
export function blobPath(d: Digest): string {
  return `blobs/sha256/${hex(d)}`;
}

/** The digest a `blobs/sha256/<hex>` path names, or undefined for any other path. */
export function digestOfBlobPath(path: string): Digest | undefined {
  const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
  if (!m) return undefined;
  const d = `sha256:${m[1]}`;
  return isDigest(d) ? d : undefined;
}

/**
 * A name inside an archive, cleaned: `./a//b/` becomes `a/b`, the root itself is ''. An archive
 * is untrusted input, and a name that is absolute or climbs with `..` would point outside it
 * wherever it is unpacked, so such a name is refused rather than rewritten.
 */
export function cleanArchivePath(name: string, what: string): string {
  if (name.startsWith('/'))
    throw new InvalidInputError(`${what}: absolute path ${JSON.stringify(name)} is not allowed in an image archive`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidInputError(`${what}: path ${JSON.stringify(name)} climbs out of the archive with ".."`);
  if (name.includes('\0')) throw new InvalidInputError(`${what}: path ${JSON.stringify(name)} contains a NUL byte`);
  return parts.join('/');
}

/** The archive path a symlink at `linkPath` pointing to `target` resolves to, kept inside the archive. */
export function resolveArchiveLink(linkPath: string, target: string, what: string): string {
  if (target.startsWith('/'))
    throw new InvalidInputError(`${what}: symlink ${JSON.stringify(linkPath)} points to the absolute path ${JSON.stringify(target)}`);
  const joined = posix.normalize(posix.join(posix.dirname(linkPath), target));
  if (joined === '..' || joined.startsWith('../')) {
    throw new InvalidInputError(`${what}: symlink ${JSON.stringify(linkPath)} points outside the archive (${JSON.stringify(target)})`);
  }
  return cleanArchivePath(joined, what);
}

/** Go's encoding/json escapes these in strings; matching it keeps our JSON byte-identical to Docker's. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
