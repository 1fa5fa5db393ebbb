// Property-based tests of the tar reader and of applyLayer on damaged and hostile archives: a
// valid archive of random entries (names with `..`, absolute paths, symlinks and hardlinks
// pointing anywhere, devices) is mutated (bytes flipped, cut, spliced, checksums fixed so the
// damage reaches past the header check). Each case either unpacks or fails with the codec's own
// error; nothing is ever written outside the target, and the reader always finishes.
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { copyIntoRootfs } from '../../src/builder/copy.js';
import { openContext } from '../../src/context/index.js';
import { InvalidInputError, TsbuildError } from '../../src/errors.js';
import { ByteReader, applyLayer, readTar } from '../../src/layer/index.js';
import { TruncatedError } from '../../src/layer/bytereader.js';
import { TarFormatError, type EntryType } from '../../src/layer/tarheader.js';
import { buildTar, header, listTree } from '../layer/fixtures.js';
import { fuzzParameters } from './settings.js';

const NAMES = [
  'a',
  'a/b',
  'a/b/c',
  'd/',
  'x',
  '../up',
  'a/../../up',
  '/abs',
  './a/x',
  'link',
  'link/x',
  'link/y/z',
  '.wh.a',
  'a/.wh..wh..opq',
  'dev',
  '.',
  '',
];
const TARGETS = ['../outside', '../outside/b', '../../outside/b', '/', '/etc', 'a', 'a/b', '../../outside/x', 'link/x', '.', 'x'];
const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];

const entry = fc.record({
  name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
  type: fc.constantFrom(...TYPES),
  link: fc.constantFrom(...TARGETS),
  content: fc.uint8Array({ maxLength: 700 }),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o7777, 0),
});

const archive = fc.array(entry, { maxLength: 8 }).map((entries) =>
  buildTar(
    entries.map((e) => ({
      h: header(e.name, {
        type: e.type,
        mode: e.mode,
        linkname: e.type === 'symlink' || e.type === 'hardlink' ? Buffer.from(e.link) : Buffer.alloc(0),
        ...(e.type === 'char' || e.type === 'block' ? { devMajor: 1, devMinor: 3 } : {}),
      }),
      ...(e.type === 'file' ? { content: Buffer.from(e.content) } : {}),
    })),
  ),
);

/** Recomputes the checksum of each 512-byte block that looks like a header, so damage goes deeper. */
function fixChecksums(tar: Buffer): Buffer {
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    const block = tar.subarray(off, off + 512);
    if (block.subarray(257, 262).toString('latin1') !== 'ustar') continue;
    block.fill(0x20, 148, 156);
    const sum = block.reduce((acc, c) => acc + c, 0);
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  }
  return tar;
}

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array }
  | { kind: 'field'; block: number; field: 'size' | 'mode' | 'typeflag' | 'name'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({
    kind: fc.constant('field' as const),
    block: fc.nat(20),
    field: fc.constantFrom('size' as const, 'mode' as const, 'typeflag' as const, 'name' as const),
    // Octal digits, base-256 markers, huge and negative values, garbage.
    bytes: fc.oneof(
      fc
        .constantFrom(
          '77777777777\0',
          '\x80\0\0\0\0\0\0\0\0\0\0\x01',
          '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff',
          '-1',
          'x',
          'L',
          'K',
          'x',
          'g',
          'S',
          '7',
          '../../e',
        )
        .map((s) => Buffer.from(s, 'latin1')),
      fc.uint8Array({ minLength: 1, maxLength: 12 }),
    ),
  }),
);

const FIELDS = { name: [0, 100], mode: [100, 8], size: [124, 12], typeflag: [156, 1] } as const;

