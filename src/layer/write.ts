// Change set -> layer tar. The tar is never stored: it streams through sha256 (the diffID), into
// an optional sink, and leaves behind only its tar-split, from which save/push regenerate it.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Digest } from '../digest.js';
import type { WalkRecord } from '../runtime/types.js';
import { Crc64, crc64 } from './crc64.js';
import { READ_AHEAD, SMALL_FILE, mapAhead, readSmallFile } from './readahead.js';
import { END_OF_ARCHIVE, blockPadding, encodeHeader, type EntryType, type TarHeader } from './tarheader.js';
import { TarSplitWriter } from './tarsplit.js';
import type { Change, LayerDescriptor, LayerWriteOptions } from './types.js';
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX, layerXattrs } from './whiteout.js';

const READ_CHUNK = 1 << 20;
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map();

export interface LayerWriteTarget {
  /** Where the tar-split is written (atomically). Its directory must exist. */
  readonly tarSplitPath: string;
  /** Receives the tar bytes too, with backpressure honoured. Not ended: the caller owns it. */
  readonly tarSink?: NodeJS.WritableStream;
}

/** The file's tar type, or undefined for sockets, which tar cannot hold (moby skips them too). */
function tarType(r: WalkRecord): EntryType | undefined {
  switch (r.type) {
    case 'f':
      return 'file';
    case 'd':
      return 'dir';
    case 'l':
      return 'symlink';
    case 'c':
      return 'char';
    case 'b':
      return 'block';
    case 'p':
      return 'fifo';
    case 's':
      return undefined;
  }
}

function stripSlashes(name: string): string {
  return name.replace(/^\/+|\/+$/g, '');
}

/** `a/b` -> `a/.wh.b` */
function whiteoutName(name: string): string {
  const clean = stripSlashes(name);
  const slash = clean.lastIndexOf('/');
  return `${clean.slice(0, slash + 1)}${WHITEOUT_PREFIX}${clean.slice(slash + 1)}`;
}

