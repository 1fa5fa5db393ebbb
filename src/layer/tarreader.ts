// A streaming tar reader that accounts for every byte it reads. Besides entries it yields the
// raw bytes between file contents (headers, PAX and GNU long-name data, padding, end-of-archive
// blocks and whatever follows them) as segments, split exactly where vbatts/tar-split's
// RawAccounting reader splits them: one segment before each entry holding the previous entry's
// padding and all of this entry's header blocks, one after the last entry holding its padding and
// the zero blocks, then the trailing bytes. Recording those segments is what makes the original
// archive reproducible byte for byte from the unpacked files.
//
// Acceptance follows Go's archive/tar, which is what Docker reads layers with: an archive may end
// without its zero blocks, a PAX 'x' header applies to the next entry only, empty PAX values
// keep the header's own value. Sparse files and exotic GNU types are refused.
import { InvalidInputError } from '../errors.js';
import { ByteReader, TruncatedError } from './bytereader.js';
import {
  BLOCK_SIZE,
  MAX_SPECIAL_FILE_SIZE,
  PAX_SCHILY_XATTR,
  TarFormatError,
  TypeFlag,
  blockPadding,
  decodeBlock,
  isZeroBlock,
  parsePaxRecords,
  parsePaxTime,
  type EntryType,
  type RawHeader,
  type TarHeader,
} from './tarheader.js';

/** The most trailing bytes put in one segment (tar-split reads the tail in 1 MiB chunks too). */
const TRAILING_CHUNK = 1 << 20;
const CONTENT_CHUNK = 1 << 20;

export type TarItem =
  /** Raw archive bytes that are not file content. */
  | { readonly kind: 'segment'; readonly bytes: Buffer }
  /** An entry; `body` yields exactly `header.size` bytes and must be consumed before the next item (else it is skipped). */
  | { readonly kind: 'entry'; readonly header: TarHeader; readonly body: AsyncIterable<Buffer> }
  /** A PAX global header ('g'): no file, but tar-split records it as an entry of size 0. */
  | { readonly kind: 'global'; readonly name: Buffer };

function entryType(raw: RawHeader): EntryType {
  switch (raw.typeflag) {
    case TypeFlag.Reg:
    case TypeFlag.Cont:
      return 'file';
    case TypeFlag.RegA:
      // Pre-POSIX archives mark directories only by the trailing slash.
      return raw.name.at(-1) === 0x2f ? 'dir' : 'file';
    case TypeFlag.Link:
      return 'hardlink';
    case TypeFlag.Symlink:
      return 'symlink';
    case TypeFlag.Char:
      return 'char';
    case TypeFlag.Block:
      return 'block';
    case TypeFlag.Dir:
      return 'dir';
    case TypeFlag.Fifo:
      return 'fifo';
    case TypeFlag.GnuSparse:
      throw new TarFormatError(`sparse file ${JSON.stringify(raw.name.toString())} is not supported`);
    default:
      throw new TarFormatError(
        `entry ${JSON.stringify(raw.name.toString())} has unsupported type ${JSON.stringify(String.fromCharCode(raw.typeflag))}`,
      );
  }
}

