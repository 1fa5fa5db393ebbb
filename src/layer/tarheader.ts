// Tar header blocks: encoding the way Docker writes them, decoding what other tools write.
//
// Encoding follows Go's archive/tar with `Format: FormatPAX`, which is what moby's archive
// package (pkg/archive, now github.com/moby/go-archive) asks for: a plain USTAR block whenever
// every field fits, otherwise a PAX extended header ('x') followed by the main block. Mtimes are
// whole seconds and atime/ctime are never written, so a PAX header appears only for long or
// non-ASCII names, big ids/sizes, out-of-range mtimes and xattrs. Matching Go byte for byte is
// what lets a layer committed here get the same diffID as the same tree committed by Docker.
//
// Decoding accepts USTAR, PAX (records, global headers), GNU (long name/link entries, base-256
// numbers), STAR prefixes and V7. Names are Buffers throughout: a tar name is bytes, and an
// archive from elsewhere need not be UTF-8.
import { decodeName, encodeName } from '../fs/bytename.js';

export const BLOCK_SIZE = 512;

/** Go's maxSpecialFileSize: the most a PAX record set or a GNU long name may hold. */
export const MAX_SPECIAL_FILE_SIZE = 1 << 20;

/** Type flags (the byte at offset 156). */
export const TypeFlag = {
  Reg: 0x30, // '0'
  RegA: 0x00, // legacy regular file ('\0')
  Link: 0x31, // '1' hardlink
  Symlink: 0x32, // '2'
  Char: 0x33, // '3'
  Block: 0x34, // '4'
  Dir: 0x35, // '5'
  Fifo: 0x36, // '6'
  Cont: 0x37, // '7' contiguous file: a regular file to everyone but a few 1980s systems
  XHeader: 0x78, // 'x' PAX extended header for the next entry
  XGlobalHeader: 0x67, // 'g' PAX global header
  GnuLongName: 0x4c, // 'L'
  GnuLongLink: 0x4b, // 'K'
  GnuSparse: 0x53, // 'S'
} as const;

/** The entry kinds a layer can hold. */
export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

const TYPE_TO_FLAG: Record<EntryType, number> = {
  file: TypeFlag.Reg,
  hardlink: TypeFlag.Link,
  symlink: TypeFlag.Symlink,
  char: TypeFlag.Char,
  block: TypeFlag.Block,
  dir: TypeFlag.Dir,
  fifo: TypeFlag.Fifo,
};

/** One logical tar entry, as written or as read after merging PAX / GNU long-name headers. */
export interface TarHeader {
  readonly type: EntryType;
  /** Full path as stored in the archive (directories written with a trailing '/'). */
  readonly name: Buffer;
  /** Hardlink or symlink target; empty otherwise. */
  readonly linkname: Buffer;
  /** Permission bits including setuid/setgid/sticky (07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of content following the header (regular files only). */
  readonly size: number;
  /** Modification time, seconds since the epoch. */
  readonly mtime: number;
  /** Sub-second part of mtime, only ever non-zero when read from a PAX record. */
  readonly mtimeNs: number;
  /** Access time in seconds, only when read from a PAX atime record (never written). */
  readonly atime?: number;
  readonly uname: string;
  readonly gname: string;
  readonly devMajor: number;
  readonly devMinor: number;
  /** Extended attributes (SCHILY.xattr.*), name -> raw value. */
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

export class TarFormatError extends Error {}

// Field offsets and widths of a header block (POSIX ustar; GNU and STAR differ after 345).
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
  starPrefix: [345, 131],
  starTrailer: [508, 4],
} as const satisfies Record<string, readonly [number, number]>;

const MAGIC_USTAR = Buffer.from('ustar\0', 'latin1');
const VERSION_USTAR = Buffer.from('00', 'latin1');
const MAGIC_GNU = Buffer.from('ustar ', 'latin1');
const VERSION_GNU = Buffer.from(' \0', 'latin1');
const TRAILER_STAR = Buffer.from('tar\0', 'latin1');

export const PAX_SCHILY_XATTR = 'SCHILY.xattr.';

export function blockPadding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

