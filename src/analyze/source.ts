// Where an image comes from for the commands that only read one (analyze, diff, history,
// inspect): a name or ID in the store (the default), or, beside the store and without writing
// to it, a Docker or OCI archive, an OCI layout directory or a registry, named as skopeo names
// them: `docker-archive:FILE`, `oci-archive:FILE`, `oci:DIR[:TAG]`, `docker://REF`.
//
// Every source hands out the same view: config, tags, and per layer its entries as analysis
// reads them (entries.ts). A stored layer's come from its tar-split; any other layer's from its
// tar stream, read once with each file's content run through the same CRC-64 the tar-split
// records (tarSplitOf), so that fingerprints compare across sources, and with the tar checked
// against its diffID. Layers are opened only when entries are asked for: history and inspect of
// a registry's image download none.
import type { Platform } from '../image/platform.js';
import { createHash } from 'node:crypto';
import { DigestMismatchError, type Digest } from '../digest.js';
import { InvalidInputError, TsbuildError } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { Provenance } from '../image/provenance.js';
import { TruncatedError } from '../layer/bytereader.js';
import { ByteReader, readTar } from '../layer/index.js';
import { TarFormatError } from '../layer/tarheader.js';
import { tarSplitOf } from '../layer/tarsplit.js';
import type { StoredImage } from '../store/images.js';
import type { Store } from '../store/store.js';
import { readLayerEntries, type LayerEntry } from './entries.js';

export type Transport = 'store' | 'docker-archive' | 'oci-archive' | 'oci' | 'docker';

/** What the user typed, split into a transport and what it names. */
export interface SourceName {
  readonly transport: Transport;
  /** The store's name or ID, the file or directory, or the registry reference. */
  readonly target: string;
  /** `oci:DIR:TAG`'s TAG. */
  readonly tag?: string;
}

export interface SourceLayer {
  readonly diffId: Digest;
  /** The store's chainID for the layer, whatever the source (computed from the diffIDs). */
  readonly chainId: Digest;
  /**
   * Docker's size of the layer (file contents and symlink targets, as `docker history` shows):
   * recorded in the store; otherwise counted from the entries, reading the layer if it has not been.
   */
  size(): Promise<number>;
  /** The compressed blob's size as a registry's manifest gives it (docker:// only): known without a download. */
  readonly blobSize?: number;
  /** The layer's entries in tar order. Opened once per call; an archive's layers are read in order, once. */
  entries(): AsyncIterable<LayerEntry>;
}

export interface SourceImage {
  readonly name: SourceName;
  readonly id: Digest;
  readonly configBytes: Buffer;
  readonly config: ImageConfig;
  /** RepoTags: the store's tags, an archive's names, the registry reference. */
  readonly tags: readonly string[];
  /** RepoDigests: the store's, or `name@<manifest digest>` for a registry. */
  readonly digests: readonly string[];
  /** Bottom first. */
  readonly layers: readonly SourceLayer[];
  /** The Dockerfile lines of its history: only a store image tsbuild built has them. */
  readonly provenance: Provenance | undefined;
  /** The store and its image, for a store source (inspect's Parent and GraphDriver). */
  readonly stored?: { readonly store: Store; readonly image: StoredImage };
  /** Ends reading (archives: removes the spool; registries: closes connections and removes downloads). */
  close(): Promise<void>;
}

/** skopeo's transports that tsbuild does not read, named so that the error can say so. */
const UNSUPPORTED = ['containers-storage', 'docker-daemon', 'dir', 'ostree', 'sif', 'tarball'];

/**
 * Splits `docker-archive:FILE`, `oci-archive:FILE`, `oci:DIR[:TAG]` and `docker://REF`; anything
 * else is a name in the store. A `scheme://` that is not docker's, or a transport tsbuild does
 * not read, is refused rather than looked up as an image name.
 */
export function parseSourceName(text: string): SourceName {
  const nonEmpty = (target: string, transport: Transport): SourceName => {
    if (target === '') throw new InvalidInputError(`${JSON.stringify(text)} names nothing: write ${transport}:${placeholder(transport)}`);
    return { transport, target };
  };
  if (text.startsWith('docker://')) return nonEmpty(text.slice('docker://'.length), 'docker');
  if (text.startsWith('docker-archive:')) return nonEmpty(text.slice('docker-archive:'.length), 'docker-archive');
  if (text.startsWith('oci-archive:')) return nonEmpty(text.slice('oci-archive:'.length), 'oci-archive');
  if (text.startsWith('oci:')) {
    const rest = text.slice('oci:'.length);
    // DIR:TAG, unless the colon is part of the directory's name (a tag has no '/').
    const colon = rest.lastIndexOf(':');
    if (colon > 0 && !rest.slice(colon + 1).includes('/') && rest.slice(colon + 1) !== '') {
      return { transport: 'oci', target: rest.slice(0, colon), tag: rest.slice(colon + 1) };
    }
    return nonEmpty(rest.replace(/:$/, ''), 'oci');
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1];
  if (scheme !== undefined) {
    throw new InvalidInputError(
      `unknown transport "${scheme}://" in ${JSON.stringify(text)}: use docker://, docker-archive:, oci-archive:, oci: or a name in the store`,
    );
  }
  // `dir:latest` may be an image of the store named dir; `dir:/tmp/x` cannot.
  const [, prefix, rest] = /^([a-z-]+):(.*)$/s.exec(text) ?? [];
  if (prefix !== undefined && UNSUPPORTED.includes(prefix) && !/^\w[\w.-]{0,127}$/.test(rest!)) {
    throw new InvalidInputError(
      `transport "${prefix}:" is not supported: use docker://, docker-archive:, oci-archive:, oci: or a name in the store`,
    );
  }
  return { transport: 'store', target: text };
}

