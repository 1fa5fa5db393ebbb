import { readdir, readFile, rm, symlink, truncate, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { DigestMismatchError, type Digest } from '../../src/digest.js';
import { CorruptLayerError, applyLayer, regenerateLayer, regeneratePieces, regenerateVerified, writeLayer } from '../../src/layer/index.js';
import { helperGzip, helperGzipPieces } from '../../src/runtime/gzip.js';
import { buildTar, changesOf, cleanup, header, streamBytes, tempDir } from './fixtures.js';

describe('regenerateLayer', () => {
  let work: string;
  let n = 0;
  beforeAll(async () => {
    work = await tempDir();
  });
  afterAll(async () => cleanup(work));

  /** A layer applied from `tar`, ready to be regenerated and tampered with. */
  async function applied(tar: Buffer): Promise<{ dir: string; split: string }> {
    const dir = join(work, `l${n++}`);
    await mkdir(dir);
    const split = `${dir}.tar-split.json.gz`;
    await applyLayer(Readable.from([tar]), dir, { whiteouts: 'overlay', tarSplitPath: split });
    return { dir, split };
  }

  const sample = (): Buffer =>
    buildTar([
      { h: header('a/', { type: 'dir', mode: 0o755 }) },
      { h: header('a/one'), content: Buffer.from('one\n') },
      { h: header('a/two'), content: Buffer.from('two two\n') },
    ]);

  test('a file that changed size is reported by name', async () => {
    const { dir, split } = await applied(sample());
    await writeFile(join(dir, 'a/two'), 'longer than before\n');
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(CorruptLayerError);
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(/"a\/two" .* has 19 bytes, the layer recorded 8/);
  });

  test('a file with the same size but other content fails the crc64 check', async () => {
    const { dir, split } = await applied(sample());
    await writeFile(join(dir, 'a/one'), 'ONE\n');
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(
      /"a\/one" .* has changed since the layer was recorded \(crc64 mismatch\)/,
    );
  });

  describe('checked against the diffID (regenerateVerified)', () => {
    // Big enough to be streamed in chunks rather than read whole.
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 'x');
    const bigTar = (): Buffer =>
      buildTar([
        { h: header('a/', { type: 'dir', mode: 0o755 }) },
        { h: header('a/small'), content: Buffer.from('small\n') },
        { h: header('a/big', { size: big.length }), content: big },
      ]);
    const diffIdOf = (tar: Buffer): Digest => `sha256:${createHash('sha256').update(tar).digest('hex')}` as Digest;

    test('a whole layer streams back byte for byte', async () => {
      const tar = bigTar();
      const { dir, split } = await applied(tar);
      expect((await streamBytes(regenerateVerified(split, dir, diffIdOf(tar), 'layer x'))).equals(tar)).toBe(true);
    });

    test('without the crc64s a changed file streams on; the digest fails and the file is named', async () => {
      const tar = bigTar();
      for (const name of ['a/small', 'a/big']) {
        const { dir, split } = await applied(tar);
        const file = join(dir, name);
        const bytes = await readFile(file);
        bytes[bytes.length - 1] = 0x59; // same size, other content
        await writeFile(file, bytes);
        expect((await streamBytes(regenerateLayer(split, dir, { checkFiles: false }))).length).toBe(tar.length);
        const err = await streamBytes(regenerateVerified(split, dir, diffIdOf(tar), 'layer x')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CorruptLayerError);
        expect((err as Error).message).toMatch(new RegExp(`"${name}" .* has changed since the layer was recorded \\(crc64 mismatch\\)`));
      }
    });

    test('when every file matches, a wrong digest is a digest mismatch', async () => {
      const tar = bigTar();
      const { dir, split } = await applied(tar);
      const wrong = `sha256:${'0'.repeat(64)}` as Digest;
      const err = await streamBytes(regenerateVerified(split, dir, wrong, 'layer x')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as Error).message).toBe(`layer x: digest mismatch: expected ${wrong}, got ${diffIdOf(tar)}`);
    });
  });

  describe('gzipped from its pieces, the helper reading the big files (helperGzipPieces)', () => {
    const big = Buffer.concat([Buffer.alloc(2 * 1024 * 1024, 'layer bytes '), randomBytes(1024 * 1024 + 77)]);
    const tarOf = (bigName?: Buffer): Buffer =>
      buildTar([
        { h: header('a/', { type: 'dir', mode: 0o755 }) },
        { h: header('a/small'), content: Buffer.from('small\n') },
        { h: header('a/big', { size: big.length, ...(bigName ? { name: bigName } : {}) }), content: big },
        { h: header('a/after'), content: Buffer.from('after the big one\n') },
      ]);
    const diffIdOf = (tar: Buffer): Digest => `sha256:${createHash('sha256').update(tar).digest('hex')}` as Digest;
    const gzipOf = (split: string, dir: string, diffId: Digest): Promise<Buffer> =>
      streamBytes(helperGzipPieces(regeneratePieces(split, dir, diffId, 'layer x'), { level: 6 }));

    test('the same blob as the tar gzipped whole, which gunzips to the layer tar', async () => {
      for (const tar of [tarOf(), tarOf(Buffer.from([0x62, 0x69, 0x67, 0xff])), buildTar([{ h: header('only-empty') }])]) {
        const { dir, split } = await applied(tar);
        const blob = await gzipOf(split, dir, diffIdOf(tar));
        expect(blob.equals(await streamBytes(helperGzip(Readable.from([tar]), { level: 6 })))).toBe(true);
        expect(gunzipSync(blob).equals(tar)).toBe(true);
      }
    });

    test('a file changed in place (same size) fails the output, named', async () => {
      const tar = tarOf();
      for (const name of ['a/small', 'a/big']) {
        const { dir, split } = await applied(tar);
        const bytes = await readFile(join(dir, name));
        bytes[bytes.length - 1] = 0xff - bytes.at(-1)!;
        await writeFile(join(dir, name), bytes);
        const err = await gzipOf(split, dir, diffIdOf(tar)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CorruptLayerError);
        expect((err as Error).message).toMatch(new RegExp(`"${name}" .* has changed since the layer was recorded \\(crc64 mismatch\\)`));
      }
    });

    test('a big file grown, or swapped for a symlink, stops the helper; the error names it', async () => {
      const tar = tarOf();
      const grown = await applied(tar);
      await writeFile(join(grown.dir, 'a/big'), Buffer.concat([big, Buffer.from('more')]));
      await expect(gzipOf(grown.split, grown.dir, diffIdOf(tar))).rejects.toThrow(
        new RegExp(`"a/big" .* has ${big.length + 4} bytes, the layer recorded ${big.length}`),
      );
      const swapped = await applied(tar);
      await writeFile(join(work, 'look-alike'), big);
      await rm(join(swapped.dir, 'a/big'));
      await symlink(join(work, 'look-alike'), join(swapped.dir, 'a/big'));
      await expect(gzipOf(swapped.split, swapped.dir, diffIdOf(tar))).rejects.toThrow(/"a\/big" cannot be read/);
    });

    test('when every file matches, a wrong diffID is a digest mismatch', async () => {
      const tar = tarOf();
      const { dir, split } = await applied(tar);
      const wrong = `sha256:${'0'.repeat(64)}` as Digest;
      const err = await gzipOf(split, dir, wrong).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as Error).message).toBe(`layer x: digest mismatch: expected ${wrong}, got ${diffIdOf(tar)}`);
    });
  });

  test('a missing file, and a file swapped for a symlink, are errors', async () => {
    const { dir, split } = await applied(sample());
    await rm(join(dir, 'a/one'));
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(/"a\/one" cannot be read/);
    await symlink('/etc/hostname', join(dir, 'a/one'));
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(/"a\/one" cannot be read/);
  });

  test('a directory swapped for a symlink is not followed', async () => {
    const { dir, split } = await applied(sample());
    const elsewhere = join(work, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, 'one'), 'one\n');
    await writeFile(join(elsewhere, 'two'), 'two two\n');
    await rm(join(dir, 'a'), { recursive: true });
    await symlink(elsewhere, join(dir, 'a'));
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(/below a symlink/);
  });

  test('empty files need nothing on disk; truncation to zero is still caught', async () => {
    const { dir, split } = await applied(buildTar([{ h: header('empty') }, { h: header('full'), content: Buffer.from('x') }]));
    await rm(join(dir, 'empty'));
    expect((await streamBytes(regenerateLayer(split, dir))).length).toBe(3 * 512 + 1024); // two headers, one padded block of content, end
    await truncate(join(dir, 'full'), 0);
    await expect(streamBytes(regenerateLayer(split, dir))).rejects.toThrow(/has 0 bytes/);
  });

  test('non-UTF-8 names are stored as name_raw and come back byte for byte', async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1
    const special = Buffer.from('<a&b>');
    const tar = buildTar([
      { h: header('x', { name: latin1 }), content: Buffer.from('latin\n') },
      { h: header('y', { name: special }), content: Buffer.from('html\n') },
    ]);
    const { dir, split } = await applied(tar);
    const names = await readdir(dir, { encoding: 'buffer' });
    expect(names.some((b) => b.equals(latin1))).toBe(true);
    const json = gunzipSync(await readFile(split)).toString('utf8');
    expect(json).toContain(`"name_raw":"${latin1.toString('base64')}"`);
    // Go's encoding/json escapes <, > and & (tar-split files are written by Go in Docker).
    expect(json).toContain('"name":"\\u003ca\\u0026b\\u003e"');
    expect((await streamBytes(regenerateLayer(split, dir))).equals(tar)).toBe(true);
  });

  test('streams: a slow consumer bounds memory, in both directions', async () => {
    const src = join(work, 'bigsrc');
    await mkdir(src);
    const big = Buffer.alloc(64 * 1024 * 1024, 0x5a);
    await writeFile(join(src, 'big'), big);
    let maxBuffered = 0;
    let total = 0;
    const slow = (): Writable =>
      new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, cb) {
          total += chunk.length;
          maxBuffered = Math.max(maxBuffered, this.writableLength);
          setImmediate(cb);
        },
      });
    const split = join(work, 'big.json.gz');
    const sink = slow();
    const desc = await writeLayer(changesOf(src), { tarSplitPath: split, tarSink: sink });
    expect(total).toBe(desc.tarSize);
    // At most about one read chunk (1 MiB) waits in the sink at any time.
    expect(maxBuffered).toBeLessThanOrEqual(2 * 1024 * 1024);

    maxBuffered = 0;
    total = 0;
    await pipeline(regenerateLayer(split, src), slow());
    expect(total).toBe(desc.tarSize);
    expect(maxBuffered).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});