function field(block: Buffer, f: readonly [number, number]): Buffer {
  return block.subarray(f[0], f[0] + f[1]);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Whether x fits an n-byte octal field with its NUL terminator (Go's fitsInOctal). */
function fitsInOctal(n: number, x: number): boolean {
  return x >= 0 && (n >= 22 || x < 8 ** (n - 1));
}

/** Copies s into b, NUL-terminating when there is room; truncates like Go's formatString. */
function formatString(b: Buffer, s: Buffer): void {
  s.copy(b, 0, 0, Math.min(s.length, b.length));
  if (s.length < b.length) b[s.length] = 0;
  // Go: some readers treat a V7 name that got truncated at a '/' as a directory, so a trailing
  // slash left by truncation is replaced with NUL.
  if (s.length > b.length && b[b.length - 1] === 0x2f) {
    let n = b.length;
    while (n > 0 && s[n - 1] === 0x2f) n--;
    b[n] = 0;
  }
}

/** Zero-padded octal leaving room for a NUL; 0 when x does not fit (the caller uses PAX then). */
function formatOctal(b: Buffer, x: number): void {
  const v = fitsInOctal(b.length, x) ? x : 0;
  let s = v.toString(8);
  const pad = b.length - s.length - 1;
  if (pad > 0) s = '0'.repeat(pad) + s;
  formatString(b, Buffer.from(s, 'latin1'));
}

function isAscii(s: Buffer): boolean {
  for (const c of s) if (c >= 0x80 || c === 0) return false;
  return true;
}

/** Go's toASCII: drops every byte that is not 7-bit ASCII (and NULs). */
function toAscii(s: Buffer): Buffer {
  return isAscii(s) ? s : Buffer.from(s.filter((c) => c < 0x80 && c !== 0));
}

/** Go's splitUSTARPath: a name longer than 100 bytes may be split at a '/' into prefix and name. */
function splitUstarPath(name: Buffer): { prefix: Buffer; suffix: Buffer } | undefined {
  let length = name.length;
  if (length <= 100 || !isAscii(name)) return undefined;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return undefined;
  return { prefix: name.subarray(0, i), suffix: name.subarray(i + 1) };
}

/** One PAX record: "<len> <key>=<value>\n", where len counts the whole record including itself. */
function formatPaxRecord(key: string, value: Buffer): Buffer {
  if (key === '' || key.includes('=') || key.includes('\0')) {
    throw new TarFormatError(`invalid PAX record key ${JSON.stringify(key)}`);
  }
  // An xattr name in a key is bytes, as file names are (fs/bytename.ts); Go writes them as they are.
  const body = Buffer.concat([Buffer.from(' '), encodeName(key), Buffer.from('='), value, Buffer.from('\n')]);
  let size = body.length + String(body.length).length;
  if (String(size).length + body.length !== size) size = String(size).length + body.length;
  return Buffer.concat([Buffer.from(String(size)), body]);
}

function setChecksum(block: Buffer, magic: Buffer, version: Buffer): void {
  magic.copy(block, F.magic[0]);
  version.copy(block, F.version[0]);
  block.fill(0x20, F.chksum[0], F.chksum[0] + F.chksum[1]);
  let sum = 0;
  for (const c of block) sum += c;
  // Six octal digits, NUL, space: Go writes the field this way, as GNU tar does.
  formatOctal(block.subarray(F.chksum[0], F.chksum[0] + 7), sum);
  block[F.chksum[0] + 7] = 0x20;
}

/** Go's path.Join(dir, "PaxHeaders.0", file) for the name of a PAX extended header. */
function paxHeaderName(name: Buffer): Buffer {
  const s = name.toString('latin1');
  const slash = s.lastIndexOf('/');
  const dir = s.slice(0, slash + 1);
  const file = s.slice(slash + 1);
  const parts = [...dir.split('/'), 'PaxHeaders.0', ...file.split('/')].filter((p) => p !== '' && p !== '.');
  // Names from Changes never contain '..', so Go's Clean has nothing more to do here.
  const joined = (s.startsWith('/') ? '/' : '') + parts.join('/');
  let out = toAscii(Buffer.from(joined, 'latin1'));
  if (out.length > 100) out = out.subarray(0, 100);
  let end = out.length;
  while (end > 0 && out[end - 1] === 0x2f) end--;
  return out.subarray(0, end);
}

/**
 * Encodes one entry's header: a single USTAR block when every field fits, otherwise a PAX 'x'
 * header, its records padded to a block, and the main block. Content and its padding are the
 * caller's to write.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  let ustarOk = true;

  const strField = (s: Buffer, width: number, key: string | undefined, splittable: boolean): void => {
    if (!isAscii(s) || s.length > width) {
      if (!splittable || splitUstarPath(s) === undefined) ustarOk = false;
      if (key === undefined) throw new TarFormatError(`cannot encode ${JSON.stringify(s.toString())}`);
      pax.set(key, s);
    }
  };
  const numField = (n: number, width: number, key: string | undefined, what: string): void => {
    if (!Number.isSafeInteger(n)) throw new TarFormatError(`${what} ${n} is not an integer`);
    if (!fitsInOctal(width, n)) {
      ustarOk = false;
      if (key === undefined) throw new TarFormatError(`${what} ${n} does not fit a tar header`);
      pax.set(key, Buffer.from(String(n)));
    }
  };

  strField(h.name, 100, 'path', true);
  strField(h.linkname, 100, 'linkpath', false);
  strField(Buffer.from(h.uname), 32, 'uname', false);
  strField(Buffer.from(h.gname), 32, 'gname', false);
  numField(h.mode, 8, undefined, 'mode');
  numField(h.uid, 8, 'uid', 'uid');
  numField(h.gid, 8, 'gid', 'gid');
  numField(h.size, 12, 'size', 'size');
  numField(h.devMajor, 8, undefined, 'device major');
  numField(h.devMinor, 8, undefined, 'device minor');
  numField(h.mtime, 12, 'mtime', 'mtime');
  if (h.mtimeNs !== 0) throw new TarFormatError('mtimes are written in whole seconds');
  for (const [name, value] of h.xattrs) {
    ustarOk = false;
    pax.set(PAX_SCHILY_XATTR + name, value);
  }

  const flag = TYPE_TO_FLAG[h.type];
  const main = Buffer.alloc(BLOCK_SIZE);
  main[F.typeflag[0]] = flag;
  formatOctal(field(main, F.mode), h.mode);
  formatOctal(field(main, F.uid), h.uid);
  formatOctal(field(main, F.gid), h.gid);
  formatOctal(field(main, F.size), h.size);
  formatOctal(field(main, F.mtime), h.mtime);
  formatOctal(field(main, F.devmajor), h.devMajor);
  formatOctal(field(main, F.devminor), h.devMinor);

  if (ustarOk) {
    const split = splitUstarPath(h.name);
    formatString(field(main, F.name), split ? split.suffix : h.name);
    if (split) formatString(field(main, F.prefix), split.prefix);
    formatString(field(main, F.linkname), h.linkname);
    formatString(field(main, F.uname), Buffer.from(h.uname));
    formatString(field(main, F.gname), Buffer.from(h.gname));
    setChecksum(main, MAGIC_USTAR, VERSION_USTAR);
    return main;
  }

  // PAX: records sorted bytewise by key (Go sorts its map keys), then the main block with
  // best-effort ASCII copies of the long fields and no prefix.
  const keys = [...pax.keys()].sort((a, b) => Buffer.compare(encodeName(a), encodeName(b)));
  const data = Buffer.concat(keys.map((k) => formatPaxRecord(k, pax.get(k)!)));
  if (data.length > MAX_SPECIAL_FILE_SIZE) throw new TarFormatError('PAX records exceed 1 MiB');
  const ext = Buffer.alloc(BLOCK_SIZE);
  ext[F.typeflag[0]] = TypeFlag.XHeader;
  formatString(field(ext, F.name), paxHeaderName(h.name));
  formatOctal(field(ext, F.mode), 0);
  formatOctal(field(ext, F.uid), 0);
  formatOctal(field(ext, F.gid), 0);
  formatOctal(field(ext, F.size), data.length);
  formatOctal(field(ext, F.mtime), 0);
  setChecksum(ext, MAGIC_USTAR, VERSION_USTAR);

  formatString(field(main, F.name), toAscii(h.name));
  formatString(field(main, F.linkname), toAscii(h.linkname));
  formatString(field(main, F.uname), toAscii(Buffer.from(h.uname)));
  formatString(field(main, F.gname), toAscii(Buffer.from(h.gname)));
  setChecksum(main, MAGIC_USTAR, VERSION_USTAR);
  return Buffer.concat([ext, data, Buffer.alloc(blockPadding(data.length)), main]);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK_SIZE);

// ---------------------------------------------------------------------------------------------
// Decoding

/** What one 512-byte header block says, before PAX / GNU long-name headers are merged in. */
export interface RawHeader {
  readonly typeflag: number;
  readonly name: Buffer;
  readonly linkname: Buffer;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly uname: Buffer;
  readonly gname: Buffer;
  readonly devMajor: number;
  readonly devMinor: number;
  readonly format: 'v7' | 'ustar' | 'gnu' | 'star';
}

/** The bytes up to the first NUL (or all of them). */
function parseString(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i >= 0 ? b.subarray(0, i) : b;
}

/** Octal with optional leading/trailing spaces and NULs, or GNU base-256 when the top bit is set. */
function parseNumeric(b: Buffer, what: string): number {
  if (b.length > 0 && (b[0]! & 0x80) !== 0) {
    const negative = (b[0]! & 0x40) !== 0;
    let x = 0n;
    for (let i = 0; i < b.length; i++) {
      let c = negative ? b[i]! ^ 0xff : b[i]!;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    if (negative) x = -x - 1n;
    if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new TarFormatError(`${what} out of range`);
    }
    return Number(x);
  }
  let start = 0;
  let end = b.length;
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++;
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
  const s = parseString(b.subarray(start, end)).toString('latin1');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid ${what} field ${JSON.stringify(s)}`);
  const n = parseInt(s, 8);
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`${what} out of range`);
  return n;
}

export function isZeroBlock(block: Buffer): boolean {
  for (const c of block) if (c !== 0) return false;
  return true;
}

/** Checks the checksum (unsigned, or signed as old Sun tar computed it) and guesses the format. */
export function blockFormat(block: Buffer): RawHeader['format'] | undefined {
  let stored: number;
  try {
    stored = parseNumeric(field(block, F.chksum), 'checksum');
  } catch {
    return undefined;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const c = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 0x100 : c;
  }
  if (stored !== unsigned && stored !== signed) return undefined;
  const magic = field(block, F.magic);
  if (magic.equals(MAGIC_USTAR)) return field(block, F.starTrailer).equals(TRAILER_STAR) ? 'star' : 'ustar';
  if (magic.equals(MAGIC_GNU) && field(block, F.version).equals(VERSION_GNU)) return 'gnu';
  return 'v7';
}

/** Decodes one non-zero header block; throws TarFormatError when it is not a tar header. */
export function decodeBlock(block: Buffer): RawHeader {
  const format = blockFormat(block);
  if (format === undefined) throw new TarFormatError('not a tar header (checksum mismatch)');
  let name: Buffer = parseString(field(block, F.name));
  let uname: Buffer = Buffer.alloc(0);
  let gname: Buffer = Buffer.alloc(0);
  let devMajor = 0;
  let devMinor = 0;
  if (format !== 'v7') {
    uname = parseString(field(block, F.uname));
    gname = parseString(field(block, F.gname));
    devMajor = parseNumeric(field(block, F.devmajor), 'devmajor');
    devMinor = parseNumeric(field(block, F.devminor), 'devminor');
    // GNU's format has atime/ctime where POSIX has the prefix.
    const prefix =
      format === 'ustar' ? parseString(field(block, F.prefix)) : format === 'star' ? parseString(field(block, F.starPrefix)) : undefined;
    if (prefix !== undefined && prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  return {
    typeflag: block[F.typeflag[0]]!,
    name: Buffer.from(name),
    linkname: Buffer.from(parseString(field(block, F.linkname))),
    mode: parseNumeric(field(block, F.mode), 'mode'),
    uid: parseNumeric(field(block, F.uid), 'uid'),
    gid: parseNumeric(field(block, F.gid), 'gid'),
    size: parseNumeric(field(block, F.size), 'size'),
    mtime: parseNumeric(field(block, F.mtime), 'mtime'),
    uname: Buffer.from(uname),
    gname: Buffer.from(gname),
    devMajor,
    devMinor,
    format,
  };
}

/** Parses a PAX record set into key -> raw value (later records win, as in Go). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let rest = data;
  while (rest.length > 0) {
    const sp = rest.indexOf(0x20);
    if (sp <= 0) throw new TarFormatError('malformed PAX record');
    const lenStr = rest.subarray(0, sp).toString('latin1');
    const n = /^[0-9]+$/.test(lenStr) ? parseInt(lenStr, 10) : NaN;
    if (!(n >= 5) || n > rest.length || rest[n - 1] !== 0x0a) throw new TarFormatError('malformed PAX record');
    const rec = rest.subarray(sp + 1, n - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('malformed PAX record');
    const key = decodeName(rec.subarray(0, eq));
    const value = Buffer.from(rec.subarray(eq + 1));
    if (key.includes('\0')) throw new TarFormatError('malformed PAX record');
    if (['path', 'linkpath', 'uname', 'gname'].includes(key) && value.includes(0)) {
      throw new TarFormatError(`PAX record ${key} contains NUL`);
    }
    out.set(key, value);
    rest = rest.subarray(n);
  }
  return out;
}

/** PAX time "secs[.frac]" into whole seconds and nanoseconds (fraction truncated to 9 digits). */
export function parsePaxTime(v: string): { sec: number; nsec: number } {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(v);
  if (!m) throw new TarFormatError(`invalid PAX time ${JSON.stringify(v)}`);
  const sec = parseInt(m[2]!, 10);
  const nsec = parseInt(((m[3] ?? '') + '000000000').slice(0, 9), 10);
  if (!Number.isSafeInteger(sec)) throw new TarFormatError(`PAX time out of range`);
  if (m[1] === '-') return nsec === 0 ? { sec: -sec, nsec: 0 } : { sec: -sec - 1, nsec: 1e9 - nsec };
  return { sec, nsec };
}
