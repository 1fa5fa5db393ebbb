// The image sources beside the store (source.ts names them): archives read through load's own
// reader and planners (src/archive), an OCI layout directory in place, a registry through pull's
// resolution (openRemoteImage) without a store. None of them opens the store: scratch space (an
// archive's spool, a registry's downloaded blob) goes to a directory of the system's temp dir,
// removed by close().
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainIds, hex, sha256 } from '../digest.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import type { Image } from '../image/image.js';
import { familiarName, familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import { decompress } from '../layer/decompress.js';
import { archiveImage, plan, readConfigs, type ReadyImage } from '../archive/load.js';
import { OCI_INDEX_FILE } from '../archive/formats.js';
import { onlyTag, openOciDir } from '../archive/oci-dir.js';
import { planOciArchive } from '../archive/oci-index.js';
import { ArchiveReader, type BlobRef, type PlannedImage } from '../archive/reader.js';
import { openRemoteImage } from '../registry/pull.js';
import { NO_PROGRESS } from '../progress.js';
import { streamedLayer, type SourceImage, type SourceName } from './source.js';

export async function openBeside(name: SourceName, signal?: AbortSignal): Promise<SourceImage> {
  switch (name.transport) {
    case 'docker-archive':
    case 'oci-archive':
      return openArchive(name, signal);
    case 'oci':
      return openLayoutDir(name, signal);
    case 'docker':
      return openRegistry(name, signal);
    case 'store':
      throw new Error('a store name is opened by openSource');
  }
}

function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), `tsbuild-source-${process.pid}-`));
}

/**
 * The one image a source holds, or the one tagged `ref` (skopeo's `docker-archive:FILE:REF`);
 * several without a ref, or none with it, are an error naming the images there are.
 */
function single<T extends { plan: PlannedImage }>(images: readonly T[], where: string, how: string, ref?: string): T {
  const names = images.map((i) => (i.plan.tags.length > 0 ? i.plan.tags.map(familiarString).join(', ') : '<untagged>'));
  if (ref !== undefined) {
    const wanted = familiarString(withDefaultTag(parseReference(ref)));
    const found = images.find((i) => i.plan.tags.some((t) => familiarString(t) === wanted));
    if (found) return found;
    throw new NotFoundError(`${where} has no image tagged ${wanted} (it holds ${names.join('; ') || 'no image'})`);
  }
  if (images.length === 1) return images[0]!;
  if (images.length === 0) throw new InvalidInputError(`${where} holds no image`);
  throw new InvalidInputError(`${where} holds ${images.length} images (${names.join('; ')}): name one as ${how}`);
}

/** An OCI index.json with only the manifests tagged `tag` (other documents as they are). */
function tagged(bytes: Buffer, ref: BlobRef, tag: string): Buffer {
  return ref.path === OCI_INDEX_FILE ? onlyTag(bytes, tag) : bytes;
}

/** `FILE`, or skopeo's `FILE:REF` when FILE:REF is not itself a file: the file, what it is, and REF. */
async function archiveFile(name: SourceName): Promise<{ file: string; ref?: string; st: Stats }> {
  const missing = (err: NodeJS.ErrnoException): undefined => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  };
  const whole = await stat(name.target).catch(missing);
  if (whole) return { file: name.target, st: whole };
  const colon = name.target.indexOf(':');
  if (colon > 0) {
    const file = name.target.slice(0, colon);
    const st = await stat(file).catch(missing);
    if (st) return { file, ref: name.target.slice(colon + 1), st };
  }
  throw new NotFoundError(`${name.transport}: no such file: ${name.target}`);
}

/** An image view's layers as sources of entries. */
function layersOf(image: Image, where: string, signal: AbortSignal | undefined): SourceImage['layers'] {
  const chains = chainIds(image.config.rootfs.diff_ids);
  return image.layers.map((l, i) =>
    streamedLayer(l.diffId, chains[i]!, async () => l.uncompressed(), `layer ${i + 1} (${l.diffId}) of ${where}`, { signal }),
  );
}

