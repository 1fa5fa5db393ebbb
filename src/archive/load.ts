// `load`: an image archive (Docker's `docker save` layout, old or new, or an OCI image layout;
// plain or compressed) → images in the store.
//
// The input is read once, front to back: it may be a pipe. A tar may hold a layer before the
// index that says what the layer is (Docker writes manifest.json last), so until the index is
// known every entry is spooled to a temporary directory inside the store root. Once the index
// is known (an archive that puts it first, as `tsbuild save` does), the reader asks the store
// which layers it lacks and from then on keeps only those: a layer the store already has is
// skipped, and the layer storeImage wants next is unpacked straight from the input. A blob that
// is needed at two places of a chain (or by two images on different parents) is spooled, since
// the input cannot be read twice.
//
// The archive is untrusted. Every name is checked as it goes by (no absolute paths, no `..`, no
// links out of the archive, no devices, no duplicates); JSON documents are read only up to a
// bound; blobs named `blobs/sha256/<hex>` or described by an OCI descriptor are verified against
// their digest and size, and every layer against the diffID its config names (storeImage). Tags
// are set only once the whole archive has been read and every image stored; a failed load takes
// out the images and layers it added, so the store is as it was, and the spool goes in every case.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chainIds, sha256, shortId, type Digest } from '../digest.js';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { DOCKER_MANIFEST_FILE, OCI_INDEX_FILE, cleanArchivePath, resolveArchiveLink } from './formats.js';
import { parseConfig, type ImageConfig } from '../image/config.js';
import { DigestMismatchError } from '../image/layers.js';
import { ByteReader, decompress, readTar, type TarHeader, type TarItem } from '../layer/index.js';
import { TruncatedError } from '../layer/bytereader.js';
import { TarFormatError } from '../layer/tarheader.js';
import { NO_PROGRESS, type TransferProgress } from '../progress.js';
import type { Reference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import { planDockerArchive } from './docker-index.js';
import { storeImage } from '../store/write-image.js';
import { planOciArchive } from './oci-index.js';

/** The most a JSON document in an archive (manifest.json, index.json, a manifest, a config) may hold. */
export const MAX_DOCUMENT_BYTES = 8 << 20;

/** What a blob must be: its digest and size when the archive's index says so. */
export interface BlobRef {
  /** Cleaned path inside the archive. */
  readonly path: string;
  readonly digest?: Digest;
  readonly size?: number;
  /** For error messages: `the config of image 1 in manifest.json`. */
  readonly what: string;
}

/** One image an archive's index describes, before anything is read. */
export interface PlannedImage {
  readonly config: BlobRef;
  /** Bottom first. */
  readonly layers: readonly BlobRef[];
  readonly tags: readonly Reference[];
}

/** What a format's planner may read: small files, whole. */
export interface ArchiveFiles {
  readDocument(ref: BlobRef): Promise<Buffer>;
}

export interface LoadedImage {
  readonly id: Digest;
  /** Each tag the archive gave the image, and the image it was taken from, if another. */
  readonly tags: readonly { readonly ref: Reference; readonly replaced?: Digest }[];
  /** Layers unpacked (the others were in the store already). */
  readonly addedLayers: number;
}

export interface LoadOptions {
  readonly progress?: TransferProgress;
  /** Called for each image once the whole archive has been loaded, in archive order. */
  readonly loaded?: (image: LoadedImage) => void;
  /** Stops the load (which then undoes itself). The input should be ended too: a read may be waiting on it. */
  readonly signal?: AbortSignal;
}

/** A file the archive's index names is not in the archive. */
export class MissingEntryError extends InvalidInputError {}

type EntryState =
  | { readonly kind: 'spooled'; readonly file: string; readonly size: number; readonly digest: Digest }
  | { readonly kind: 'link'; readonly target: string }
  | { readonly kind: 'dir' }
  /** Streamed to its consumer or skipped: its bytes are gone. */
  | { readonly kind: 'passed' };

type LiveEntry = { readonly path: string; readonly size: number; readonly body: AsyncIterable<Buffer> };

/** Errors of the tar layer (format, truncation) are about the user's archive. */
function archiveError(err: unknown): unknown {
  if (err instanceof TarFormatError || err instanceof TruncatedError) {
    return new InvalidInputError(`not a valid image archive: ${err.message}`, { cause: err });
  }
  return err;
}

/**
 * The outer tar, read entry by entry in one pass. Entries are spooled, skipped or handed out live
 * according to `wanted`; links (Docker 20.10 archives hold a layer twice as a symlink to the first
 * copy) resolve to the entry they name.
 */
class ArchiveReader implements ArchiveFiles {
  private readonly bytes: ByteReader;
  private readonly items: AsyncIterator<TarItem>;
  private readonly entries = new Map<string, EntryState>();
  private readonly documents = new Map<string, Buffer>();
  /**
   * How many times each path will be opened. Undefined until the archive's index is known:
   * until then everything is kept.
   */
  private wanted: Map<string, number> | undefined;
  private spooled = 0;
  private atEnd = false;

  constructor(
    input: AsyncIterable<Uint8Array>,
    private readonly spoolDir: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.bytes = new ByteReader(decompress(input));
    this.items = readTar(this.bytes)[Symbol.asyncIterator]();
  }

  /** Whether the whole input has been read. */
  get ended(): boolean {
    return this.atEnd;
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  /** From now on keep only these paths (a count above 1: opened more than once, so never streamed). */
  want(counts: Map<string, number>): void {
    this.wanted = counts;
    // Links already seen pass their needs on to their targets.
    for (const [path, n] of [...counts]) {
      const target = this.resolve(path, path);
      if (target !== path) counts.set(target, (counts.get(target) ?? 0) + n);
    }
  }

  private resolve(path: string, what: string): string {
    let p = path;
    for (let hops = 0; hops < 40; hops++) {
      const st = this.entries.get(p);
      if (st?.kind !== 'link') return p;
      p = st.target;
    }
    throw new InvalidInputError(`${what}: too many levels of links in the archive at ${JSON.stringify(path)}`);
  }

  private async nextEntry(): Promise<{ path: string; header: TarHeader; body: AsyncIterable<Buffer> } | undefined> {
    for (;;) {
      let r: IteratorResult<TarItem>;
      try {
        r = await this.items.next();
      } catch (err) {
        throw archiveError(err);
      }
      if (r.done) return undefined;
      if (r.value.kind !== 'entry') continue;
      const { header, body } = r.value;
      const raw = header.name.toString('utf8');
      const path = cleanArchivePath(raw, 'image archive');
      if (path === '') continue; // `./`, the archive's root
      return { path, header, body };
    }
  }

  /** Reads one entry. Returns it unread when it is `live` (the caller must consume it before the next call). */
  async advance(live?: string): Promise<LiveEntry | undefined> {
    const e = await this.nextEntry();
    if (!e) {
      this.atEnd = true;
      return undefined;
    }
    const { path, header } = e;
    const before = this.entries.get(path);
    if (header.type === 'dir' && (before === undefined || before.kind === 'dir')) {
      this.entries.set(path, { kind: 'dir' }); // a directory listed twice changes nothing
      return undefined;
    }
    // Two files of one name: which one counts would depend on the reader. Refuse instead.
    if (before !== undefined) throw new InvalidInputError(`image archive: more than one entry for ${JSON.stringify(path)}`);
    switch (header.type) {
      case 'symlink':
      case 'hardlink': {
        const linkname = header.linkname.toString('utf8');
        const target = header.type === 'symlink' ? resolveArchiveLink(path, linkname, 'image archive') : cleanArchivePath(linkname, 'image archive');
        this.entries.set(path, { kind: 'link', target });
        const n = this.wanted?.get(path);
        if (n !== undefined) {
          const resolved = this.resolve(target, path);
          if (this.entries.get(resolved)?.kind === 'passed') {
            throw new InvalidInputError(`image archive: ${JSON.stringify(path)} links to ${JSON.stringify(target)}, which came earlier and was not kept`);
          }
          this.wanted!.set(resolved, (this.wanted!.get(resolved) ?? 0) + n);
        }
        return undefined;
      }
      case 'file':
        break;
      default:
        throw new InvalidInputError(`image archive: ${JSON.stringify(path)} is a ${header.type}; an image archive holds only files, directories and links`);
    }
    if (path === live) {
      this.entries.set(path, { kind: 'passed' });
      return { path, size: header.size, body: e.body };
    }
    if (this.wanted === undefined || (this.wanted.get(path) ?? 0) > 0) {
      this.entries.set(path, await this.spool(e.body));
    } else {
      this.entries.set(path, { kind: 'passed' }); // readTar skips the unread body
    }
    return undefined;
  }

  private async spool(body: AsyncIterable<Buffer>): Promise<EntryState> {
    const file = join(this.spoolDir, String(this.spooled++));
    const hash = createHash('sha256');
    let size = 0;
    const tapped = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of body) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    };
    try {
      await pipeline(Readable.from(tapped()), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      throw archiveError(err);
    }
    return { kind: 'spooled', file, size, digest: `sha256:${hash.digest('hex')}` as Digest };
  }

  /** Reads on until the end, keeping nothing more: every name is still checked. */
  async drain(): Promise<void> {
    this.wanted = new Map();
    while (!this.ended) await this.advance();
  }

  /** Stops reading the input (it may be a pipe whose writer then sees it closed). */
  async close(): Promise<void> {
    await this.items.return?.(undefined);
    await this.bytes.cancel();
  }

  /**
   * A blob's bytes, checked against what `ref` says as they are read: from the spool, or live
   * from the input when this is the only time it is needed.
   */
  async open(ref: BlobRef, onBytes?: (n: number) => void): Promise<{ size: number; body: AsyncIterable<Buffer> }> {
    for (;;) {
      const path = this.resolve(ref.path, ref.what);
      const st = this.entries.get(path);
      if (st?.kind === 'spooled') {
        checkSize(ref, st.size);
        if (ref.digest !== undefined && st.digest !== ref.digest) {
          throw new DigestMismatchError(`${ref.what} (${ref.path}): digest mismatch: expected ${ref.digest}, got ${st.digest}`);
        }
        return { size: st.size, body: counted(createReadStream(st.file), ref, st.size, undefined, this.signal, onBytes) };
      }
      if (st?.kind === 'dir') throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} is a directory in the archive`);
      if (st?.kind === 'passed') {
        throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} is needed more than once, and the archive went past it`);
      }
      if (this.ended) throw new MissingEntryError(`${ref.what}: the archive has no file ${JSON.stringify(ref.path)}`);
      const once = this.wanted !== undefined && (this.wanted.get(path) ?? 0) <= 1;
      const live = await this.advance(once ? path : undefined);
      if (live) {
        checkSize(ref, live.size);
        return { size: live.size, body: counted(live.body, ref, live.size, ref.digest, this.signal, onBytes) };
      }
    }
  }

  async readDocument(ref: BlobRef): Promise<Buffer> {
    const cached = this.documents.get(ref.path);
    if (cached) return cached;
    const path = this.resolve(ref.path, ref.what);
    const st = this.entries.get(path);
    if (st?.kind === 'spooled' && st.size > MAX_DOCUMENT_BYTES) throw tooLarge(ref, st.size);
    const { size, body } = await this.open(ref);
    if (size > MAX_DOCUMENT_BYTES) throw tooLarge(ref, size);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c);
    const data = Buffer.concat(chunks);
    this.documents.set(ref.path, data);
    return data;
  }
}

