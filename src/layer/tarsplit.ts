// tar-split files (layerdb/sha256/<chainID>/tar-split.json.gz), in vbatts/tar-split's storage
// format so Docker and tsbuild can read each other's:
//
//   gzip( JSON line per entry )
//   {"type":2,"payload":"<base64 raw bytes>","position":0}                 a raw segment: headers, padding, end blocks
//   {"type":1,"name":"etc/passwd","size":1234,"payload":"<base64 crc64>","position":1}   a file's content
//
// A file entry is written for every tar entry, whatever its type; `size` and `payload` (the
// CRC-64/ISO of the content, 8 big-endian bytes) are omitted / null when there is no content.
// A name that is not UTF-8 goes into "name_raw" (base64) instead of "name". Field order and
// escaping follow Go's encoding/json, which is what wrote Docker's files.
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../errors.js';
import { AtomicFile } from '../fs/atomic.js';
import { Crc64 } from './crc64.js';
import type { TarHeader } from './tarheader.js';
import type { TarItem } from './tarreader.js';

export type TarSplitEntry =
  | { readonly type: 'segment'; readonly payload: Buffer }
  | { readonly type: 'file'; readonly name: Buffer; readonly size: number; readonly crc: Buffer | undefined };

/** Go's json.Marshal of a string: JSON.stringify plus HTML-safe escapes of <, >, & and U+2028/9. */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's path.Clean, for the duplicate check (tar-split keys names by their cleaned form). */
function cleanKey(name: Buffer): string {
  const s = posix.normalize(name.toString('latin1'));
  return s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s;
}

const FLUSH_AT = 64 * 1024;

/** Writes a tar-split file atomically, entry by entry, with backpressure. */
export class TarSplitWriter {
  private readonly gzip: Gzip;
  private readonly out: AtomicFile;
  private readonly piped: Promise<void>;
  private position = 0;
  private text = '';
  private readonly seen = new Set<string>();

  constructor(path: string) {
    // Not fsynced here: the file is private (a publish's temp dir, a scratch dir) until a
    // layer's write set links it in and fsyncs it with the rest (store/layerdb.ts).
    this.out = AtomicFile.create(path, { durable: false });
    this.gzip = createGzip();
    this.piped = pipeline(this.gzip, this.out.stream);
    this.piped.catch(() => undefined); // a failure is reported by flush() or commit()
  }

  async segment(payload: Buffer): Promise<void> {
    if (payload.length === 0) return;
    await this.add(`{"type":2,"payload":"${payload.toString('base64')}","position":${this.position}}\n`);
  }

  /** Records a tar entry; throws InvalidInputError for a second entry with the same (cleaned) path, as tar-split does. */
  async file(name: Buffer, size: number, crc: Buffer | undefined): Promise<void> {
    const key = cleanKey(name);
    if (this.seen.has(key)) {
      throw new InvalidInputError(
        `archive has more than one entry for ${JSON.stringify(name.toString())}: duplicate paths are not supported`,
      );
    }
    this.seen.add(key);
    let line = '{"type":1';
    if (name.length > 0) {
      line += isUtf8(name) ? `,"name":${goJsonString(name.toString('utf8'))}` : `,"name_raw":"${name.toString('base64')}"`;
    }
    if (size !== 0) line += `,"size":${size}`;
    line += `,"payload":${crc === undefined ? 'null' : `"${crc.toString('base64')}"`},"position":${this.position}}\n`;
    await this.add(line);
  }

  private async add(line: string): Promise<void> {
    this.position++;
    this.text += line;
    if (this.text.length >= FLUSH_AT) await this.flush();
  }

  private async flush(): Promise<void> {
    const chunk = this.text;
    this.text = '';
    if (chunk === '' || this.gzip.write(chunk)) return;
    // Wait for the gzip buffer to drain, or for the pipeline to fail (then drain never comes).
    await Promise.race([once(this.gzip, 'drain'), this.piped]);
  }

  /** Finishes the file and renames it into place. */
  async commit(): Promise<void> {
    await this.flush();
    this.gzip.end();
    await this.piped;
    await this.out.commit();
  }

  /** Discards the temporary file. */
  async abort(): Promise<void> {
    this.gzip.destroy();
    await this.piped.catch(() => undefined);
    await this.out.abort();
  }
}