async function openArchive(name: SourceName, signal: AbortSignal | undefined): Promise<SourceImage> {
  const { file, ref, st } = await archiveFile(name);
  if (st.isDirectory()) {
    throw new InvalidInputError(
      `${name.transport}: ${file} is a directory${name.transport === 'oci-archive' ? ' (for a layout directory use oci:)' : ''}`,
    );
  }
  const spool = await scratch();
  const input = createReadStream(file);
  // An interrupt ends the input, and with it a read that waits on it.
  signal?.addEventListener('abort', () => input.destroy(signal.reason as Error), { once: true });
  const archive = new ArchiveReader(input, spool, signal);
  const close = async (): Promise<void> => {
    await archive.close().catch(() => undefined); // what was read is what counts, not how the file closed
    await rm(spool, { recursive: true, force: true });
  };
  try {
    // docker-archive: takes an OCI layout archive too, as load does; oci-archive: only its
    // index.json, whose ref.name tags REF picks from (skopeo's oci-archive:FILE:TAG), as oci:DIR:TAG.
    let img: ReadyImage;
    if (name.transport === 'oci-archive') {
      const files = ref === undefined ? archive : { readDocument: async (b: BlobRef) => tagged(await archive.readDocument(b), b, ref) };
      img = single(await readConfigs(archive, await planOciArchive(files)), file, `oci-archive:${file}:TAG`);
    } else {
      img = single(await readConfigs(archive, await plan(archive)), file, `docker-archive:${file}:NAME[:TAG]`, ref);
    }
    // Each layer read once, bottom up: the reader keeps what comes before its turn.
    const counts = new Map<string, number>();
    for (const l of img.plan.layers) counts.set(l.path, (counts.get(l.path) ?? 0) + 1);
    archive.want(counts);
    const image = archiveImage(archive, img, NO_PROGRESS);
    return {
      name,
      id: img.id,
      configBytes: img.configBytes,
      config: img.config,
      tags: img.plan.tags.map(familiarString),
      digests: [],
      layers: layersOf(image, file, signal),
      provenance: undefined,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function openLayoutDir(name: SourceName, signal: AbortSignal | undefined): Promise<SourceImage> {
  const where = `${name.target}${name.tag !== undefined ? `:${name.tag}` : ''}`;
  const { image, plan: p } = single(await openOciDir(name.target, name.tag), `the OCI layout ${where}`, `oci:${name.target}:TAG`);
  return {
    name,
    id: image.id,
    configBytes: image.configBytes,
    config: image.config,
    tags: p.tags.map(familiarString),
    digests: [],
    layers: layersOf(image, where, signal),
    provenance: undefined,
    close: async () => undefined,
  };
}

async function openRegistry(name: SourceName, signal: AbortSignal | undefined): Promise<SourceImage> {
  const remote = await openRemoteImage(undefined, name.target, signal ? { signal } : {});
  const ref: Reference = remote.reference;
  const where = familiarString(ref);
  let dir: Promise<string> | undefined;
  const chains = chainIds(remote.config.rootfs.diff_ids);
  const layers = remote.manifest.layers.map((d, i) => {
    const diffId = remote.config.rootfs.diff_ids[i]!;
    // Downloaded (verified, retried) to scratch when its entries are asked for, and removed once read.
    const open = async (): Promise<AsyncIterable<Uint8Array>> => {
      const file = join(await (dir ??= scratch()), `${hex(d.digest)}-${i}`);
      await remote.repo.downloadBlob(d.digest, d.size, file);
      const removing = async function* (): AsyncGenerator<Uint8Array> {
        try {
          yield* decompress(createReadStream(file));
        } finally {
          await rm(file, { force: true });
        }
      };
      return removing();
    };
    return streamedLayer(diffId, chains[i]!, open, `layer ${i + 1} (${d.digest}) of ${where}`, { blobSize: d.size, signal });
  });
  const repoName = familiarName(ref);
  return {
    name,
    id: sha256(remote.configBytes),
    configBytes: remote.configBytes,
    config: remote.config,
    tags: ref.tag !== undefined && ref.digest === undefined ? [familiarString(ref)] : [],
    digests: [`${repoName}@${remote.manifestDigest}`],
    layers,
    provenance: undefined,
    close: async () => {
      remote.close();
      if (dir) await rm(await dir, { recursive: true, force: true });
    },
  };
}
