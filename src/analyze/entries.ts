// A stored layer's entries, read from its tar-split alone: no file of the layer is opened, which
// is what keeps analysing a large image to seconds. The tar-split names every entry with its
// content size and CRC-64 (a good enough content fingerprint to tell a rewritten file from a
// re-stored identical one), and keeps each entry's raw tar header bytes in the segment before it;
// those give the entry's type, owner, mode and link target.
import { isUtf8 } from 'node:buffer';
import { posix } from 'node:path';
import { ByteReader, readTar, readTarSplit, type TarHeader } from '../layer/index.js';
import { BLOCK_SIZE } from '../layer/tarheader.js';
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
  /** A hardlink's target path (cleaned like `path`). */
  readonly linkTarget: string | undefined;
}

/**
 * Reads the entries of the layer whose tar-split is at `tarSplitPath`, in tar order. Whiteout
 * files become `whiteout` entries for the path they delete, opaque markers `opaque` entries for
 * their directory; AUFS bookkeeping and PAX global headers are skipped.
 */
export async function* readLayerEntries(tarSplitPath: string): AsyncGenerator<LayerEntry, void, undefined> {
  let segments: Buffer[] = [];
  for await (const item of readTarSplit(tarSplitPath)) {
    if (item.type === 'segment') {
      segments.push(item.payload);
      continue;
    }
    const raw = segments.length === 1 ? segments[0]! : Buffer.concat(segments);
    segments = [];
    // The segment before an entry is the previous entry's padding (under a block) followed by
    // this entry's header blocks (whole blocks): the remainder modulo a block is the padding.
    const header = await decodeHeader(raw.subarray(raw.length % BLOCK_SIZE), tarSplitPath, item.name);
    if (header === undefined) continue;
    const entry = toEntry(header, item.size, item.crc);
    if (entry !== undefined) yield entry;
  }
}

/** The merged header (PAX records and GNU long names applied) of one entry's header blocks. */
async function decodeHeader(blocks: Buffer, where: string, name: Buffer): Promise<TarHeader | undefined> {
  try {
    for await (const item of readTar(new ByteReader(once(blocks)))) {
      if (item.kind === 'entry') return item.header;
      if (item.kind === 'global') return undefined;
    }
  } catch (err) {
    throw new Error(`${where}: the tar header of ${JSON.stringify(name.toString())} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  throw new Error(`${where}: no tar header recorded before ${JSON.stringify(name.toString())}`);
}

async function* once(b: Buffer): AsyncGenerator<Buffer, void, undefined> {
  yield b;
}

function toEntry(h: TarHeader, size: number, crc: Buffer | undefined): LayerEntry | undefined {
  const path = cleanPath(h.name);
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const dir = path.slice(0, Math.max(slash, 0));
    if (base === WHITEOUT_OPAQUE) return { kind: 'opaque', path: dir };
    if (base.startsWith(WHITEOUT_META_PREFIX)) return undefined;
    return { kind: 'whiteout', path: slash < 0 ? base.slice(WHITEOUT_PREFIX.length) : `${dir}/${base.slice(WHITEOUT_PREFIX.length)}` };
  }
  const owner = { mode: h.mode, uid: h.uid, gid: h.gid };
  switch (h.type) {
    case 'file':
      return {
        kind: 'file',
        path,
        bytes: size,
        fingerprint: size > 0 && crc !== undefined ? `${size}:${crc.toString('hex')}` : undefined,
        linkTarget: undefined,
        ...owner,
      };
    case 'symlink':
      return { kind: 'symlink', path, bytes: h.linkname.length, fingerprint: `->${h.linkname.toString('latin1')}`, linkTarget: undefined, ...owner };
    case 'hardlink':
      return { kind: 'hardlink', path, bytes: 0, fingerprint: undefined, linkTarget: cleanPath(h.linkname), ...owner };
    case 'dir':
      return { kind: 'dir', path, bytes: 0, fingerprint: undefined, linkTarget: undefined, ...owner };
    default:
      return { kind: 'special', path, bytes: 0, fingerprint: undefined, linkTarget: undefined, ...owner };
  }
}

/**
 * A tar name as an image path: no leading `./` or `/`, no trailing `/`, `.` and `..` resolved
 * (never above the root). A name that is not UTF-8 is kept byte for byte as latin1, so two
 * different names never become the same path.
 */
export function cleanPath(name: Buffer): string {
  const s = name.toString(isUtf8(name) ? 'utf8' : 'latin1');
  const clean = posix.normalize(`/${s}`).replace(/^\/+|\/+$/g, '');
  return clean === '.' ? '' : clean;
}