function paxNumber(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]+$/.test(s)) throw new TarFormatError(`invalid PAX ${key} ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new TarFormatError(`PAX ${key} out of range`);
  return n;
}

/** Merges PAX records and GNU long names into the block's own fields, as Go's reader does. */
function mergeHeader(raw: RawHeader, pax: Map<string, Buffer> | undefined, longName?: Buffer, longLink?: Buffer): TarHeader {
  let name = raw.name;
  let linkname = raw.linkname;
  let { uid, gid, size, mtime } = raw;
  let mtimeNs = 0;
  let atime: number | undefined;
  let uname = raw.uname.toString('utf8');
  let gname = raw.gname.toString('utf8');
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax ?? []) {
    if (value.length === 0) continue; // an empty record keeps the header's own value
    if (key.startsWith('GNU.sparse.')) throw new TarFormatError(`sparse file ${JSON.stringify(name.toString())} is not supported`);
    switch (key) {
      case 'path':
        name = value;
        break;
      case 'linkpath':
        linkname = value;
        break;
      case 'uname':
        uname = value.toString('utf8');
        break;
      case 'gname':
        gname = value.toString('utf8');
        break;
      case 'uid':
        uid = paxNumber(value, key);
        break;
      case 'gid':
        gid = paxNumber(value, key);
        break;
      case 'size':
        size = paxNumber(value, key);
        break;
      case 'mtime': {
        const t = parsePaxTime(value.toString('latin1'));
        mtime = t.sec;
        mtimeNs = t.nsec;
        break;
      }
      case 'atime': {
        const t = parsePaxTime(value.toString('latin1'));
        atime = t.sec + t.nsec / 1e9;
        break;
      }
      default:
        if (key.startsWith(PAX_SCHILY_XATTR)) xattrs.set(key.slice(PAX_SCHILY_XATTR.length), value);
    }
  }
  if (longName !== undefined && longName.length > 0) name = longName;
  if (longLink !== undefined && longLink.length > 0) linkname = longLink;
  const type = entryType({ ...raw, name });
  if (size < 0) throw new TarFormatError(`entry ${JSON.stringify(name.toString())} has a negative size`);
  return {
    type,
    name,
    linkname,
    mode: raw.mode & 0o7777,
    uid,
    gid,
    // Links, devices, fifos and directories carry no content whatever their size field says.
    size: type === 'file' ? size : 0,
    mtime,
    mtimeNs,
    ...(atime !== undefined ? { atime } : {}),
    uname,
    gname,
    devMajor: raw.devMajor,
    devMinor: raw.devMinor,
    xattrs,
  };
}

/** The NUL-terminated string of a GNU long name / link body. */
function cString(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i >= 0 ? b.subarray(0, i) : b;
}

/**
 * Reads a tar stream item by item. Throws TarFormatError for data that is not a valid tar, and
 * TruncatedError when the input ends inside an entry.
 */
export async function* readTar(src: ByteReader): AsyncGenerator<TarItem, void, undefined> {
  let pending: Buffer[] = [];
  let pad = 0;
  const flush = (): Buffer => {
    const b = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    return b;
  };
  const readSpecial = async (raw: RawHeader, what: string): Promise<Buffer> => {
    if (raw.size > MAX_SPECIAL_FILE_SIZE) throw new TarFormatError(`${what} larger than 1 MiB`);
    const data = await src.readExact(raw.size, what);
    pending.push(data);
    pad = blockPadding(raw.size);
    return data;
  };

  entries: for (;;) {
    let pax: Map<string, Buffer> | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    for (;;) {
      if (pad > 0) {
        pending.push(await src.readExact(pad, 'padding'));
        pad = 0;
      }
      const headerOffset = src.offset;
      const block = await src.read(BLOCK_SIZE);
      if (block.length === 0) break entries; // Go accepts an archive without end blocks
      if (block.length < BLOCK_SIZE) throw new TruncatedError(`unexpected end of data in the header at offset ${headerOffset}`);
      pending.push(block);
      if (isZeroBlock(block)) {
        const second = await src.read(BLOCK_SIZE);
        if (second.length === 0) break entries;
        if (second.length < BLOCK_SIZE) throw new TruncatedError(`unexpected end of data after the end-of-archive block`);
        pending.push(second);
        if (isZeroBlock(second)) break entries;
        throw new TarFormatError(`zero block followed by data at offset ${headerOffset + BLOCK_SIZE}`);
      }
      let raw: RawHeader;
      try {
        raw = decodeBlock(block);
      } catch (e) {
        throw new TarFormatError(`${(e as Error).message} at offset ${headerOffset}`);
      }
      switch (raw.typeflag) {
        case TypeFlag.XHeader:
          pax = parsePaxRecords(await readSpecial(raw, 'PAX header'));
          continue;
        case TypeFlag.XGlobalHeader: {
          parsePaxRecords(await readSpecial(raw, 'PAX global header'));
          yield { kind: 'segment', bytes: flush() };
          yield { kind: 'global', name: raw.name };
          continue entries;
        }
        case TypeFlag.GnuLongName:
          longName = cString(await readSpecial(raw, 'GNU long name'));
          continue;
        case TypeFlag.GnuLongLink:
          longLink = cString(await readSpecial(raw, 'GNU long link name'));
          continue;
        default: {
          const header = mergeHeader(raw, pax, longName, longLink);
          pad = blockPadding(header.size);
          let remaining = header.size;
          const what = `the content of ${JSON.stringify(header.name.toString())}`;
          const body: AsyncIterable<Buffer> = {
            async *[Symbol.asyncIterator]() {
              while (remaining > 0) {
                const chunk = await src.readSome(Math.min(remaining, CONTENT_CHUNK));
                if (chunk.length === 0) throw new TruncatedError(`unexpected end of data in ${what}`);
                remaining -= chunk.length;
                yield chunk;
              }
            },
          };
          yield { kind: 'segment', bytes: flush() };
          yield { kind: 'entry', header, body };
          // Skip whatever the consumer left unread.
          while (remaining > 0) {
            const chunk = await src.readSome(Math.min(remaining, CONTENT_CHUNK));
            if (chunk.length === 0) throw new TruncatedError(`unexpected end of data in ${what}`);
            remaining -= chunk.length;
          }
          continue entries;
        }
      }
    }
  }
  // The last entry's padding and the zero blocks form one segment; anything after them (GNU tar
  // pads to a 10 KiB record) is trailing data, still part of the diffID and of the tar-split.
  if (pending.length > 0) yield { kind: 'segment', bytes: flush() };
  for (;;) {
    const chunk = await src.readSome(TRAILING_CHUNK);
    if (chunk.length === 0) break;
    yield { kind: 'segment', bytes: Buffer.from(chunk) };
  }
}

/**
 * The tar reader's own errors as a user should read them, `noun` naming the archive (`layer
 * tar`); `bytesRead` tells an input too short to be a tar from one cut short. Others pass as they are.
 */
export function tarReadError(e: unknown, noun: string, bytesRead: number): unknown {
  if (e instanceof TarFormatError) return new InvalidInputError(`invalid ${noun}: ${e.message}`, { cause: e });
  if (e instanceof TruncatedError) {
    return new InvalidInputError(
      bytesRead < BLOCK_SIZE ? `not a ${noun}: only ${bytesRead} bytes` : `the ${noun} is truncated: ${e.message}`,
      { cause: e },
    );
  }
  return e;
}