function tooLarge(ref: BlobRef, size: number): InvalidInputError {
  return new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} has ${size} bytes, more than the ${MAX_DOCUMENT_BYTES} a document may have`);
}

function checkSize(ref: BlobRef, size: number): void {
  if (ref.size !== undefined && ref.size !== size) {
    throw new DigestMismatchError(`${ref.what} (${ref.path}): size mismatch: expected ${ref.size} bytes, the archive holds ${size}`);
  }
}

/** Passes a blob through, counting it for progress and (when read live) checking its digest at the end. */
async function* counted(
  body: AsyncIterable<Buffer>,
  ref: BlobRef,
  size: number,
  digest: Digest | undefined,
  signal: AbortSignal | undefined,
  onBytes?: (n: number) => void,
): AsyncGenerator<Buffer> {
  const hash = digest !== undefined ? createHash('sha256') : undefined;
  let n = 0;
  try {
    for await (const chunk of body) {
      signal?.throwIfAborted();
      hash?.update(chunk);
      n += chunk.length;
      onBytes?.(chunk.length);
      yield chunk;
    }
  } catch (err) {
    throw archiveError(err);
  }
  if (n !== size) throw new InvalidInputError(`${ref.what}: ${JSON.stringify(ref.path)} ended after ${n} of ${size} bytes`);
  if (hash) {
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw new DigestMismatchError(`${ref.what} (${ref.path}): digest mismatch: expected ${digest}, got ${got}`);
  }
}

/** Reads until the archive's index is known, and returns the images it describes. */
async function plan(archive: ArchiveReader): Promise<PlannedImage[]> {
  // Docker's rule: manifest.json, when there is one, is the index (a Docker 25 archive also has
  // an index.json, and Docker 25.0.0 wrote OCI manifests without layers). Without it, the OCI
  // index.json; that can only be decided at the end.
  while (!archive.has(DOCKER_MANIFEST_FILE) && !archive.ended) await archive.advance();
  if (archive.has(DOCKER_MANIFEST_FILE)) {
    return planDockerArchive(await archive.readDocument({ path: DOCKER_MANIFEST_FILE, what: 'image archive' }));
  }
  if (archive.has(OCI_INDEX_FILE)) return planOciArchive(archive);
  if (archive.has('repositories')) {
    throw new InvalidInputError('image archive has no manifest.json: archives from Docker before 1.10 are not supported');
  }
  throw new InvalidInputError('not an image archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)');
}

interface ReadyImage {
  readonly plan: PlannedImage;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  readonly id: Digest;
}

async function readConfigs(archive: ArchiveReader, images: readonly PlannedImage[]): Promise<ReadyImage[]> {
  const out: ReadyImage[] = [];
  for (const p of images) {
    const configBytes = await archive.readDocument(p.config);
    let config: ImageConfig;
    try {
      config = parseConfig(configBytes);
    } catch (err) {
      throw new InvalidInputError(`${p.config.what}: not an image config: ${(err as Error).message}`);
    }
    if (config.os !== 'linux') throw new InvalidInputError(`${p.config.what}: the image is for ${config.os}; only linux images can be loaded`);
    if (config.rootfs.diff_ids.length !== p.layers.length) {
      throw new InvalidInputError(
        `${p.config.what}: the config names ${config.rootfs.diff_ids.length} layers, the archive's index ${p.layers.length}`,
      );
    }
    out.push({ plan: p, configBytes, config, id: sha256(configBytes) });
  }
  return out;
}