function placeholder(t: Transport): string {
  return t === 'docker' ? '//REF' : t === 'oci' ? 'DIR[:TAG]' : 'FILE';
}

export interface OpenSourceOptions {
  /** The store, opened only when a store name is given (so that no other source touches it). */
  readonly store: () => Promise<Store>;
  /** Ends reading: each layer's entries check it, and archive and registry reads stop. */
  readonly signal?: AbortSignal;
  /** Which platform's image of a multi-platform image in the store (default: this machine's). */
  readonly platform?: Platform;
}

/** Opens what `text` names. The caller closes it. */
export async function openSource(text: string, opts: OpenSourceOptions): Promise<SourceImage> {
  const name = parseSourceName(text);
  if (name.transport === 'store') {
    const store = await opts.store();
    return storeSource(store, await store.resolveImage(name.target, opts.platform), name, opts.signal);
  }
  const beside = await import('./source-beside.js');
  return beside.openBeside(name, opts.signal);
}

/** A stored image as a source: its layers' entries from their tar-splits. */
export async function storeSource(store: Store, id: Digest, name?: SourceName, signal?: AbortSignal): Promise<SourceImage> {
  const image = await store.image(id);
  return {
    name: name ?? { transport: 'store', target: id },
    id,
    configBytes: image.configBytes,
    config: image.config,
    tags: image.tags.filter((t) => !t.digest).map((t) => t.ref),
    digests: image.tags.filter((t) => t.digest).map((t) => t.ref),
    layers: image.layers.map((l) => ({
      diffId: l.diffId,
      chainId: l.record.chainId,
      size: async () => l.record.size,
      entries: () => untilAborted(readLayerEntries(l.entries(), `layer ${l.record.chainId}`), signal),
    })),
    provenance: await store.provenance(id),
    stored: { store, image },
    close: async () => undefined,
  };
}

/**
 * A layer read from its tar stream (`open` gives the uncompressed tar): entries as a tar-split
 * would give them, the tar checked against `diffId` at its end, the size counted on the way.
 */
export function streamedLayer(
  diffId: Digest,
  chainId: Digest,
  open: () => Promise<AsyncIterable<Uint8Array>>,
  what: string,
  opts: { readonly blobSize?: number | undefined; readonly signal?: AbortSignal | undefined } = {},
): SourceLayer {
  const { blobSize, signal } = opts;
  let counted: number | undefined;
  async function* entries(): AsyncGenerator<LayerEntry, void, undefined> {
    const hash = createHash('sha256');
    const tar = await open();
    const tapped = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of tar) {
        signal?.throwIfAborted();
        hash.update(chunk);
        yield chunk;
      }
    };
    let size = 0;
    try {
      for await (const e of readLayerEntries(tarSplitOf(readTar(new ByteReader(tapped()))), what)) {
        if ('bytes' in e) size += e.bytes;
        yield e;
      }
    } catch (err) {
      if (err instanceof TarFormatError || err instanceof TruncatedError) {
        throw new InvalidInputError(`${what}: not a valid layer tar: ${err.message}`, { cause: err });
      }
      if (err instanceof TsbuildError || (err as NodeJS.ErrnoException).code !== undefined) throw err;
      const message = (err as Error).message;
      throw new InvalidInputError(message.startsWith(what) ? message : `${what}: ${message}`, { cause: err });
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== diffId) throw new DigestMismatchError(`${what}: the layer tar does not match its diffID: expected ${diffId}, got ${got}`);
    counted = size;
  }
  return {
    diffId,
    chainId,
    ...(blobSize !== undefined ? { blobSize } : {}),
    size: async () => {
      if (counted === undefined) for await (const _ of entries());
      return counted!;
    },
    entries,
  };
}

/** Entries until `signal` aborts. */
async function* untilAborted<T>(items: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T, void, undefined> {
  for await (const item of items) {
    signal?.throwIfAborted();
    yield item;
  }
}

/**
 * Each layer's size as history and inspect show it, bottom first, read one layer after the other
 * (an archive is read once, in order). A registry's layers are not downloaded for this: theirs
 * are the manifest's compressed sizes.
 */
export async function listedSizes(img: SourceImage): Promise<number[]> {
  const out: number[] = [];
  for (const l of img.layers) out.push(l.blobSize ?? (await l.size()));
  return out;
}
