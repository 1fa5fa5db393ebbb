import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Crc64, crc64 } from '../../../src/layer/crc64.js';
import { ByteReader } from '../../../src/layer/bytereader.js';
import { decodeBlock, encodeHeader, parsePaxRecords, TarFormatError } from '../../../src/layer/tarheader.js';
import { readTar, type TarItem } from '../../../src/layer/tarreader.js';
import { buildTar, cleanup, gnuList, header, tempDir } from '../../layer/fixtures.js';

async function items(
  tar: Buffer,
): Promise<{ entries: { name: string; type: string; size: number; link: string; content: Buffer; h: unknown }[]; raw: Buffer }> {
  const entries: { name: string; type: string; size: number; link: string; content: Buffer; h: unknown }[] = [];
  const raw: Buffer[] = [];
  async function* one(): AsyncGenerator<Buffer> {
    // Feed in odd-sized chunks to exercise block reassembly.
    for (let i = 0; i < tar.length; i += 777) yield tar.subarray(i, i + 777);
  }
  for await (const item of readTar(new ByteReader(one())) as AsyncIterable<TarItem>) {
    if (item.kind === 'segment') raw.push(item.bytes);
    else if (item.kind === 'entry') {
      const parts: Buffer[] = [];
      for await (const c of item.body) parts.push(c);
      const content = Buffer.concat(parts);
      raw.push(content);
      entries.push({
        name: item.header.name.toString(),
        type: item.header.type,
        size: item.header.size,
        link: item.header.linkname.toString(),
        content,
        h: item.header,
      });
    }
  }
  return { entries, raw: Buffer.concat(raw) };
}

describe('crc64 (ISO, as Go computes it)', () => {
  test('check value and incremental updates', () => {
    expect(crc64(Buffer.from('123456789')).toString('hex')).toBe('b90956c775a41001');
    const data = Buffer.from('The quick brown fox jumps over the lazy dog, again and again and again.');
    const c = new Crc64();
    for (let i = 0; i < data.length; i += 5) c.update(data.subarray(i, i + 5));
    expect(c.digest()).toEqual(crc64(data));
    expect(crc64(Buffer.alloc(0)).toString('hex')).toBe('0000000000000000');
  });
});