function mutate(tar: Buffer, mutations: readonly Mutation[], fix: boolean): Buffer {
  let out = Buffer.from(tar);
  for (const m of mutations) {
    if (out.length === 0) break;
    switch (m.kind) {
      case 'flip':
        out[m.at % out.length] = m.value;
        break;
      case 'cut':
        out = out.subarray(0, m.at % out.length);
        break;
      case 'splice': {
        const at = m.at % out.length;
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      }
      case 'field': {
        const off = (m.block % Math.max(1, Math.floor(out.length / 512))) * 512;
        const [start, len] = FIELDS[m.field];
        if (off + start + len <= out.length) out.set(m.bytes.subarray(0, len), off + start);
        break;
      }
    }
  }
  return fix ? fixChecksums(out) : out;
}

const damaged = fc.tuple(archive, fc.array(mutation, { maxLength: 3 }), fc.boolean()).map(([tar, ms, fix]) => mutate(tar, ms, fix));

describe('the tar reader under fuzzing', () => {
  test('readTar ends with the items or with TarFormatError / TruncatedError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          damaged,
          fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
        ),
        async (bytes) => {
          try {
            for await (const item of readTar(new ByteReader(Readable.from([bytes])))) {
              if (item.kind === 'entry') for await (const _ of item.body) void _;
            }
          } catch (err) {
            if (!(err instanceof TarFormatError || err instanceof TruncatedError)) throw err;
          }
        },
      ),
      fuzzParameters(3000),
    );
  });
});

describe('applyLayer under fuzzing', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'tsbuild-fuzz-tar-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('hostile and damaged archives unpack inside the target or fail with InvalidInputError; nothing lands outside', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(damaged, fc.constantFrom('overlay' as const, 'delete' as const), async (bytes, whiteouts) => {
        // parent/{target, outside (a canary the archives aim at), canary file}
        const parent = join(work, String(n++));
        const target = join(parent, 'target');
        await mkdir(join(parent, 'outside', 'b'), { recursive: true });
        await utimes(join(parent, 'outside', 'b'), 1000, 1000);
        await mkdir(target);
        await writeFile(join(parent, 'canary'), 'untouched');
        const outsideTarget = async () => [
          ...(await readdir(parent)).sort(),
          ...(await listTree(join(parent, 'outside'))),
          (await stat(join(parent, 'outside', 'b'))).mtimeMs,
        ];
        const before = await outsideTarget();
        try {
          await applyLayer(Readable.from([bytes]), target, { whiteouts, tarSplitPath: join(parent, 'tar-split.json.gz') });
          await rm(join(parent, 'tar-split.json.gz'));
        } catch (err) {
          if (!(err instanceof InvalidInputError)) throw err;
        }
        expect(await outsideTarget()).toEqual(before);
        await rm(parent, { recursive: true, force: true });
      }),
      fuzzParameters(600),
    );
  }, 120_000);
});

describe('ADD’s archive extractor under fuzzing', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'tsbuild-fuzz-add-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('hostile and damaged archives land inside the destination or fail with a TsbuildError; nothing lands outside', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(damaged, async (bytes) => {
        // case/{ctx/a.tar, rootfs/, outside/b (canary)}; ADD a.tar /dest/
        const base = join(work, String(n++));
        await mkdir(join(base, 'ctx'), { recursive: true });
        await mkdir(join(base, 'rootfs'));
        await mkdir(join(base, 'outside', 'b'), { recursive: true });
        await utimes(join(base, 'outside', 'b'), 1000, 1000);
        await writeFile(join(base, 'ctx', 'a.tar'), bytes);
        const outside = async () => [
          ...(await readdir(base)).sort(),
          ...(await listTree(join(base, 'outside'))),
          (await stat(join(base, 'outside', 'b'))).mtimeMs,
        ];
        const before = await outside();
        const context = await openContext(join(base, 'ctx'));
        try {
          await copyIntoRootfs({ context, sources: ['a.tar'], dest: '/dest/', workdir: '/', rootfs: join(base, 'rootfs'), isAdd: true });
        } catch (err) {
          if (!(err instanceof TsbuildError)) throw err;
        }
        expect(await outside()).toEqual(before);
        await rm(base, { recursive: true, force: true });
      }),
      fuzzParameters(1000),
    );
  }, 120_000);
});
