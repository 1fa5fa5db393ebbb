import { execa } from 'execa';
import { lutimes, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readTarSplit, regenerateLayer, writeLayer, type Change } from '../../src/layer/index.js';
import { walk } from '../../src/runtime/helper.js';
import {
  LONG_DIR,
  LONG_PATH,
  changesOf,
  cleanup,
  collector,
  gnuList,
  makeTree,
  sha256Stream,
  sha256hex,
  streamBytes,
  tempDir,
} from './fixtures.js';

describe('writeLayer', () => {
  let work: string;
  let tree: string;
  let expected: Awaited<ReturnType<typeof makeTree>>;
  let tar: Buffer;
  let desc: Awaited<ReturnType<typeof writeLayer>>;
  let splitPath: string;

  beforeAll(async () => {
    work = await tempDir();
    tree = join(work, 'tree');
    await mkdir(tree);
    expected = await makeTree(tree);
    splitPath = join(work, 'tar-split.json.gz');
    const c = collector();
    desc = await writeLayer(changesOf(tree), { tarSplitPath: splitPath, tarSink: c.sink });
    tar = c.bytes();
  });
  afterAll(async () => cleanup(work));

  test('diffID is the sha256 of the tar, tarSize its length, size what overlay2 would count', () => {
    expect(desc.diffId).toBe(`sha256:${sha256hex(tar)}`);
    expect(desc.tarSize).toBe(tar.length);
    expect(desc.size).toBe(expected.size);
    // Go's writer: entries, then exactly two zero blocks, no record padding.
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
  });

  test('GNU tar lists every kind of entry as Docker would write it', async () => {
    const list = await gnuList(tar);
    const line = (name: string): string => {
      const l = list.find((x) => x.endsWith(` ${name}`) || x.includes(` ${name} -> `) || x.includes(` ${name} link to `));
      if (l === undefined) throw new Error(`${name} not in\n${list.join('\n')}`);
      return l;
    };
    expect(line('bin/')).toMatch(/^drwxr-xr-x 0\/0 /);
    expect(line('bin/suid')).toMatch(/^-rwsr-xr-x 0\/0 +10 /);
    expect(line('bin/sgid')).toMatch(/^-rwx--s--x 0\/0 /);
    expect(line('tmp/')).toMatch(/^drwxrwxrwt 0\/0 /);
    expect(line('shared/')).toMatch(/^drwxrwsr-x 0\/0 /);
    expect(line('home/u/')).toMatch(/^drwx------ 1000\/1001 /);
    expect(line('home/u/file')).toMatch(/^-rw-r--r-- 1000\/1001 +5 /);
    expect(line('link')).toMatch(/^lrwxrwxrwx 0\/0 +0 .* link -> etc\/hosts$/);
    expect(line('hard2')).toMatch(/^hrw-r--r-- 0\/0 +0 .* hard2 link to hard1$/);
    expect(line('hard1')).toMatch(/^-rw-r--r-- 0\/0 +7 /);
    expect(line('fifo')).toMatch(/^prw-r--r-- 0\/0 /);
    expect(line('dev/null')).toMatch(/^crw-rw-rw- 0\/0 +1,3 /);
    expect(line(`${LONG_DIR}/`)).toMatch(/^d/);
    expect(line(LONG_PATH)).toMatch(/^-rw-r--r-- 0\/0 +5 /);
    // Directories carry a trailing slash; whole-second mtimes.
    expect(list.filter((l) => l.startsWith('d')).every((l) => l.endsWith('/'))).toBe(true);
    expect(list.some((l) => / \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d*[1-9]/.test(l))).toBe(false);
  });

  test('xattrs go into PAX SCHILY.xattr records, overlay bookkeeping does not', async () => {
    const out = join(work, 'x-extract');
    await mkdir(out);
    await execa('tar', ['--xattrs', '--xattrs-include=*', '-xpf', '-', '-C', out], { input: tar });
    const records = new Map<string, Record<string, Buffer>>();
    for await (const r of walk(out)) records.set(r.path, { ...(r.xattrs ?? {}) });
    expect(records.get('etc/hosts')?.['user.note']?.toString()).toBe('hello');
    expect(records.get('bin/suid')?.['security.capability']?.toString('hex')).toBe('0100000200200000000000000000000000000000');
    expect(records.get('shared')?.['trusted.overlay.opaque']).toBeUndefined();
    expect(tar.includes(Buffer.from('SCHILY.xattr.user.note=hello\n'))).toBe(true);
    expect(tar.includes(Buffer.from('trusted.overlay'))).toBe(false);
  });

  test('the walk reports xattr lists and values longer than its first buffer (256 bytes) whole', async () => {
    const dir = join(work, 'long-xattrs');
    await mkdir(dir);
    await writeFile(join(dir, 'f'), 'x');
    // 10 names of ~40 bytes (a list of ~400 bytes) and one value of 1,500 bytes (ext4 holds
    // about 4 KiB of xattrs per file).
    const names = Array.from({ length: 10 }, (_, i) => `user.a-rather-long-attribute-name-${String(i).padStart(2, '0')}`);
    for (const n of names) await execa('setfattr', ['-n', n, '-v', n.toUpperCase(), join(dir, 'f')]);
    const big = 'v'.repeat(1500);
    await execa('setfattr', ['-n', 'user.big', '-v', big, join(dir, 'f')]);
    const records = [];
    for await (const r of walk(dir)) records.push(r);
    const xattrs = records.find((r) => r.path === 'f')?.xattrs ?? {};
    expect(Object.keys(xattrs).sort()).toEqual([...names, 'user.big'].sort());
    for (const n of names) expect(xattrs[n]?.toString()).toBe(n.toUpperCase());
    expect(xattrs['user.big']?.toString()).toBe(big);
  });

  test('GNU tar extracts the same files', async () => {
    const out = join(work, 'extract');
    await mkdir(out);
    await execa('tar', ['-xpf', '-', '-C', out], { input: tar });
    expect((await readFile(join(out, 'big.bin'))).equals(expected.big)).toBe(true);
    expect(await readFile(join(out, LONG_PATH), 'utf8')).toBe('deep\n');
    const [a, b] = await Promise.all([stat(join(out, 'hard1')), stat(join(out, 'hard2'))]);
    expect(a.ino).toBe(b.ino);
    expect((await stat(join(out, 'bin/suid'))).mode & 0o7777).toBe(0o4755);
    expect((await stat(join(out, 'tmp'))).mode & 0o7777).toBe(0o1777);
  });

  test('the tar-split regenerates the tar byte for byte', async () => {
    expect(await sha256Stream(regenerateLayer(splitPath, tree))).toBe(desc.diffId);
    expect((await streamBytes(regenerateLayer(splitPath, tree))).equals(tar)).toBe(true);
  });

  test('the tar-split is in vbatts/tar-split format', async () => {
    const lines = gunzipSync(await readFile(splitPath))
      .toString('utf8')
      .split('\n')
      .filter(Boolean);
    const parsed = lines.map(
      (l) => JSON.parse(l) as { type: number; name?: string; size?: number; payload: string | null; position: number },
    );
    parsed.forEach((e, i) => expect(e.position).toBe(i));
    // segment, file, segment, file, ..., final segment (padding + 1024 zero bytes)
    expect(parsed[0]!.type).toBe(2);
    expect(parsed.at(-1)!.type).toBe(2);
    expect(Buffer.from(parsed.at(-1)!.payload!, 'base64').subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
    const big = parsed.find((e) => e.name === 'big.bin')!;
    expect(big).toMatchObject({ type: 1, size: expected.big.length });
    expect(Buffer.from(big.payload!, 'base64').length).toBe(8);
    // Field order and omissions as Go's encoding/json writes them.
    expect(lines.find((l) => l.includes('"name":"bin/"'))).toMatch(/^\{"type":1,"name":"bin\/","payload":null,"position":\d+\}$/);
    expect(lines.find((l) => l.includes('"name":"etc/hosts"'))).toMatch(
      /^\{"type":1,"name":"etc\/hosts","size":20,"payload":"[A-Za-z0-9+/=]{12}","position":\d+\}$/,
    );
    let n = 0;
    for await (const e of readTarSplit(splitPath)) n += e.type === 'file' ? 1 : 0;
    expect(n).toBe(parsed.filter((e) => e.type === 1).length);
  });

  test('deterministic: same tree, same diffID; a copy with the same metadata too', async () => {
    const again = await writeLayer(changesOf(tree), { tarSplitPath: join(work, 'ts2.json.gz') });
    expect(again).toEqual(desc);
    const copy = join(work, 'copy');
    await execa('cp', ['-a', '--', tree, copy]);
    const copied = await writeLayer(changesOf(copy), { tarSplitPath: join(work, 'ts3.json.gz') });
    expect(copied.diffId).toBe(desc.diffId);
  });

  test('sourceDateEpoch clamps mtimes, so later touches do not change the diffID', async () => {
    const epoch = 1_600_000_000;
    const first = await writeLayer(changesOf(tree), { tarSplitPath: join(work, 'c1.json.gz') }, { sourceDateEpoch: epoch });
    expect(first.diffId).not.toBe(desc.diffId);
    await lutimes(join(tree, 'etc/hosts'), 1_800_000_000, 1_800_000_000);
    const c = collector();
    const second = await writeLayer(
      changesOf(tree),
      { tarSplitPath: join(work, 'c2.json.gz'), tarSink: c.sink },
      { sourceDateEpoch: epoch },
    );
    expect(second.diffId).toBe(first.diffId);
    const list = await gnuList(c.bytes());
    expect(list.every((l) => l.includes('2020-09-13'))).toBe(true);
    await lutimes(join(tree, 'etc/hosts'), 1_700_000_000, 1_700_000_000);
  });

  test('whiteouts and opaque directories are written as moby writes them', async () => {
    const changes = changesOf(tree, [
      { after: 'etc/passwd', change: { kind: 'whiteout', name: 'etc/zz-gone' } },
      { after: 'home/u', change: { kind: 'opaque', name: 'home/u' } },
      { after: undefined, change: { kind: 'whiteout', name: 'a-deleted-dir' } },
    ]);
    const c = collector();
    await writeLayer(changes, { tarSplitPath: join(work, 'wh.json.gz'), tarSink: c.sink });
    const list = await gnuList(c.bytes());
    expect(list[0]).toMatch(/^-rw------- 0\/0 +0 1970-01-01 00:00:00 \.wh\.a-deleted-dir$/);
    expect(list).toContainEqual(expect.stringMatching(/^-rw------- 0\/0 +0 1970-01-01 00:00:00 etc\/\.wh\.zz-gone$/));
    // Opaque marker: right after its directory, with the directory's owner and permission bits.
    const i = list.findIndex((l) => l.endsWith(' home/u/'));
    expect(list[i + 1]).toMatch(/^-rwx------ 1000\/1001 +0 1970-01-01 00:00:00 home\/u\/\.wh\.\.wh\.\.opq$/);
  });

  test('an opaque marker without its directory is a bug in the caller, reported', async () => {
    async function* bad(): AsyncGenerator<Change> {
      yield { kind: 'opaque', name: 'nowhere' };
    }
    await expect(writeLayer(bad(), { tarSplitPath: join(work, 'bad.json.gz') })).rejects.toThrow(/opaque marker for "nowhere"/);
  });

  test('a file that changed size between walk and read is an error, and no tar-split is left', async () => {
    const records = [];
    for await (const r of walk(tree)) records.push(r);
    const hosts = records.find((r) => r.path === 'etc/hosts')!;
    async function* lying(): AsyncGenerator<Change> {
      yield { kind: 'entry', name: 'etc/hosts', record: { ...hosts, size: hosts.size + 1 }, source: join(tree, 'etc/hosts') };
    }
    const path = join(work, 'lie.json.gz');
    await expect(writeLayer(lying(), { tarSplitPath: path })).rejects.toThrow(/shrank/);
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    expect((await readdir(work)).filter((n) => n.includes('lie.json.gz'))).toEqual([]);
  });
});