describe('tar header codec', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => cleanup(dir));

  test('short names give one USTAR block, like Go with FormatPAX', () => {
    const b = encodeHeader(header('etc/hosts', { size: 12, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 }));
    expect(b.length).toBe(512);
    expect(b.subarray(257, 265).toString('latin1')).toBe('ustar\u000000');
    expect(b.subarray(100, 108).toString('latin1')).toBe('0000644\0');
    expect(b.subarray(124, 136).toString('latin1')).toBe('00000000014\0');
    expect(b.subarray(136, 148).toString('latin1')).toBe(`${(1_700_000_000).toString(8)}\0`);
    // checksum: six octal digits, NUL, space
    expect(b.subarray(148, 156).toString('latin1')).toMatch(/^[0-7]{6}\0 $/);
    // devmajor/devminor written as zeros even for a file (Go does)
    expect(b.subarray(329, 345).toString('latin1')).toBe('0000000\u00000000000\0');
    const d = decodeBlock(b);
    expect(d.name.toString()).toBe('etc/hosts');
    expect(d.size).toBe(12);
    expect(d.format).toBe('ustar');
  });

  test('a long path that splits at a slash uses the USTAR prefix; one that cannot uses PAX', () => {
    const splittable = `${'d'.repeat(90)}/${'e'.repeat(60)}/file.txt`;
    const one = encodeHeader(header(splittable));
    expect(one.length).toBe(512);
    expect(decodeBlock(one).name.toString()).toBe(splittable);

    const unsplittable = `dir/${'f'.repeat(120)}`;
    const pax = encodeHeader(header(unsplittable));
    expect(pax.length).toBe(3 * 512);
    expect(pax[156]).toBe(0x78); // 'x'
    expect(pax.subarray(0, 100).toString('latin1').replace(/\0+$/, '')).toBe('dir/PaxHeaders.0/' + 'f'.repeat(83));
    const ext = decodeBlock(pax.subarray(0, 512));
    const records = parsePaxRecords(pax.subarray(512, 512 + ext.size));
    expect(records.get('path')?.toString()).toBe(unsplittable);
    // The main block keeps the first 100 bytes of the name.
    expect(decodeBlock(pax.subarray(1024)).name.toString()).toBe(unsplittable.slice(0, 100));
  });

  test('PAX records: sorted keys, self-counting lengths, xattrs, big ids', () => {
    const b = encodeHeader(
      header('f', {
        uid: 3_000_000,
        gid: 5,
        xattrs: new Map([
          ['user.b', Buffer.from('2')],
          ['security.capability', Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0])],
        ]),
      }),
    );
    const ext = decodeBlock(b.subarray(0, 512));
    const data = b.subarray(512, 512 + ext.size).toString('latin1');
    const keys = data
      .split('\n')
      .filter(Boolean)
      .map((r) => r.slice(r.indexOf(' ') + 1, r.indexOf('=')));
    expect(keys).toEqual(['SCHILY.xattr.security.capability', 'SCHILY.xattr.user.b', 'uid']);
    for (const rec of data.split(/(?<=\n)/)) expect(Buffer.byteLength(rec, 'latin1')).toBe(parseInt(rec, 10));
    // uid too big for octal: 0 in the block, the real value in PAX
    expect(decodeBlock(b.subarray(1024)).uid).toBe(0);
  });

  test('GNU tar reads what we write and we read what GNU tar writes (gnu, pax, ustar formats)', async () => {
    const long = `${'a'.repeat(120)}/${'b'.repeat(140)}/${'c'.repeat(30)}`; // > 255 bytes
    const ours = buildTar([
      { h: header('dir/', { type: 'dir', mode: 0o755 }) },
      { h: header('dir/file', { mode: 0o4755, uid: 1000, gid: 1000 }), content: Buffer.from('hello\n') },
      { h: header(long, { mode: 0o600 }), content: Buffer.from('long\n') },
      { h: header('dir/link', { type: 'symlink', mode: 0o777, linkname: Buffer.from('x'.repeat(150)) }) },
      { h: header('dir/hard', { type: 'hardlink', linkname: Buffer.from('dir/file') }) },
      { h: header('dir/fifo', { type: 'fifo' }) },
      { h: header('dir/null', { type: 'char', mode: 0o666, devMajor: 1, devMinor: 3 }) },
    ]);
    const list = await gnuList(ours);
    expect(list).toEqual([
      expect.stringMatching(/^drwxr-xr-x 0\/0 +0 .* dir\/$/),
      expect.stringMatching(/^-rwsr-xr-x 1000\/1000 +6 .* dir\/file$/),
      expect.stringMatching(new RegExp(`^-rw------- 0/0 +5 .* ${long}$`)),
      expect.stringMatching(new RegExp(`^lrwxrwxrwx 0/0 +0 .* dir/link -> ${'x'.repeat(150)}$`)),
      expect.stringMatching(/^hrw-r--r-- 0\/0 +0 .* dir\/hard link to dir\/file$/),
      expect.stringMatching(/^prw-r--r-- 0\/0 +0 .* dir\/fifo$/),
      expect.stringMatching(/^crw-rw-rw- 0\/0 +1,3 .* dir\/null$/),
    ]);

    const src = join(dir, 'src');
    await mkdir(join(src, 'a'.repeat(120), 'b'.repeat(140)), { recursive: true });
    await writeFile(join(src, long), 'long\n');
    await writeFile(join(src, 'short'), 'short\n');
    for (const format of ['gnu', 'pax', 'ustar', 'v7'] as const) {
      const args = ['--format', format, '-C', src, '-cf', '-', format === 'ustar' || format === 'v7' ? 'short' : '.'];
      const { stdout } = await execa('tar', args, { encoding: 'buffer' });
      const tar = Buffer.from(stdout);
      const { entries, raw } = await items(tar);
      // Every byte is accounted for: segments + contents == the archive.
      expect(raw.equals(tar)).toBe(true);
      const names = entries.map((e) => e.name);
      expect(names).toContain(format === 'ustar' || format === 'v7' ? 'short' : `./${long}`);
      const l = entries.find((e) => e.name.endsWith('c'.repeat(30)));
      if (l) expect(l.content.toString()).toBe('long\n');
    }
  });

  test('base-256 numbers and GNU long names decode', async () => {
    const src = join(dir, 'big');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'f'), 'x');
    const { stdout } = await execa(
      'tar',
      ['--format=gnu', '--owner=3000000000', '--group=7', '--numeric-owner', '-C', src, '-cf', '-', 'f'],
      {
        encoding: 'buffer',
      },
    );
    const { entries } = await items(Buffer.from(stdout));
    expect(entries[0]!.h).toMatchObject({ uid: 3_000_000_000, gid: 7 });
  });

  test('garbage is refused', async () => {
    const junk = Buffer.alloc(1024, 0x41);
    await expect(items(junk)).rejects.toThrow(TarFormatError);
    await expect(items(await readFile(new URL(import.meta.url)))).rejects.toThrow(/checksum/);
  });
});
