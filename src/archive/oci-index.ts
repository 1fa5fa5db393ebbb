// An OCI image layout (image-spec image-layout.md) → the images it describes. index.json lists
// manifests (or nested indexes: for those, the manifest for this host's platform is taken);
// each manifest names its config and layers by digest, and every blob is verified against
// its descriptor's digest and size as it is read.
//
// Names: containerd, BuildKit and Docker 25 put the full name in io.containerd.image.name and
// only the tag in org.opencontainers.image.ref.name; podman and skopeo may put a full name in
// ref.name. So io.containerd.image.name wins; a ref.name is taken as a name only when it has a
// repository part (a `/` or a `:`), since a bare `latest` or `v1` names no repository. An image
// without a usable name is loaded untagged, as `docker load` does with an untagged image.
import { isDigest, type Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { Annotation, INDEX_MEDIA_TYPES, LAYER_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType, type Descriptor } from '../image/manifest.js';
import { formatPlatform, parsePlatform, type Platform } from '../image/platform.js';
import { blobPath, OCI_INDEX_FILE, OCI_LAYOUT_FILE } from './formats.js';
import { hostArchitecture } from '../image/config.js';
import { parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { ArchiveFiles, BlobRef, PlannedImage } from './reader.js';

/** Indexes may nest (an index of per-platform indexes); more than this is not an image. */
const MAX_DEPTH = 4;

function invalid(what: string, detail: string): never {
  throw new InvalidInputError(`invalid OCI image layout: ${what}: ${detail}`);
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    invalid(what, `not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(what, 'not a JSON object');
  return v as Record<string, unknown>;
}

function descriptor(raw: unknown, what: string): Descriptor {
  if (typeof raw !== 'object' || raw === null) invalid(what, 'not a descriptor');
  const d = raw as Record<string, unknown>;
  if (typeof d.mediaType !== 'string') invalid(what, 'no mediaType');
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) invalid(what, `digest ${JSON.stringify(d.digest)} is not sha256:<64 hex>`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) invalid(what, 'no valid size');
  const annotations = typeof d.annotations === 'object' && d.annotations !== null ? (d.annotations as Record<string, string>) : undefined;
  const p = d.platform as Partial<Platform> | undefined;
  const platform =
    p && typeof p.os === 'string' && typeof p.architecture === 'string'
      ? { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) }
      : undefined;
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(annotations ? { annotations } : {}),
    ...(platform ? { platform } : {}),
  };
}

function descriptorList(doc: Record<string, unknown>, key: string, what: string): Descriptor[] {
  const list = doc[key];
  if (!Array.isArray(list)) invalid(what, `no ${key} list`);
  return list.map((d, i) => descriptor(d, `${what}, ${key}[${i}]`));
}

function blobRef(d: Descriptor, what: string): BlobRef {
  return { path: blobPath(d.digest), digest: d.digest, size: d.size, mediaType: d.mediaType, what };
}

function nameOf(d: Descriptor): Reference | undefined {
  const full = d.annotations?.[Annotation.ImageName];
  const refName = d.annotations?.[Annotation.RefName];
  const candidate = full ?? (refName !== undefined && /[/:]/.test(refName) ? refName : undefined);
  if (candidate === undefined) return undefined;
  let ref: Reference;
  try {
    ref = withDefaultTag(parseReference(candidate));
  } catch (err) {
    invalid(OCI_INDEX_FILE, `image name ${JSON.stringify(candidate)}: ${(err as Error).message}`);
  }
  return ref.tag !== undefined && ref.digest === undefined ? ref : undefined;
}

function matchesHost(p: Platform | undefined): boolean {
  return p === undefined || (p.os === 'linux' && p.architecture === hostArchitecture());
}

/** The image manifest a descriptor leads to, through nested indexes. */
async function resolveManifest(
  files: ArchiveFiles,
  d: Descriptor,
  what: string,
  depth: number,
): Promise<{ digest: Digest; doc: Record<string, unknown> }> {
  if (depth > MAX_DEPTH) invalid(what, 'indexes nested too deeply');
  if (INDEX_MEDIA_TYPES.has(d.mediaType)) {
    const doc = parseJson(await files.readDocument(blobRef(d, what)), what);
    const entries = descriptorList(doc, 'manifests', what);
    const candidates = entries.filter((e) => MANIFEST_MEDIA_TYPES.has(e.mediaType) || INDEX_MEDIA_TYPES.has(e.mediaType));
    const chosen =
      candidates.find((e) => e.platform !== undefined && matchesHost(e.platform)) ??
      (candidates.length === 1 && matchesHost(candidates[0]!.platform) ? candidates[0] : undefined);
    if (!chosen) invalid(what, `no manifest for linux/${hostArchitecture()} among ${candidates.length}`);
    return resolveManifest(files, chosen, `${what} → ${chosen.digest}`, depth + 1);
  }
  if (!MANIFEST_MEDIA_TYPES.has(d.mediaType)) invalid(what, `unsupported media type ${d.mediaType}`);
  return { digest: d.digest, doc: parseJson(await files.readDocument(blobRef(d, what)), what) };
}

/**
 * The images an OCI layout's index.json names. With `allPlatforms` (load), an entry that is an
 * index of platform images gives every one of them, marked as members of that multi-platform
 * image; without, the one for this machine, as a single image (analyze, build contexts).
 */
export async function planOciArchive(files: ArchiveFiles, opts: { allPlatforms?: boolean } = {}): Promise<PlannedImage[]> {
  const layout = parseJson(await files.readDocument({ path: OCI_LAYOUT_FILE, what: 'OCI image layout' }), OCI_LAYOUT_FILE);
  if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
    invalid(OCI_LAYOUT_FILE, `unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
  }
  const index = parseJson(await files.readDocument({ path: OCI_INDEX_FILE, what: 'OCI image layout' }), OCI_INDEX_FILE);
  const byManifest = new Map<string, PlannedImage & { tags: Reference[] }>();
  const add = async (d: Descriptor, doc: Record<string, unknown>, what: string, member?: PlannedImage['member']) => {
    // One platform's image of two multi-platform images is planned once per index.
    const key = `${d.digest}${member ? ` ${member.index}` : ''}`;
    let image = byManifest.get(key);
    if (!image) {
      const configDesc = descriptor(doc.config, `${what}: config`);
      if (configDesc.mediaType !== MediaType.ociConfig && configDesc.mediaType !== MediaType.dockerConfig) {
        invalid(what, `config media type ${configDesc.mediaType} is not an image config`);
      }
      const layers = descriptorList(doc, 'layers', what).map((l, i) => {
        if (!LAYER_MEDIA_TYPES.has(l.mediaType)) invalid(what, `layer ${i + 1} has unsupported media type ${l.mediaType}`);
        return blobRef(l, `layer ${i + 1} of ${what}`);
      });
      image = { config: blobRef(configDesc, `the config of ${what}`), layers, tags: [], ...(member ? { member } : {}) };
      byManifest.set(key, image);
    }
    return image;
  };
  for (const [k, top] of descriptorList(index, 'manifests', OCI_INDEX_FILE).entries()) {
    const what = `image ${k + 1} in ${OCI_INDEX_FILE} (${top.digest})`;
    const name = nameOf(top);
    if (opts.allPlatforms && INDEX_MEDIA_TYPES.has(top.mediaType)) {
      const members = await platformImages(files, top, what);
      if (members.length > 0) {
        for (const m of members) {
          const image = await add(m.d, m.doc, m.what, { index: top.digest, platform: m.platform, tags: [] });
          const tags = image.member!.tags as Reference[];
          if (name && !tags.some((t) => sameRef(t, name))) tags.push(name);
        }
        continue;
      }
    }
    const { digest, doc } = await resolveManifest(files, top, what, 0);
    const image = await add({ ...top, digest }, doc, what);
    if (name && !image.tags.some((t) => sameRef(t, name))) image.tags.push(name);
  }
  return [...byManifest.values()];
}

function sameRef(a: Reference, b: Reference): boolean {
  return a.domain === b.domain && a.path === b.path && a.tag === b.tag;
}

/** An index's image manifests for a platform (attestations, `unknown/unknown`, left out), each platform once. */
async function platformImages(
  files: ArchiveFiles,
  top: Descriptor,
  what: string,
): Promise<{ d: Descriptor; doc: Record<string, unknown>; platform: Platform; what: string }[]> {
  const doc = parseJson(await files.readDocument(blobRef(top, what)), what);
  const out: { d: Descriptor; doc: Record<string, unknown>; platform: Platform; what: string }[] = [];
  const seen = new Set<string>();
  for (const e of descriptorList(doc, 'manifests', what)) {
    if (!MANIFEST_MEDIA_TYPES.has(e.mediaType) || !e.platform || e.platform.os === 'unknown') continue;
    const platform = parsePlatform(formatPlatform(e.platform));
    if (seen.has(formatPlatform(platform))) continue;
    seen.add(formatPlatform(platform));
    const entryWhat = `${what} → ${formatPlatform(platform)}`;
    out.push({ d: e, doc: parseJson(await files.readDocument(blobRef(e, entryWhat)), entryWhat), platform, what: entryWhat });
  }
  return out;
}