class TarOutput {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly sink: NodeJS.WritableStream | undefined) {}

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.sink && !this.sink.write(chunk)) await once(this.sink as unknown as NodeJS.EventEmitter, 'drain');
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}` as Digest;
  }
}

/**
 * Turns a change set into a layer tar as Docker writes it (see tarheader.ts for the header
 * conventions), returning its diffID and sizes and recording its tar-split.
 *
 * - Entries are written in the order given; directories get a trailing '/'.
 * - The second and later paths of an inode (nlink > 1) become hardlinks to the first one.
 * - A whiteout is the empty file `dir/.wh.name` (mode 0600, root, mtime 0: moby writes 0600).
 * - An opaque directory gets `dir/.wh..wh..opq` with the directory's owner and permission bits
 *   and mtime 0, exactly as moby's overlay whiteout converter writes it.
 * - mtimes are whole seconds, clamped to `sourceDateEpoch` when given.
 *
 * `size` is what overlay2 reports for the layer (moby's directory.Size on the diff dir): regular
 * file bytes, each inode once, plus symlink target lengths.
 */
export async function writeLayer(
  changes: AsyncIterable<Change>,
  out: LayerWriteTarget,
  opts: LayerWriteOptions = {},
): Promise<LayerDescriptor> {
  const split = new TarSplitWriter(out.tarSplitPath);
  const tar = new TarOutput(out.tarSink);
  const clamp = (t: number): number => (opts.sourceDateEpoch !== undefined && t > opts.sourceDateEpoch ? opts.sourceDateEpoch : t);
  const firstPathOfInode = new Map<number, string>();
  const dirs = new Map<string, { mode: number; uid: number; gid: number }>();
  let size = 0;
  let padding = Buffer.alloc(0);

  // Header blocks go out together with the previous entry's padding: one tar-split segment.
  const emitHeader = async (h: TarHeader): Promise<void> => {
    const seg = Buffer.concat([padding, encodeHeader(h)]);
    padding = Buffer.alloc(0);
    await split.segment(seg);
    await tar.write(seg);
  };
  const emptyEntry = async (h: TarHeader): Promise<void> => {
    await emitHeader(h);
    await split.file(h.name, 0, undefined);
  };

  try {
    for await (const { change, content } of mapAhead(changes, prefetch, READ_AHEAD)) {
      if (change.kind === 'whiteout') {
        await emptyEntry(plainHeader(Buffer.from(whiteoutName(change.name)), 0o600, 0, 0));
        continue;
      }
      if (change.kind === 'opaque') {
        const dirName = stripSlashes(change.name);
        const dir = dirs.get(dirName);
        if (dir === undefined) throw new Error(`opaque marker for ${JSON.stringify(dirName)} does not follow its directory`);
        await emptyEntry(plainHeader(Buffer.from(`${dirName}/${WHITEOUT_OPAQUE}`), dir.mode & 0o777, dir.uid, dir.gid));
        continue;
      }

      const { record, source } = change;
      let type = tarType(record);
      if (type === undefined) continue;
      const base = stripSlashes(change.name);
      let linkname = type === 'symlink' ? Buffer.from(record.link ?? '') : Buffer.alloc(0);
      let contentSize = type === 'file' ? record.size : 0;
      if (type !== 'dir' && record.nlink > 1) {
        const first = firstPathOfInode.get(record.ino);
        if (first === undefined) {
          firstPathOfInode.set(record.ino, base);
        } else {
          type = 'hardlink';
          linkname = Buffer.from(first);
          contentSize = 0;
        }
      }
      if (type === 'dir') dirs.set(base, { mode: record.mode, uid: record.uid, gid: record.gid });
      const name = Buffer.from(type === 'dir' ? `${base}/` : base);
      const header: TarHeader = {
        type,
        name,
        linkname,
        mode: record.mode & 0o7777,
        uid: record.uid,
        gid: record.gid,
        size: contentSize,
        mtime: clamp(record.mtime),
        mtimeNs: 0,
        uname: '',
        gname: '',
        devMajor: type === 'char' || type === 'block' ? (record.devMajor ?? 0) : 0,
        devMinor: type === 'char' || type === 'block' ? (record.devMinor ?? 0) : 0,
        xattrs: layerXattrs(record.xattrs),
      };
      await emitHeader(header);
      if (type === 'file') size += contentSize;
      if (type === 'symlink') size += linkname.length;
      if (contentSize === 0) {
        await split.file(name, 0, undefined);
        continue;
      }
      if (content !== undefined) {
        if (content.length !== contentSize) throw changedSize(source, contentSize, content.length);
        await tar.write(content);
        await split.file(name, contentSize, crc64(content));
        padding = Buffer.alloc(blockPadding(contentSize));
        continue;
      }
      const crc = new Crc64();
      let copied = 0;
      // O_NOFOLLOW: the walk saw a regular file here; never read through a symlink swapped in since.
      const fh = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW);
      const stream = fh.createReadStream({ highWaterMark: READ_CHUNK });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        copied += chunk.length;
        if (copied > contentSize) {
          stream.destroy();
          throw changedSize(source, contentSize, copied);
        }
        crc.update(chunk);
        await tar.write(chunk);
      }
      if (copied !== contentSize) throw changedSize(source, contentSize, copied);
      await split.file(name, contentSize, crc.digest());
      padding = Buffer.alloc(blockPadding(contentSize));
    }
    const end = Buffer.concat([padding, END_OF_ARCHIVE]);
    await split.segment(end);
    await tar.write(end);
    await split.commit();
  } catch (e) {
    await split.abort();
    throw e;
  }
  return { diffId: tar.digest(), size, tarSize: tar.bytes };
}

/** Small files are read ahead whole (see readahead.ts); the second path of an inode never needs its content. */
async function prefetch(change: Change): Promise<{ change: Change; content?: Buffer }> {
  if (change.kind !== 'entry') return { change };
  const r = change.record;
  if (r.type !== 'f' || r.nlink > 1 || r.size === 0 || r.size > SMALL_FILE) return { change };
  return { change, content: await readSmallFile(change.source, r.size) };
}

function changedSize(source: string, expected: number, read: number): Error {
  return new Error(`${source} ${read > expected ? 'grew' : 'shrank'} while its layer was being written (expected ${expected} bytes)`);
}

/** A root-style empty regular file (whiteout and opaque markers). */
function plainHeader(name: Buffer, mode: number, uid: number, gid: number): TarHeader {
  return {
    type: 'file',
    name,
    linkname: Buffer.alloc(0),
    mode,
    uid,
    gid,
    size: 0,
    mtime: 0,
    mtimeNs: 0,
    uname: '',
    gname: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: NO_XATTRS,
  };
}
