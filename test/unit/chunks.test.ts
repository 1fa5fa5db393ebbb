// Lent read buffers (src/chunks.ts): reused only when given back whole, once, after their write.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LENT_CHUNK_SIZE, borrowChunk, giveBack, writeGivingBack } from '../../src/chunks.js';

describe('borrowChunk and giveBack', () => {
  test('a chunk given back whole is lent again; a piece, a copy or a second give-back is not taken', () => {
    const a = borrowChunk(1000);
    expect(a.length).toBe(1000);
    giveBack(a);
    const b = borrowChunk(LENT_CHUNK_SIZE);
    expect(b.buffer).toBe(a.buffer);

    giveBack(b.subarray(0, 10)); // a piece: ignored
    giveBack(Buffer.from(b)); // a copy: ignored
    expect(borrowChunk(10).buffer).not.toBe(b.buffer);

    giveBack(b);
    giveBack(b); // the second time does nothing
    const c = borrowChunk(10);
    const d = borrowChunk(10);
    expect(c.buffer).toBe(b.buffer);
    expect(d.buffer).not.toBe(b.buffer);
  });

  test('more than a chunk cannot be borrowed', () => {
    expect(() => borrowChunk(LENT_CHUNK_SIZE + 1)).toThrow(RangeError);
  });
});

describe('writeGivingBack', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-chunks-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  /** n lent chunks, chunk i filled with byte i, each borrowed only when the writer asks for it. */
  async function* numbered(n: number, seen: Set<ArrayBufferLike>): AsyncGenerator<Buffer> {
    for (let i = 0; i < n; i++) {
      const chunk = borrowChunk(LENT_CHUNK_SIZE).fill(i);
      seen.add(chunk.buffer);
      yield chunk;
    }
  }

  test('a file gets every byte in order while a handful of chunks go round', async () => {
    const file = join(dir, 'out');
    const seen = new Set<ArrayBufferLike>();
    await writeGivingBack(numbered(64, seen), createWriteStream(file));
    const bytes = await readFile(file);
    expect(bytes.length).toBe(64 * LENT_CHUNK_SIZE);
    for (let i = 0; i < 64; i++) {
      expect(bytes[i * LENT_CHUNK_SIZE]).toBe(i);
      expect(bytes[(i + 1) * LENT_CHUNK_SIZE - 1]).toBe(i);
    }
    expect(seen.size).toBeLessThan(8);
  });

  test('a chunk is reused only after its write completed', async () => {
    // A slow sink that checks, when each write completes, that its chunk still holds its byte.
    const wrong: number[] = [];
    let i = 0;
    const slow = new Writable({
      highWaterMark: 4 * LENT_CHUNK_SIZE,
      write(chunk: Buffer, _enc, cb) {
        const expected = i++;
        setTimeout(() => {
          if (chunk[0] !== expected || chunk[chunk.length - 1] !== expected) wrong.push(expected);
          cb();
        }, 2);
      },
    });
    await writeGivingBack(numbered(40, new Set()), slow);
    expect(i).toBe(40);
    expect(wrong).toEqual([]);
  });

  test('a failing source destroys the destination; a failing destination stops the source', async () => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('x');
      throw new Error('source broke');
    }
    await expect(writeGivingBack(failing(), sink)).rejects.toThrow('source broke');
    expect(sink.destroyed).toBe(true);

    let closed = false;
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        for (;;) yield Buffer.alloc(1024);
      } finally {
        closed = true;
      }
    }
    const broken = new Writable({ write: (_c, _e, cb) => cb(new Error('disk full')) });
    await expect(writeGivingBack(endless(), broken)).rejects.toThrow('disk full');
    expect(closed).toBe(true);
  });
});
