// Reading an image archive (a tar, plain or compressed, possibly from a pipe) once, front to
// back, with every name checked as it goes by. A tar may hold a layer before the index that says
// what the layer is (Docker writes manifest.json last), so until the index is known every entry
// is spooled to a temporary directory inside the store root. Once the index is known, the reader
// is told which blobs the load will open and how often (want): from then on it keeps only those,
// hands a blob needed once straight from the input to its consumer, and spools a blob needed
// twice, since the input cannot be read twice.
//
// The archive is untrusted. No absolute paths, no `..`, no links out of the archive, no
// devices, no duplicates; JSON documents are read only up to a bound; a blob is checked against
// the digest and size its reference gives as it is read.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, type Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import { ByteReader, decompress, readTar, type TarHeader, type TarItem } from '../layer/index.js';
import { TruncatedError } from '../layer/bytereader.js';
import { TarFormatError } from '../layer/tarheader.js';
import type { Reference } from '../image/reference.js';
import type { Platform } from '../image/platform.js';
import { cleanArchivePath, resolveArchiveLink } from './formats.js';

/** The most a JSON document in an archive (manifest.json, index.json, a manifest, a config) may hold. */
export const MAX_DOCUMENT_BYTES = 8 << 20;

/** What a blob must be: its digest and size when the archive's index says so. */
export interface BlobRef {
  /** Cleaned path inside the archive. */
  readonly path: string;
  readonly digest?: Digest;
  readonly size?: number;
  /** The blob's media type, when the index gives one (OCI descriptors do). */
  readonly mediaType?: string;
  /** For error messages: `the config of image 1 in manifest.json`. */
  readonly what: string;
}

/** One image an archive's index describes, before anything is read. */
export interface PlannedImage {
  readonly config: BlobRef;
  /** Bottom first. */
  readonly layers: readonly BlobRef[];
  readonly tags: readonly Reference[];
  /**
   * One platform's image of a multi-platform image (an OCI index the archive's index.json names,
   * read with `allPlatforms`): `index` is that index's digest, `tags` its names.
   */
  readonly member?: { readonly index: Digest; readonly platform: Platform; readonly tags: readonly Reference[] };
}

/** What a format's planner may read: small files, whole. */
export interface ArchiveFiles {
  readDocument(ref: BlobRef): Promise<Buffer>;
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
export class ArchiveReader implements ArchiveFiles {
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
    this.bytes = new ByteReader(decompress(input, 'the image archive'));
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
        const target =
          header.type === 'symlink' ? resolveArchiveLink(path, linkname, 'image archive') : cleanArchivePath(linkname, 'image archive');
        this.entries.set(path, { kind: 'link', target });
        const n = this.wanted?.get(path);
        if (n !== undefined) {
          const resolved = this.resolve(target, path);
          if (this.entries.get(resolved)?.kind === 'passed') {
            throw new InvalidInputError(
              `image archive: ${JSON.stringify(path)} links to ${JSON.stringify(target)}, which came earlier and was not kept`,
            );
          }
          this.wanted!.set(resolved, (this.wanted!.get(resolved) ?? 0) + n);
        }
        return undefined;
      }
      case 'file':
        break;
      default:
        throw new InvalidInputError(
          `image archive: ${JSON.stringify(path)} is a ${header.type}; an image archive holds only files, directories and links`,
        );
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
  return new InvalidInputError(
    `${ref.what}: ${JSON.stringify(ref.path)} has ${size} bytes, more than the ${MAX_DOCUMENT_BYTES} a document may have`,
  );
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
