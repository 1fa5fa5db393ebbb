// The push cache trusts that a layer compresses to the blob it compressed to before: both
// compressors must give the same bytes for the same input, and decompress back to it.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { compress, type LayerCompression } from '../../src/registry/compress.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const input = Buffer.concat([randomBytes(200_000), Buffer.alloc(300_000, 'tar block ')]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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
