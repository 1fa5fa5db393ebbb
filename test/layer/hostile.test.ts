// Hostile archives the apply tests do not cover: entries written below a directory that a later
// entry replaces (by a symlink pointing out, or by a file), absurd header fields, device nodes.
// Each is refused with InvalidInputError or unpacked inside the target; the `outside` canary next
// to the target is checked, contents and times, before and after.
import { lstat, mkdir, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InvalidInputError } from '../../src/errors.js';
import { applyLayer } from '../../src/layer/index.js';
import { buildTar, cleanup, header, listTree, tempDir } from './fixtures.js';

let work: string;
let n = 0;
beforeAll(async () => {
  work = await tempDir();
});
afterAll(async () => cleanup(work));

/** parent/{target/, outside/b (a file with a known old mtime)} */
async function arena(): Promise<{ parent: string; target: string; split: string; canary: () => Promise<unknown> }> {
  const parent = join(work, `arena-${n++}`);
  await mkdir(join(parent, 'target'), { recursive: true });
  await mkdir(join(parent, 'outside', 'b'), { recursive: true });
  await writeFile(join(parent, 'outside', 'b', 'f'), 'canary');
  await utimes(join(parent, 'outside', 'b'), 1000, 1000);
  await utimes(join(parent, 'outside'), 1000, 1000);
  const canary = async () => ({
    tree: await listTree(join(parent, 'outside')),
    times: [(await stat(join(parent, 'outside'))).mtimeMs, (await stat(join(parent, 'outside', 'b'))).mtimeMs],
  });
  return { parent, target: join(parent, 'target'), split: join(parent, 'tar-split.json.gz'), canary };
}

async function apply(tar: Buffer, whiteouts: 'overlay' | 'delete' = 'overlay') {
  const a = await arena();
  const before = await a.canary();
  const result = await applyLayer(Readable.from([tar]), a.target, { whiteouts, tarSplitPath: a.split }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(await a.canary()).toEqual(before);
  return { ...a, error: result };
}

describe.each(['overlay', 'delete'] as const)('a directory replaced later in the same archive (%s mode)', (mode) => {
  test('by a symlink pointing outside: no time is set through it', async () => {
    const a = await apply(
      buildTar([
        // `a` is not an entry (duplicates are refused): it is made implicitly for a/b.
        { h: header('a/b/', { type: 'dir', mtime: 1_600_000_000 }) },
        { h: header('a', { type: 'symlink', linkname: Buffer.from('../outside') }) },
      ]),
      mode,
    );
    expect(a.error).toBeUndefined();
    expect(await readlink(join(a.target, 'a'))).toBe('../outside');
  });

  test('by a symlink pointing outside, with device nodes and xattrs queued below it: none is made through it', async () => {
    const a = await apply(
      buildTar([
        { h: header('a/x', { type: 'char', devMajor: 1, devMinor: 3 }) },
        { h: header('a/f', { xattrs: new Map([['user.k', Buffer.from('v')]]) }), content: Buffer.from('f') },
        { h: header('a/b/y', { type: 'fifo' }) },
        { h: header('a', { type: 'symlink', linkname: Buffer.from('../outside') }) },
      ]),
      mode,
    );
    expect(a.error).toBeUndefined();
    expect(await listTree(a.target)).toEqual(['a']);
  });

  test('by a file: the file wins, no stray error about the directory below it', async () => {
    const a = await apply(buildTar([{ h: header('a/b/', { type: 'dir' }) }, { h: header('a'), content: Buffer.from('file') }]), mode);
    expect(a.error).toBeUndefined();
    expect((await lstat(join(a.target, 'a'))).isFile()).toBe(true);
  });
});

describe('absurd header fields', () => {
  function withField(offset: number, value: string, entries = [{ h: header('f'), content: Buffer.from('data') }]): Buffer {
    const tar = buildTar(entries);
    tar.fill(0, offset, offset + (offset === 124 ? 12 : 8));
    tar.write(value, offset, 'latin1');
    tar.fill(0x20, 148, 156);
    const sum = tar.subarray(0, 512).reduce((acc, c) => acc + c, 0);
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    return tar;
  }

  test.each([
    ['a size of 8 GiB with 4 bytes of data', 124, '77777777777', /truncated/],
    ['a base-256 size beyond 2^53', 124, '\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', /invalid|too large|truncated/],
    ['a negative base-256 size', 124, '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe', /invalid|negative/],
    ['a size that is not a number', 124, 'twelve', /invalid/],
    ['a mode that is not a number', 100, 'rwxr-xr', /invalid/],
  ] as const)('%s is refused', async (_what, offset, value, message) => {
    const a = await apply(withField(offset, value));
    expect(a.error).toBeInstanceOf(InvalidInputError);
    expect(a.error!.message).toMatch(message);
  });

  test('a PAX size record of a petabyte is refused without reading on', async () => {
    const a = await apply(Buffer.concat([paxHeader('size=1125899906842624\n'), buildTar([{ h: header('f'), content: Buffer.from('x') }])]));
    expect(a.error).toBeInstanceOf(InvalidInputError);
  });

  test('a PAX header that claims more than 1 MiB is refused', async () => {
    const big = `${'x'.repeat(2 << 20)}`;
    const a = await apply(Buffer.concat([paxHeader(`comment=${big}\n`), buildTar([{ h: header('f') }])]));
    expect(a.error).toBeInstanceOf(InvalidInputError);
    expect(a.error!.message).toMatch(/larger than 1 MiB/);
  });
});

/** A PAX 'x' header block followed by its records (lengths computed as PAX wants). */
function paxHeader(records: string): Buffer {
  const withLen = records
    .split('\n')
    .filter(Boolean)
    .map((r) => {
      let len = r.length + 2;
      while (`${len} ${r}\n`.length !== len) len = `${len} ${r}\n`.length;
      return `${len} ${r}\n`;
    })
    .join('');
  const data = Buffer.from(withLen, 'latin1');
  const h = buildTar([{ h: header('PaxHeaders/f'), content: data }], false);
  h[156] = 0x78; // 'x'
  h.fill(0x20, 148, 156);
  const sum = h.subarray(0, 512).reduce((acc, c) => acc + c, 0);
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

describe('device nodes', () => {
  test('are made inside the target, as the layer says, and nowhere else', async () => {
    const a = await apply(
      buildTar([
        { h: header('dev/', { type: 'dir' }) },
        { h: header('dev/sda', { type: 'block', devMajor: 8, devMinor: 0, mode: 0o660 }) },
        { h: header('dev/mem', { type: 'char', devMajor: 1, devMinor: 1, mode: 0o640 }) },
      ]),
    );
    expect(a.error).toBeUndefined();
    const sda = await lstat(join(a.target, 'dev/sda'));
    expect(sda.isBlockDevice()).toBe(true);
    expect((await lstat(join(a.target, 'dev/mem'))).isCharacterDevice()).toBe(true);
    expect(await listTree(a.target)).toEqual(['dev/', 'dev/mem', 'dev/sda']);
  });
});
