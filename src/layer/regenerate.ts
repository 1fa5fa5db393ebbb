// tar-split + unpacked files -> the original layer tar, byte for byte (tar-split's
// NewOutputTarStream). Used by save and push: the store keeps only the unpacked diff dir.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, read, realpathSync } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { borrowChunk, LENT_CHUNK_SIZE } from '../chunks.js';
import { DigestMismatchError, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import type { LayerPieces } from '../image/image.js';
import { Crc64, crc64 } from './crc64.js';
import { READ_AHEAD, SMALL_FILE, mapAhead, readSmallFileSync } from './readahead.js';
import { readTarSplit, type TarSplitEntry } from './tarsplit.js';

/** A stored layer no longer matches its tar-split: a file changed size or content, or is missing. */
export class CorruptLayerError extends TsbuildError {}

const readAt = promisify(read);

export interface RegenerateOptions {
  /**
   * Compare each file's content with the crc64 its tar-split records, as it is read (default
   * true), so that a change fails the stream at that file, naming it (tar-split's own
   * NewOutputTarStream does so). A caller that checks the whole tar against the layer's diffID
   * may leave it off: the sha256 catches every change a crc64 would. regenerateVerified does
   * that and names the file only once the digest does not match.
   */
  readonly checkFiles?: boolean;
}

/** The tar of a stored layer as a byte stream. Fails (with CorruptLayerError) as soon as a file does not match. */
export function regenerateLayer(tarSplitPath: string, fileRoot: string, opts: RegenerateOptions = {}): Readable {
  return Readable.from(regenerateChunks(tarSplitPath, fileRoot, opts), { objectMode: false });
}

/**
 * The tar of a stored layer, hashed as it streams and checked against `diffId` at the end: what
 * save, push and verify read. The files' crc64s are checked only when the digest does not
 * match, to name the file that changed (CorruptLayerError); when none did, the tar-split itself
 * is what changed (DigestMismatchError). On W7's 300 MB push the crc64s cost ~0.2 s of CPU on
 * the thread that also feeds the compressor: wall 2.85 -> 2.65 s.
 */
export function regenerateVerified(tarSplitPath: string, fileRoot: string, diffId: Digest, what: string): Readable {
  return Readable.from(verifiedChunks(tarSplitPath, fileRoot, diffId, what), { objectMode: false });
}

async function* verifiedChunks(
  tarSplitPath: string,
  fileRoot: string,
  diffId: Digest,
  what: string,
): AsyncGenerator<Buffer, void, undefined> {
  const hash = createHash('sha256');
  for await (const chunk of regenerateChunks(tarSplitPath, fileRoot, { checkFiles: false })) {
    hash.update(chunk);
    yield chunk;
  }
  await checkRegenerated(tarSplitPath, fileRoot, diffId, `sha256:${hash.digest('hex')}` as Digest, what);
}

/**
 * The tar of a stored layer as pieces, its big files by reference, for a consumer that reads
 * them itself (the gzip helper: their bytes then never pass through Node) and hashes the whole
 * tar; `verify` takes that digest and fails as regenerateVerified would. Small files, already
 * read to know their place, come as bytes.
 */
export function regeneratePieces(tarSplitPath: string, fileRoot: string, diffId: Digest, what: string): LayerPieces {
  return {
    pieces: (async function* () {
      for await (const piece of prepareLayer(tarSplitPath, fileRoot, false)) {
        yield 'bytes' in piece ? piece.bytes : { path: piece.path, size: piece.entry.size };
      }
    })(),
    verify: (tarDigest) => checkRegenerated(tarSplitPath, fileRoot, diffId, tarDigest, what),
    diagnose: () => changedFile(tarSplitPath, fileRoot),
  };
}

/**
 * Passes when the tar made from a stored layer hashed to its diffID; otherwise throws, naming
 * the file that changed (CorruptLayerError), or the digest mismatch when no file did (the
 * tar-split itself changed).
 */
async function checkRegenerated(tarSplitPath: string, fileRoot: string, diffId: Digest, got: Digest, what: string): Promise<void> {
  if (got === diffId) return;
  const named = await changedFile(tarSplitPath, fileRoot);
  if (named) throw named;
  throw new DigestMismatchError(`${what}: digest mismatch: expected ${diffId}, got ${got}`);
}

/** A second pass that checks each file against its crc64 and size: the error naming the first that changed, if one did. */
async function changedFile(tarSplitPath: string, fileRoot: string): Promise<Error | undefined> {
  try {
    for await (const chunk of regenerateChunks(tarSplitPath, fileRoot)) void chunk;
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

type FileEntry = Extract<TarSplitEntry, { type: 'file' }>;

/** What goes into the tar next: bytes in hand, or a big file to stream when its turn comes. */
type Piece = { readonly bytes: Buffer } | { readonly entry: FileEntry; readonly path: Buffer };

/** The same, as an async generator of chunks. */
export async function* regenerateChunks(
  tarSplitPath: string,
  fileRoot: string,
  opts: RegenerateOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const checkFiles = opts.checkFiles ?? true;
  for await (const piece of prepareLayer(tarSplitPath, fileRoot, checkFiles)) {
    if ('bytes' in piece) {
      yield piece.bytes;
      continue;
    }
    yield* readBigFile(piece.entry, piece.path, fileRoot, checkFiles);
  }
}

const shown = (e: FileEntry): string => JSON.stringify(e.name.toString());
const unreadable = (e: FileEntry, fileRoot: string, err: unknown): CorruptLayerError =>
  new CorruptLayerError(`layer file ${shown(e)} cannot be read from ${fileRoot}: ${(err as Error).message}`, { cause: err });
const wrongSize = (e: FileEntry, fileRoot: string, actual: number): CorruptLayerError =>
  new CorruptLayerError(`layer file ${shown(e)} in ${fileRoot} has ${actual} bytes, the layer recorded ${e.size}`);
const changed = (e: FileEntry, fileRoot: string): CorruptLayerError =>
  new CorruptLayerError(`layer file ${shown(e)} in ${fileRoot} has changed since the layer was recorded (crc64 mismatch)`);

/**
 * The tar-split's entries as pieces, in order: segments and small files as bytes (read ahead,
 * READ_AHEAD at a time), big files as their checked paths, to be read when their turn comes.
 */
async function* prepareLayer(tarSplitPath: string, fileRoot: string, checkFiles: boolean): AsyncGenerator<Piece, void, undefined> {
  const root = await realpath(fileRoot);
  const safeDirs = new Set<string>([root]);

  // A tar-split names files as the archive did; the name must stay inside fileRoot even through
  // symlinks that the layer itself contains.
  const resolve = async (e: FileEntry): Promise<Buffer> => {
    const clean = posix.normalize(e.name.toString('latin1')).replace(/^\/+/, '').replace(/\/+$/, '');
    if (clean === '.' || clean === '..' || clean.startsWith('../')) {
      throw new CorruptLayerError(`${tarSplitPath}: file entry ${shown(e)} is outside the layer`);
    }
    const slash = clean.lastIndexOf('/');
    const dir = slash < 0 ? root : `${root}/${clean.slice(0, slash)}`;
    if (!safeDirs.has(dir)) {
      let real: string;
      try {
        // Synchronous, like the small reads below: a few microseconds each, where a trip
        // through libuv's pool costs several times that (a layer of 20,000 files has ~5,000
        // directories).
        // .native: the JavaScript realpathSync decodes a Buffer path as UTF-8, so a directory
        // whose name is not UTF-8 would never be found.
        real = realpathSync.native(Buffer.from(dir, 'latin1'), { encoding: 'buffer' }).toString('latin1');
      } catch (err) {
        throw new CorruptLayerError(`layer file ${shown(e)} is missing from ${fileRoot}`, { cause: err });
      }
      if (real !== dir) throw new CorruptLayerError(`layer file ${shown(e)} in ${fileRoot} is below a symlink`);
      safeDirs.add(dir);
    }
    return Buffer.from(`${root}/${clean}`, 'latin1');
  };
  const prepare = async (e: TarSplitEntry): Promise<Piece | undefined> => {
    if (e.type === 'segment') return { bytes: e.payload };
    if (e.size === 0) return undefined; // links, directories, empty files: nothing on disk needed
    const path = await resolve(e);
    if (e.size > SMALL_FILE) return { entry: e, path };
    let data: Buffer;
    try {
      data = readSmallFileSync(path, e.size);
    } catch (err) {
      throw unreadable(e, fileRoot, err);
    }
    // Grown files were read only up to size + 1 bytes; ask the filesystem for the real size.
    if (data.length !== e.size) throw wrongSize(e, fileRoot, data.length > e.size ? (await lstat(path)).size : data.length);
    if (checkFiles && e.crc !== undefined && !crc64(data).equals(e.crc)) throw changed(e, fileRoot);
    return { bytes: data };
  };

  for await (const piece of mapAhead(readTarSplit(tarSplitPath), prepare, READ_AHEAD)) {
    if (piece !== undefined) yield piece;
  }
}

/** A big file's content, in lent chunks, checked against its entry. */
async function* readBigFile(
  entry: FileEntry,
  path: Buffer,
  fileRoot: string,
  checkFiles: boolean,
): AsyncGenerator<Buffer, void, undefined> {
  // Open, fstat and close on this thread: one syscall each, where a FileHandle's round trips
  // through libuv's pool cost more than the call (W7: ~500 files over 64 KiB). The reads stay
  // on the pool, beside the hashing and the writes.
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw unreadable(entry, fileRoot, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CorruptLayerError(`layer file ${shown(entry)} in ${fileRoot} is no longer a regular file`);
    if (st.size !== entry.size) throw wrongSize(entry, fileRoot, st.size);
    const crc = checkFiles ? new Crc64() : undefined;
    let pos = 0;
    while (pos < entry.size) {
      // Lent: the consumer may still hold the previous chunk, or give it back (chunks.ts).
      const buf = borrowChunk(Math.min(LENT_CHUNK_SIZE, entry.size - pos));
      const { bytesRead } = await readAt(fd, buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new CorruptLayerError(`layer file ${shown(entry)} in ${fileRoot} shrank while being read`);
      const chunk = buf.subarray(0, bytesRead);
      crc?.update(chunk);
      pos += bytesRead;
      yield chunk;
    }
    if (crc && entry.crc !== undefined && !crc.digest().equals(entry.crc)) throw changed(entry, fileRoot);
  } finally {
    closeSync(fd);
  }
}
