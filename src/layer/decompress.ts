// Tars arrive compressed or not: layers (the diffID is always of the uncompressed bytes), image
// archives, and ADD's local archives. Compression is recognised by magic bytes, never by file
// name, as Detect in moby/go-archive's compression/compression.go does for layers and ADD alike.
// gzip is Node's own zlib; bzip2, xz and zstd go through the system tools, streamed.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { ByteReader } from './bytereader.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const MAGIC: readonly (readonly [Exclude<Compression, 'none'>, Buffer])[] = [
  ['gzip', Buffer.from([0x1f, 0x8b, 0x08])],
  ['bzip2', Buffer.from('BZh', 'latin1')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
];

const TOOLS: Record<'bzip2' | 'xz' | 'zstd', { command: string; aptPackage: string }> = {
  bzip2: { command: 'bzip2', aptPackage: 'bzip2' },
  xz: { command: 'xz', aptPackage: 'xz-utils' },
  zstd: { command: 'zstd', aptPackage: 'zstd' },
};

/**
 * A zstd stream may open with a skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian,
 * then a 4-byte length), which `zstd -d` passes over; Detect accepts it given 8 bytes.
 */
const ZSTD_SKIPPABLE = { magic: 0x184d2a50, mask: 0xfffffff0, minLength: 8 } as const;

/** The most bytes recognition looks at. */
const HEAD_BYTES = ZSTD_SKIPPABLE.minLength;

export function detectCompression(head: Buffer): Compression {
  for (const [kind, magic] of MAGIC) if (head.subarray(0, magic.length).equals(magic)) return kind;
  if (head.length >= ZSTD_SKIPPABLE.minLength && (head.readUInt32LE(0) & ZSTD_SKIPPABLE.mask) >>> 0 === ZSTD_SKIPPABLE.magic) return 'zstd';
  return 'none';
}

/**
 * The uncompressed bytes of `input`. The returned iterable must be consumed (or returned early)
 * by exactly one reader; a failing decompressor surfaces as an InvalidInputError from it (a
 * missing program as a TsbuildError: the host's fault). `name` says what is being decompressed
 * in those errors: "cannot decompress <name> (xz): ...".
 */
export async function* decompress(input: AsyncIterable<Uint8Array>, name = 'the layer'): AsyncGenerator<Buffer, void, undefined> {
  const reader = new ByteReader(input);
  try {
    yield* decompressFrom(reader, name);
  } finally {
    // Stopped early (an error downstream): stop the input too, so a download or file read ends.
    await reader.cancel();
  }
}

async function* decompressFrom(reader: ByteReader, name: string): AsyncGenerator<Buffer, void, undefined> {
  const head = await reader.read(HEAD_BYTES);
  /** Set when reading the input itself failed (a download cut short), as opposed to the decompressor. */
  let inputError: unknown;
  const all = async function* (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const chunk = await reader.readSome(1 << 20).catch((e: unknown) => {
        inputError = e;
        throw e;
      });
      if (chunk.length === 0) return;
      yield chunk;
    }
  };
  const kind = detectCompression(head);
  if (kind === 'none') {
    yield* all();
    return;
  }
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    const feeding = pipeline(Readable.from(all()), gunzip);
    feeding.catch(() => undefined); // awaited once the output is read
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
      await feeding;
    } catch (e) {
      if (inputError !== undefined) throw inputError;
      throw new InvalidInputError(`cannot decompress ${name} (gzip): ${(e as Error).message}`, { cause: e });
    } finally {
      gunzip.destroy();
    }
    return;
  }

  const tool = TOOLS[kind];
  const proc = (await import('execa')).execa(tool.command, ['-dc'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
  });
  // The process may fail while its output is still being read; it is awaited below, this only
  // keeps that rejection from counting as unhandled in the meantime.
  proc.catch(() => undefined);
  // If the input itself fails, the tool only sees its stdin end early; the input's error is the
  // one to report. Otherwise a broken pipe just means the tool exited, and its status says why.
  pipeline(Readable.from(all()), proc.stdin!).catch(() => undefined);
  const failed = (e: unknown): never => {
    const err = e as { code?: string; stderr?: unknown; shortMessage?: string };
    if (inputError !== undefined) throw inputError;
    if (err.code === 'ENOENT') {
      // The host's fault, not the archive's.
      throw new TsbuildError(`${name} is ${kind}-compressed and ${tool.command} is not installed (apt-get install ${tool.aptPackage})`, {
        cause: e,
      });
    }
    const detail = typeof err.stderr === 'string' && err.stderr.trim() !== '' ? err.stderr.trim() : (err.shortMessage ?? String(e));
    throw new InvalidInputError(`cannot decompress ${name} (${kind}): ${detail}`, { cause: e });
  };
  let finished = false;
  try {
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) yield chunk;
    await proc.catch(failed);
    finished = true;
  } catch (e) {
    if (e instanceof TsbuildError) throw e;
    // stdout ended in error: the process result carries the real reason.
    await proc.catch(failed);
    throw e;
  } finally {
    if (!finished) {
      proc.kill();
      await proc.catch(() => undefined);
    }
  }
}
