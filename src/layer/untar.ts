// ADD's local archives: recognise one and unpack it into a directory of the image, as BuildKit
// does (solver/llbsolver/file/unpack.go) with Docker's Untar rules (Unpack in moby/go-archive's
// archive.go, run chrooted into the destination by chrootarchive/archive.go). The unpacking is
// extract.ts with UNTAR_RULES (extract-rules.ts); this file adds recognition and the archive's
// name in errors.
//
// Recognition is by content, never by name: the first bytes name a compression Docker knows
// (gzip, bzip2, xz, zstd, or none) and the first decompressed block must be a tar header with a
// valid checksum. Anything else is copied as a plain file, and so is a file that cannot be
// decompressed (truncated, corrupt, program missing): unpack.go's isArchivePath says no then.
//
// What lands, by those rules:
//  - entry names are relative to the destination; a leading `/` is dropped, and a name that
//    climbs out with `..` fails the whole ADD;
//  - parent directories resolve inside the destination as if it were `/`: a symlink's absolute
//    target is read inside it and `..` stops at it, as in Docker's chroot; missing ones are
//    created 0755 root, except behind a dangling symlink, which fails the ADD as in Docker;
//  - an existing entry is replaced (a directory with all it holds), except that directories
//    merge; a later entry for the same path replaces an earlier one;
//  - owner from the archive, or --chown for every entry; mode (setuid included), mtime and a
//    later atime from the archive; directories get their times once everything is in; --chmod
//    does not apply;
//  - hardlinks may point at anything inside the destination; symlink targets are kept verbatim;
//  - `.wh.` names are plain files; extended attributes are not restored (ExtractRules.xattrs).
import { createReadStream, type Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { TsbuildError } from '../errors.js';
import { displayName, hostPath as fsPath } from '../fs/bytename.js';
import type { Ownership } from '../fs/mkdirall.js';
import { ByteReader } from './bytereader.js';
import { decompress } from './decompress.js';
import { extract, type ExtractEntry } from './extract.js';
import { UNTAR_RULES } from './extract-rules.js';
import { BLOCK_SIZE, blockFormat, isZeroBlock } from './tarheader.js';
import { readTar, tarReadError } from './tarreader.js';

/**
 * Whether the file at `path` is a tar archive ADD unpacks: a regular file that decompresses to
 * something opening with a tar header (unpack.go's isArchivePath).
 */
export async function isTarArchive(path: string, stats?: Stats): Promise<boolean> {
  const st = stats ?? (await lstat(fsPath(path)));
  if (!st.isFile()) return false;
  const src = new ByteReader(decompress(createReadStream(fsPath(path)), displayName(path)));
  try {
    const block = await src.read(BLOCK_SIZE);
    return block.length === BLOCK_SIZE && !isZeroBlock(block) && blockFormat(block) !== undefined;
  } catch (e) {
    // The decompressor failed (or is missing): Docker copies such a file as it is. A failure to
    // read the file itself is not an answer, and goes up.
    if (e instanceof TsbuildError) return false;
    throw e;
  } finally {
    await src.cancel();
  }
}

export interface UntarOptions {
  /** Host path of the archive. */
  readonly archive: string;
  /** Host path of the destination directory (existing); entries resolve inside it as if it were `/`. */
  readonly dest: string;
  /** --chown: owner of every entry. Without it, each entry keeps the archive's uid/gid. */
  readonly owner?: Ownership;
  /** How to name the archive in errors (its path in the build context). */
  readonly name: string;
}

/** Unpacks the tar archive (compressed or not) at `opts.archive` into `opts.dest` by Docker's Untar rules. */
export async function untar(opts: UntarOptions): Promise<void> {
  const src = new ByteReader(decompress(createReadStream(fsPath(opts.archive)), opts.name));
  // Read to the very end, past the end-of-archive blocks: a decompressor's failure shows only there.
  const entries = async function* (): AsyncGenerator<ExtractEntry> {
    for await (const item of readTar(src)) if (item.kind === 'entry') yield item;
  };
  try {
    await extract(entries(), opts.dest, {
      ...UNTAR_RULES,
      owner: opts.owner ?? 'from-archive',
      naming: { entry: `${opts.name}: entry`, archive: 'this archive', root: 'the destination' },
    });
  } catch (e) {
    await src.cancel().catch(() => undefined); // the error being thrown says more than a failed close
    throw tarReadError(e, `tar archive ${opts.name}`, src.offset);
  }
}