/** Which paths the load will open, and how often: each layer the store lacks, once per distinct chain. */
async function neededLayers(store: Store, images: readonly ReadyImage[]): Promise<Map<string, number>> {
  const chains = new Map<string, Set<Digest>>();
  for (const img of images) {
    const ids = chainIds(img.config.rootfs.diff_ids);
    for (const [i, chainId] of ids.entries()) {
      if (await store.layers.exists(chainId)) continue;
      const path = img.plan.layers[i]!.path;
      if (!chains.has(path)) chains.set(path, new Set());
      chains.get(path)!.add(chainId);
    }
  }
  return new Map([...chains].map(([p, s]) => [p, s.size]));
}

/**
 * Undoes a failed load: the images it stored (untagged still, since tags come last) and the
 * layers it unpacked that no image stands on, top first. What was there before stays.
 */
async function rollBack(store: Store, images: readonly Digest[], chains: readonly Digest[]): Promise<void> {
  for (const id of [...images].reverse()) {
    if ((await store.tags.refsOf(id)).length === 0) await store.deleteImage(id);
  }
  const used = await store.layersInUse();
  for (const chainId of [...chains].reverse()) {
    if (used.has(chainId)) continue;
    const rec = await store.layers.get(chainId);
    if (!rec) continue; // deleteImage took it
    await store.layers.remove(chainId);
    await store.snapshotter.remove(rec.cacheId);
  }
}

