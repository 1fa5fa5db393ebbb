// A stored layer's entries, read from its tar-split alone: no file of the layer is opened, which
// is what keeps analysing a large image to seconds. The tar-split names every entry (its name
// already merged from PAX or GNU long-name records) with its content size and CRC-64 (a good
// enough content fingerprint to tell a rewritten file from a re-stored identical one), and keeps
// each entry's raw tar header blocks in the segment before it; those give the entry's type,
// owner, mode and link target.
import { isUtf8 } from 'node:buffer';
import { posix } from 'node:path';
import type { TarSplitEntry } from '../layer/tarsplit.js';
import { BLOCK_SIZE, TypeFlag, decodeBlock, parsePaxRecords, type RawHeader } from '../layer/tarheader.js';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../layer/whiteout.js';

/** What a layer holds at a path: its content, or a deletion of what lower layers hold there. */
export type LayerEntry = StoredEntry | Deletion;

/** `whiteout`: the path is deleted; `opaque`: the directory hides what lower layers have below it. */
export interface Deletion {
  readonly kind: 'whiteout' | 'opaque';
  readonly path: string;
}

export interface StoredEntry {
  readonly kind: 'file' | 'dir' | 'symlink' | 'hardlink' | 'special';
  /** Image path without the leading '/' ('' is the root), cleaned like Go's path.Clean. */
  readonly path: string;
  /**
   * Bytes this entry adds to the layer's size as Docker counts it (moby's directory.Size):
   * a regular file's content, a symlink's target length, nothing for the rest.
   */
  readonly bytes: number;
  /** Equal for equal content: size and CRC-64 for files, the target for symlinks. */
  readonly fingerprint: string | undefined;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** A hardlink's target path (cleaned like `path`); a symlink's target as stored. */
  readonly linkTarget: string | undefined;
}

/**
 * Reads the entries of a layer from its tar-split (`what` names it in errors), in tar order. Whiteout
 * files become `whiteout` entries for the path they delete, opaque markers `opaque` entries for
 * their directory; AUFS bookkeeping and PAX global headers are skipped.
 */
export async function* readLayerEntries(
  tarSplit: AsyncIterable<TarSplitEntry>,
  what = 'layer',
): AsyncGenerator<LayerEntry, void, undefined> {
  let segments: Buffer[] = [];
  for await (const item of tarSplit) {
    if (item.type === 'segment') {
      segments.push(item.payload);
      continue;
    }
    const raw = segments.length === 1 ? segments[0]! : Buffer.concat(segments);
    segments = [];
    // The segment before an entry is the previous entry's padding (under a block) followed by
    // this entry's header blocks (whole blocks): the remainder modulo a block is the padding.
    let header: Header | undefined;
    try {
      header = decodeHeaderBlocks(raw.subarray(raw.length % BLOCK_SIZE));
    } catch (err) {
      throw new Error(`${what}: the tar header of ${JSON.stringify(item.name.toString())} cannot be read: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (header === undefined) continue;
    const entry = toEntry(item.name, header, item.size, item.crc);
    if (entry !== undefined) yield entry;
  }
}

/** The header fields analysis needs. */
interface Header {
  readonly typeflag: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkname: Buffer;
}

/**
 * An entry's header blocks, decoded: the main block, with the PAX records (`x`) and GNU long
 * link name (`K`) before it applied to the fields used here, as Go's reader (and tarreader.ts)
 * merges them; the name comes from the tar-split, which recorded the merged one. Synchronous,
 * because it runs once per entry of every layer. Undefined for a PAX global header (`g`).
 */
function decodeHeaderBlocks(blocks: Buffer): Header | undefined {
  let pax: Map<string, Buffer> | undefined;
  let longLink: Buffer | undefined;
  for (let off = 0; off + BLOCK_SIZE <= blocks.length;) {
    const raw: RawHeader = decodeBlock(blocks.subarray(off, off + BLOCK_SIZE));
    off += BLOCK_SIZE;
    const data = blocks.subarray(off, off + raw.size);
    switch (raw.typeflag) {
      case TypeFlag.XGlobalHeader:
        return undefined;
      case TypeFlag.XHeader:
        pax = parsePaxRecords(data);
        break;
      case TypeFlag.GnuLongLink:
        longLink = data.subarray(0, data.indexOf(0) >= 0 ? data.indexOf(0) : data.length);
        break;
      case TypeFlag.GnuLongName:
        break;
      default: {
        const number = (key: string, own: number): number => {
          const v = pax?.get(key);
          return v !== undefined && v.length > 0 && /^[0-9]+$/.test(v.toString('latin1')) ? Number(v.toString('latin1')) : own;
        };
        const paxLink = pax?.get('linkpath');
        const linkname =
          longLink !== undefined && longLink.length > 0 ? longLink : paxLink !== undefined && paxLink.length > 0 ? paxLink : raw.linkname;
        return { typeflag: raw.typeflag, mode: raw.mode & 0o7777, uid: number('uid', raw.uid), gid: number('gid', raw.gid), linkname };
      }
    }
    off += Math.ceil(raw.size / BLOCK_SIZE) * BLOCK_SIZE;
  }
  throw new Error('no tar header recorded before it');
}

function toEntry(name: Buffer, h: Header, size: number, crc: Buffer | undefined): LayerEntry | undefined {
  const path = cleanPath(name);
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const dir = path.slice(0, Math.max(slash, 0));
    if (base === WHITEOUT_OPAQUE) return { kind: 'opaque', path: dir };
    if (base.startsWith(WHITEOUT_META_PREFIX)) return undefined;
    const deleted = base.slice(WHITEOUT_PREFIX.length);
    return { kind: 'whiteout', path: slash < 0 ? deleted : `${dir}/${deleted}` };
  }
  const common = { path, mode: h.mode, uid: h.uid, gid: h.gid };
  // A pre-POSIX archive marks a directory only by the trailing slash of its name.
  const typeflag = h.typeflag === TypeFlag.RegA && name.at(-1) === 0x2f ? TypeFlag.Dir : h.typeflag;
  switch (typeflag) {
    case TypeFlag.RegA:
    case TypeFlag.Reg:
    case TypeFlag.Cont:
      return {
        kind: 'file',
        bytes: size,
        fingerprint: size > 0 && crc !== undefined ? `${size}:${crc.toString('hex')}` : undefined,
        linkTarget: undefined,
        ...common,
      };
    case TypeFlag.Symlink:
      return {
        kind: 'symlink',
        bytes: h.linkname.length,
        fingerprint: `->${h.linkname.toString('latin1')}`,
        linkTarget: h.linkname.toString(isUtf8(h.linkname) ? 'utf8' : 'latin1'),
        ...common,
      };
    case TypeFlag.Link:
      return { kind: 'hardlink', bytes: 0, fingerprint: undefined, linkTarget: cleanPath(h.linkname), ...common };
    case TypeFlag.Dir:
      return { kind: 'dir', bytes: 0, fingerprint: undefined, linkTarget: undefined, ...common };
  }
  return { kind: 'special', bytes: 0, fingerprint: undefined, linkTarget: undefined, ...common };
}

/**
 * A tar name as an image path: no leading `./` or `/`, no trailing `/`, `.` and `..` resolved
 * (never above the root), as Docker applies it. A name that is not UTF-8 keeps its bytes (as
 * latin1) rather than turning into replacement characters that would merge distinct names.
 */
export function cleanPath(name: Buffer): string {
  const s = name.toString(isUtf8(name) ? 'utf8' : 'latin1');
  const clean = posix.normalize(`/${s}`).replace(/^\/+|\/+$/g, '');
  return clean === '.' ? '' : clean;
}
