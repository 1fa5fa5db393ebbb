// The outer tar of an image archive, as a stream of chunks. Headers come from the layer code's
// encoder (Go archive/tar's choices, as Docker's own save writes them); this file only frames
// entries: header, content, padding, and the two end blocks.
//
// Why not node-tar's Pack: it archives files from a filesystem, while our entries are JSON in
// memory and layer tars regenerated on the fly; and its headers would differ from Docker's for
// no gain. Sizes must be known before the content: each layer's tar size is computed from its
// tar-split up front, and a stream that delivers any other number of bytes fails the archive.
import { blockPadding, encodeHeader, END_OF_ARCHIVE, type TarHeader } from '../layer/index.js';
import { TsbuildError } from '../errors.js';

export type ArchiveEntry =
  | { readonly kind: 'dir'; readonly name: string; readonly mtime: number }
  | { readonly kind: 'file'; readonly name: string; readonly mtime: number; readonly data: Buffer }
  | {
      readonly kind: 'stream';
      readonly name: string;
      readonly mtime: number;
      readonly size: number;
      /** Opened when the entry's turn comes, so only one large stream is open at a time. */
      open(): AsyncIterable<Buffer>;
    };

/** A stream delivered a different number of bytes than its entry declared. */
export class EntrySizeError extends TsbuildError {}

function header(name: string, type: 'file' | 'dir', size: number, mtime: number): Buffer {
  const h: TarHeader = {
    type,
    name: Buffer.from(type === 'dir' && !name.endsWith('/') ? `${name}/` : name),
    linkname: Buffer.alloc(0),
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime,
    mtimeNs: 0,
    uname: '',
    gname: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
  };
  return encodeHeader(h);
}

/** The bytes of a tar holding `entries`, in order. */
export async function* tarChunks(entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>): AsyncGenerator<Buffer, void, undefined> {
  for await (const e of entries) {
    switch (e.kind) {
      case 'dir':
        yield header(e.name, 'dir', 0, e.mtime);
        break;
      case 'file':
        yield header(e.name, 'file', e.data.length, e.mtime);
        yield e.data;
        if (blockPadding(e.data.length) > 0) yield Buffer.alloc(blockPadding(e.data.length));
        break;
      case 'stream': {
        yield header(e.name, 'file', e.size, e.mtime);
        let n = 0;
        for await (const chunk of e.open()) {
          n += chunk.length;
          if (n > e.size) throw new EntrySizeError(`${e.name}: more than the ${e.size} bytes announced in its header`);
          yield chunk;
        }
        if (n !== e.size) throw new EntrySizeError(`${e.name}: ${n} bytes, but its header announced ${e.size}`);
        if (blockPadding(e.size) > 0) yield Buffer.alloc(blockPadding(e.size));
        break;
      }
    }
  }
  yield END_OF_ARCHIVE;
}
