// What a build remembers of a whole directory that a COPY or ADD took from the context: the bytes
// its checksum hashed for it (src/builder/tree-hasher.ts: every name, mode, size and content
// digest below it) and the stamp of the tree they were taken from (native/helper/stamp.c: a
// digest of every entry's lstat). A later build that finds the same stamp hashes the same bytes
// again instead of walking the tree: the helper stamps 20,000 files in a third of the time
// Node's walk takes, even with every file's digest in the metadata cache (hashcache.ts).
//
// Why a stamp can stand for the walk: every field the walk's text depends on, and the content of
// every file, moves its entry's ctime when it changes, and the stamp covers every entry's ctime,
// inode, size, mode and mtime. A stamp is only recorded when none of its ctimes is within
// RACY_MARGIN_MS of the moment it was taken, as the metadata cache records a file's digest; so a
// change made afterwards always shows in a later stamp (see hashcache.ts's header).
//
// The bytes depend on more than the tree: the name the source takes in the text, the
// .dockerignore rules (what is hidden), whether owners are hashed. They are the memo's key, with
// the context's root and the directory's path. Directories the rules hide as a whole are left out
// of the stamp (`prune`), as the walk that made the bytes found them; with a rule that re-includes
// (`!`), none are, as hiding then depends on what a directory holds.
//
// One file per key, `<dir>/<sha256 of the key>` (in the store's contexthash/trees), replaced
// atomically (renamed into place, not fsynced):
//   tsbuild-treememo 1 <key as JSON>
//   {"stamp": "sha256:…" or null, "prune": [paths], "bytes": N}
//   N bytes: what the checksum hashed (names that are not UTF-8 as their own bytes)
//   end <sha256 hex of everything above>
// A file that does not read back exactly so is ignored: a memo can only save a walk.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { AtomicFile } from '../fs/atomic.js';

const MAGIC = 'tsbuild-treememo 1';
const END = /^end ([0-9a-f]{64})\n$/;

/** What the bytes of a directory's walk depend on besides the tree. */
export interface TreeMemoKey {
  /** The context's root (a real path). */
  readonly root: string;
  /** The directory, relative to the root. */
  readonly path: string;
  /** The name it takes in the checksum's text. */
  readonly name: string;
  /** The .dockerignore text in force ('' for none). */
  readonly ignore: string;
  /** Whether owners are in the text. */
  readonly owners: boolean;
}

export interface TreeMemo {
  /** The stamp the bytes were taken with; null when none could be recorded (too recent, or another prune). */
  readonly stamp: string | null;
  /** Paths relative to the directory that the walk found hidden as a whole; the stamp leaves them out. */
  readonly prune: readonly string[];
  /** What the checksum hashed for the directory, in order. */
  readonly bytes: readonly Buffer[];
}

export class TreeMemos {
  /** `dir`: where the memo files are (the store's contexthash/trees). */
  constructor(readonly dir: string) {}

  private fileOf(key: TreeMemoKey): { file: string; keyText: string } {
    const keyText = JSON.stringify([key.root, key.path, key.name, key.ignore, key.owners]);
    return { file: join(this.dir, createHash('sha256').update(keyText).digest('hex')), keyText };
  }

  /** The memo recorded for `key`, if there is an intact one. */
  async read(key: TreeMemoKey): Promise<TreeMemo | undefined> {
    const { file, keyText } = this.fileOf(key);
    const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return data && parseMemo(data, keyText);
  }

  /** Records `memo` for `key`, replacing what was there; its bytes are written as they are, not joined. */
  async write(key: TreeMemoKey, memo: TreeMemo): Promise<void> {
    const { file, keyText } = this.fileOf(key);
    const length = memo.bytes.reduce((n, b) => n + b.length, 0);
    const head = `${MAGIC} ${keyText}\n${JSON.stringify({ stamp: memo.stamp, prune: memo.prune, bytes: length })}\n`;
    const digest = createHash('sha256').update(head);
    await mkdir(this.dir, { recursive: true });
    // Not fsynced: a power cut may leave the file short, and a short file is no memo (its end
    // line). A build that records one need not wait for the disk.
    const out = AtomicFile.create(file, { durable: false });
    try {
      for (const b of memo.bytes) digest.update(b);
      out.stream.write(head);
      for (const b of memo.bytes) {
        if (!out.stream.write(b)) await once(out.stream, 'drain');
      }
      out.stream.end(`end ${digest.digest('hex')}\n`);
      await out.written;
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err;
    }
  }
}

function parseMemo(data: Buffer, keyText: string): TreeMemo | undefined {
  const first = data.indexOf(0x0a);
  const second = first === -1 ? -1 : data.indexOf(0x0a, first + 1);
  if (second === -1 || data.toString('utf8', 0, first) !== `${MAGIC} ${keyText}`) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(data.toString('utf8', first + 1, second));
  } catch {
    return undefined;
  }
  if (!isMeta(meta)) return undefined;
  const bodyEnd = second + 1 + meta.bytes;
  const end = END.exec(data.toString('latin1', bodyEnd));
  if (!end || createHash('sha256').update(data.subarray(0, bodyEnd)).digest('hex') !== end[1]) return undefined;
  return { stamp: meta.stamp, prune: meta.prune, bytes: [data.subarray(second + 1, bodyEnd)] };
}

interface Meta {
  stamp: string | null;
  prune: string[];
  bytes: number;
}

function isMeta(v: unknown): v is Meta {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    (m.stamp === null || typeof m.stamp === 'string') &&
    Array.isArray(m.prune) &&
    m.prune.every((p) => typeof p === 'string') &&
    Number.isSafeInteger(m.bytes) &&
    (m.bytes as number) >= 0
  );
}
