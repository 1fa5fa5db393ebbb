// The push cache trusts that a layer compresses to the blob it compressed to before: both
// compressors must give the same bytes for the same input, and decompress back to it. gzip is
// compressed in blocks on several threads (one gzip member each, by the native helper), so the
// block edges get their own checks: sizes on either side of them, and chunkings that do not line
// up with them.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { compress, type LayerCompression } from '../../../src/registry/compress.js';
import { GZIP_BLOCK_SIZE as BLOCK_SIZE, helperGzip } from '../../../src/runtime/gzip.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const input = Buffer.concat([randomBytes(200_000), Buffer.alloc(300_000, 'tar block ')]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Text-like runs and random runs, as layer tars have: both deflate's paths get exercised. */
function layerLike(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += 100_000) {
    const n = Math.min(100_000, size - at);
    if ((at / 100_000) % 4 === 3) randomBytes(n).copy(out, at);
    else out.write(`file ${at} says hello to its neighbours; `.repeat(Math.ceil(n / 40)), at, n);
  }
  return out;
}

/** How many gzip members `blob` holds, as Python's zlib reads them one after another. */
async function memberCount(blob: Buffer): Promise<number> {
  const script =
    'import sys, zlib\nd = sys.stdin.buffer.read()\nn = 0\nwhile d:\n  o = zlib.decompressobj(31); o.decompress(d); d = o.unused_data; n += 1\nprint(n)';
  return Number((await execa('python3', ['-c', script], { input: blob })).stdout);
}

/** `data` in pieces of the given sizes, cycled; none lines up with a block. */
function chunked(data: Buffer, sizes: readonly number[]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

describe.each<LayerCompression>(['gzip', 'zstd'])('%s', (kind) => {
  test('the same input gives the same blob, which decompresses to the input', async () => {
    const a = await collect(compress(Readable.from([input]), kind));
    const b = await collect(compress(Readable.from([input.subarray(0, 1000), input.subarray(1000)]), kind));
    expect(sha(a)).toBe(sha(b));
    const back = kind === 'gzip' ? gunzipSync(a) : (await execa('zstd', ['-dc'], { input: a, encoding: 'buffer' })).stdout;
    expect(Buffer.from(back).equals(input)).toBe(true);
  });

  test('a failing input fails the output', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('diffID mismatch'));
      },
    });
    await expect(collect(compress(failing, kind))).rejects.toThrow('diffID mismatch');
  });
});

test('zstd gives the bytes of zstd -T1, as tsbuild did before it used two workers', async () => {
  // The push cache recorded blobs made with -T1: they must still match.
  const data = layerLike(24 * BLOCK_SIZE); // several of zstd's jobs (8 MiB at level 3)
  const ours = await collect(compress(Readable.from([data]), 'zstd'));
  const t1 = await execa('zstd', ['-3', '-T1', '-q', '-c'], { input: data, encoding: 'buffer' });
  expect(sha(ours)).toBe(sha(Buffer.from(t1.stdout)));
});

describe('gzip in parallel blocks', () => {
  const B = BLOCK_SIZE;
  const sizes = { empty: 0, 'one byte': 1, 'block - 1': B - 1, block: B, 'block + 1': B + 1, 'several blocks': 3 * B + 12_345 };

  describe.each(Object.entries(sizes))('%s', (_name, size) => {
    const data = layerLike(size);
    let blob: Buffer;
    beforeAll(async () => {
      blob = await collect(compress(Readable.from(data.length > 0 ? [data] : []), 'gzip'));
    });

    test('zlib gunzips it to the input, member after member', () => {
      expect(gunzipSync(blob).equals(data)).toBe(true);
    });

    test('gzip -dc and Python gzip read it back', async () => {
      const gz = await execa('gzip', ['-dc'], { input: blob, encoding: 'buffer' });
      expect(Buffer.from(gz.stdout).equals(data)).toBe(true);
      const py = await execa('python3', ['-c', 'import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))'], {
        input: blob,
        encoding: 'buffer',
      });
      expect(Buffer.from(py.stdout).equals(data)).toBe(true);
    });

    test('any chunking of the input gives the same bytes', async () => {
      for (const pieces of [[1000], [B - 1], [7, 65_536, B + 3], [B]]) {
        const again = await collect(compress(chunked(data, pieces), 'gzip'));
        expect(sha(again)).toBe(sha(blob));
      }
    });
  });

  test('the number of threads does not change the bytes', async () => {
    const data = layerLike(5 * B + 999);
    const blob = await collect(compress(Readable.from([data]), 'gzip'));
    for (const threads of [1, 3]) {
      const again = await collect(helperGzip(Readable.from([data]), { level: 6, threads }));
      expect(sha(again)).toBe(sha(blob));
    }
  });

  test('the blob is as small as one serial gzip stream of the input, give or take a little', async () => {
    const data = layerLike(4 * B);
    const blob = await collect(compress(Readable.from([data]), 'gzip'));
    // Each block starts with an empty window (its own member), which libdeflate's better
    // matching more than makes up for on layer tars; here, within a percent of zlib's level 6.
    expect(blob.length).toBeLessThan(gzipSync(data, { level: 6 }).length * 1.01);
  });

  test('random bytes are stored as their own member, repeated random bytes are deflated', async () => {
    const text = (n: number): Buffer => Buffer.from('a line of some source file, say;\n'.repeat(n / 32).padEnd(n, '.'));
    const chunk = 64 * 1024; // what gzip.c judges a block in
    const random = randomBytes(2 * chunk);
    // Pieces long enough that the histogram of a chunk is as flat as random bytes' (shorter ones
    // repeated are uneven enough to be deflated for that alone), close enough for LZ77's window.
    const piece = randomBytes(24 * 1024);
    const repeated = Buffer.concat([piece, piece, piece, piece, piece, piece]).subarray(0, 2 * chunk);
    for (const [middle, members] of [
      [random, 3], // text, stored, text
      [repeated, 1], // one deflated member: LZ77 finds the repeats
    ] as const) {
      const data = Buffer.concat([text(chunk), middle, text(chunk)]); // one block
      const blob = await collect(helperGzip(Readable.from([data]), { level: 6 }));
      expect(gunzipSync(blob).equals(data)).toBe(true);
      expect(await memberCount(blob)).toBe(members);
      if (middle === random) expect(blob.length).toBeLessThan(random.length + 2 * 1024);
      else expect(blob.length).toBeLessThan(piece.length + 4 * 1024);
    }
  });

  test('a helper that fails fails the output with its own words', async () => {
    const out = helperGzip(Readable.from([layerLike(1000)]), { level: 13 });
    await expect(collect(out)).rejects.toThrow(/tsbuild-helper: --level: invalid value '13'/);
  });

  test('an input failing after some blocks fails the output', async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent++ >= 5) this.destroy(new Error('diffID mismatch'));
        else this.push(layerLike(B / 2 + 77));
      },
    });
    await expect(collect(compress(failing, 'gzip'))).rejects.toThrow('diffID mismatch');
  });

  test('destroying the output stops reading the input', async () => {
    // An endless input: only a destroyed output can stop it.
    let reads = 0;
    const endless = new Readable({
      read() {
        reads++;
        this.push(layerLike(64 * 1024));
      },
    });
    const closed = new Promise<void>((resolve) => endless.once('close', resolve));
    const out = compress(endless, 'gzip');
    for await (const _ of out) break; // the header; breaking out destroys the output
    await closed;
    expect(endless.destroyed).toBe(true);
    const after = reads;
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toBe(after);
  });
});
