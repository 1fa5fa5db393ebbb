// An OCI image layout in a directory (skopeo's and podman's `oci:DIR[:TAG]`), read in place: the
// same planner as an OCI archive (oci-index.ts), over files instead of tar entries. Nothing is
// copied; every blob is checked against its descriptor's digest and size as it is read, and the
// directory is untrusted like an archive (names are cleaned by the planner's BlobRefs, documents
// are bounded, a symlink is not followed out of the layout).
//
// TAG picks the manifests of index.json whose org.opencontainers.image.ref.name is TAG (or whose
// io.containerd.image.name has that tag), by offering the planner an index.json with only those.
import { createReadStream } from 'node:fs';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { DigestMismatchError, sha256, verifyDigest } from '../digest.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import type { Image, Layer } from '../image/image.js';
import { Annotation } from '../image/manifest.js';
import { decompress } from '../layer/decompress.js';
import { cleanArchivePath, OCI_INDEX_FILE } from './formats.js';
import { readConfigs } from './load.js';
import { planOciArchive } from './oci-index.js';
import { MAX_DOCUMENT_BYTES, type ArchiveFiles, type BlobRef, type PlannedImage } from './reader.js';

/** The files of a layout directory, as the planners read an archive's. */
class LayoutDir implements ArchiveFiles {
  constructor(
    private readonly dir: string,
    private readonly tag: string | undefined,
  ) {}

  /** The file `ref` names, checked to be a regular file inside the layout. */
  async file(ref: BlobRef): Promise<{ path: string; size: number }> {
    const path = join(this.dir, cleanArchivePath(ref.path, ref.what));
    const real = await realpath(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFoundError(`${ref.what}: the layout has no file ${JSON.stringify(ref.path)}`);
      throw err;
    });
    const rel = relative(await realpath(this.dir), real);
    if (rel.startsWith('..')) throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} leads out of the layout`);
    const st = await lstat(real);
    if (!st.isFile()) throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} is not a regular file`);
    if (ref.size !== undefined && st.size !== ref.size) {
      throw new DigestMismatchError(`${ref.what} (${ref.path}): size mismatch: expected ${ref.size} bytes, the layout holds ${st.size}`);
    }
    return { path: real, size: st.size };
  }

  async readDocument(ref: BlobRef): Promise<Buffer> {
    const { path, size } = await this.file(ref);
    if (size > MAX_DOCUMENT_BYTES) {
      throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} has ${size} bytes, more than a document may have`);
    }
    const bytes = await readFile(path);
    if (ref.digest !== undefined && sha256(bytes) !== ref.digest) {
      throw new DigestMismatchError(`${ref.what} (${ref.path}): digest mismatch: expected ${ref.digest}, got ${sha256(bytes)}`);
    }
    return ref.path === OCI_INDEX_FILE && this.tag !== undefined ? onlyTag(bytes, this.tag) : bytes;
  }
}

/** index.json with only the manifests tagged `tag`; none is an error naming the tags there are. */
export function onlyTag(indexJson: Buffer, tag: string): Buffer {
  let index: { manifests?: unknown };
  try {
    index = JSON.parse(indexJson.toString('utf8')) as typeof index;
  } catch (err) {
    throw new InvalidInputError(`invalid OCI image layout: ${OCI_INDEX_FILE}: not JSON: ${(err as Error).message}`);
  }
  const manifests = Array.isArray(index.manifests) ? (index.manifests as { annotations?: Record<string, unknown> }[]) : [];
  const tagOf = (m: { annotations?: Record<string, unknown> }): string[] => {
    const refName = m.annotations?.[Annotation.RefName];
    const full = m.annotations?.[Annotation.ImageName];
    return [
      ...(typeof refName === 'string' ? [refName] : []),
      ...(typeof full === 'string' && /:[^/:]+$/.test(full) ? [full.slice(full.lastIndexOf(':') + 1)] : []),
    ];
  };
  const chosen = manifests.filter((m) => tagOf(m).includes(tag));
  if (chosen.length === 0) {
    const tags = [...new Set(manifests.flatMap(tagOf))];
    throw new NotFoundError(`the OCI layout has no image tagged ${JSON.stringify(tag)} (its tags: ${tags.join(', ') || 'none'})`);
  }
  return Buffer.from(JSON.stringify({ ...index, manifests: chosen }));
}

/** The images an OCI layout directory holds (those tagged `tag`, when given), with their layers read in place. */
export async function openOciDir(dir: string, tag?: string): Promise<{ image: Image; plan: PlannedImage }[]> {
  const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(`no such directory: ${dir}`);
    throw err;
  });
  if (!st.isDirectory()) throw new InvalidInputError(`${dir} is not a directory (an OCI layout is one; for a tar use oci-archive:)`);
  const files = new LayoutDir(dir, tag);
  const out: { image: Image; plan: PlannedImage }[] = [];
  for (const { plan, configBytes, config, id } of await readConfigs(files, await planOciArchive(files))) {
    const layers = plan.layers.map((ref, i): Layer => {
      const diffId = config.rootfs.diff_ids[i]!;
      const compressed = async (): Promise<Readable> => {
        const { path } = await files.file(ref);
        const stream = createReadStream(path);
        if (ref.digest === undefined) return stream;
        const check = verifyDigest(ref.digest, ref.what);
        stream.on('error', (err) => check.destroy(err));
        return stream.pipe(check);
      };
      return {
        diffId,
        mediaType: ref.mediaType ?? '',
        digest: async () => ref.digest ?? diffId,
        size: async () => (await files.file(ref)).size,
        compressed,
        uncompressed: async () => Readable.from(decompress(await compressed())),
      };
    });
    out.push({ image: { id, configBytes, config, layers }, plan });
  }
  return out;
}