export async function loadArchive(store: Store, input: AsyncIterable<Uint8Array>, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  const progress = opts.progress ?? NO_PROGRESS;
  const spool = await store.tempDir('load');
  const archive = new ArchiveReader(input, spool, opts.signal);
  const createdImages: Digest[] = [];
  const addedChains: Digest[] = [];
  try {
    const images = await readConfigs(archive, await plan(archive));
    archive.want(await neededLayers(store, images));
    const added: number[] = [];
    for (const img of images) {
      opts.signal?.throwIfAborted();
      const existed = await store.hasImage(img.id);
      const ids = img.config.rootfs.diff_ids.map(shortId);
      const chains = chainIds(img.config.rootfs.diff_ids);
      const stored = await storeImage(
        store,
        {
          configBytes: img.configBytes,
          openLayer: async (i) => {
            const ref = img.plan.layers[i]!;
            const { size, body } = await archive.open(ref, (n) => progress.advance(ids[i]!, n));
            progress.start(ids[i]!, 'Loading layer', size);
            return Readable.from(body);
          },
        },
        {
          layerDone: (i, existedLayer) => {
            if (!existedLayer) addedChains.push(chains[i]!);
            progress.done(ids[i]!, existedLayer ? 'Already exists' : 'Loaded');
          },
        },
      );
      if (!existed && !createdImages.includes(stored.id)) createdImages.push(stored.id);
      added.push(stored.added);
    }
    await archive.drain();
    opts.signal?.throwIfAborted();

    const result: LoadedImage[] = [];
    for (const [k, img] of images.entries()) {
      const tags: { ref: Reference; replaced?: Digest }[] = [];
      for (const ref of img.plan.tags) {
        const replaced = await store.tags.set(ref, img.id);
        tags.push({ ref, ...(replaced ? { replaced } : {}) });
      }
      const loaded: LoadedImage = { id: img.id, tags, addedLayers: added[k]! };
      result.push(loaded);
      opts.loaded?.(loaded);
    }
    return result;
  } catch (err) {
    try {
      await rollBack(store, createdImages, addedChains);
    } catch (cleanupErr) {
      throw new TsbuildError(`${(err as Error).message} (and undoing the partial load failed: ${(cleanupErr as Error).message})`, { cause: err });
    }
    throw err;
  } finally {
    await archive.close().catch(() => undefined); // the load's own outcome is what matters here
    await rm(spool, { recursive: true, force: true });
  }
}