/** Reads a tar-split file entry by entry. */
export async function* readTarSplit(path: string): AsyncGenerator<TarSplitEntry, void, undefined> {
  // 256 KiB pieces instead of zlib's and fs's defaults (16 and 64 KiB): a tar-split is mostly
  // base64 and JSON, and each piece costs a round of stream and readline bookkeeping.
  const gunzip = createGunzip({ chunkSize: 1 << 18 });
  const piped = pipeline(createReadStream(path, { highWaterMark: 1 << 18 }), gunzip);
  piped.catch(() => undefined); // awaited below, once the lines are read
  const lines = createInterface({ input: gunzip, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line === '') continue;
      let e: { type?: unknown; name?: unknown; name_raw?: unknown; size?: unknown; payload?: unknown };
      try {
        e = JSON.parse(line) as typeof e;
      } catch {
        throw new Error(`${path}:${lineNo}: not a tar-split entry`);
      }
      const payload = typeof e.payload === 'string' ? Buffer.from(e.payload, 'base64') : undefined;
      if (e.type === 2) {
        if (payload === undefined) throw new Error(`${path}:${lineNo}: segment without payload`);
        yield { type: 'segment', payload };
      } else if (e.type === 1) {
        const name =
          typeof e.name_raw === 'string' && e.name_raw !== ''
            ? Buffer.from(e.name_raw, 'base64')
            : Buffer.from(typeof e.name === 'string' ? e.name : '', 'utf8');
        const size = typeof e.size === 'number' ? e.size : 0;
        if (!Number.isSafeInteger(size) || size < 0) throw new Error(`${path}:${lineNo}: invalid size`);
        yield { type: 'file', name, size, crc: payload };
      } else {
        throw new Error(`${path}:${lineNo}: unknown tar-split entry type ${JSON.stringify(e.type)}`);
      }
    }
    await piped;
  } finally {
    lines.close();
    gunzip.destroy();
  }
}

/** An entry read from an archive while its tar-split is being recorded. */
export interface RecordedEntry {
  readonly header: TarHeader;
  /** The content; may be iterated in several goes, and is skipped (still checksummed) if left unread. */
  readonly body: AsyncIterable<Buffer>;
}

/**
 * Passes a tar's entries through while recording its tar-split: segments as they come, and each
 * entry's name, size and content checksum once its content has gone by (tar-split's
 * NewInputTarStream). Global PAX headers are recorded and not passed on.
 */
export async function* disassemble(items: AsyncIterable<TarItem>, out: TarSplitWriter): AsyncGenerator<RecordedEntry, void, undefined> {
  for await (const item of items) {
    if (item.kind === 'segment') {
      await out.segment(item.bytes);
    } else if (item.kind === 'global') {
      await out.file(item.name, 0, undefined);
    } else {
      const { header, body } = item;
      const crc = header.size > 0 ? new Crc64() : undefined;
      const tapped: AsyncIterable<Buffer> = {
        async *[Symbol.asyncIterator]() {
          for await (const chunk of body) {
            crc?.update(chunk);
            yield chunk;
          }
        },
      };
      yield { header, body: tapped };
      for await (const _ of tapped); // whatever the consumer did not read still counts
      await out.file(header.name, header.size, crc?.digest());
    }
  }
}

/**
 * The tar-split a tar would be recorded with, computed as the tar is read and written nowhere:
 * segments as they come, and each entry's name, size and CRC-64 once its content has gone by.
 * What analysis reads of a layer that is not in the store, so that its entries and content
 * fingerprints are the ones a stored layer's tar-split gives.
 */
export async function* tarSplitOf(items: AsyncIterable<TarItem>): AsyncGenerator<TarSplitEntry, void, undefined> {
  for await (const item of items) {
    if (item.kind === 'segment') {
      yield { type: 'segment', payload: item.bytes };
    } else if (item.kind === 'global') {
      yield { type: 'file', name: item.name, size: 0, crc: undefined };
    } else {
      const crc = item.header.size > 0 ? new Crc64() : undefined;
      for await (const chunk of item.body) crc?.update(chunk);
      yield { type: 'file', name: item.header.name, size: item.header.size, crc: crc?.digest() };
    }
  }
}
