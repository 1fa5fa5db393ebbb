// walk and applyOps through the helper: every file type, xattrs, tar order, no symlink following.
import { existsSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelperError, applyOps, helperPath, walk } from '../../src/runtime/helper.js';
import type { WalkRecord } from '../../src/runtime/types.js';

let dir: string;

beforeAll(() => {
  if (!existsSync(helperPath())) throw new Error(`${helperPath()} is missing: run \`npm run build:helper\` first`);
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-walk-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(root: string): Promise<WalkRecord[]> {
  const out: WalkRecord[] = [];
  for await (const r of walk(root)) out.push(r);
  return out;
}

async function byPath(root: string): Promise<Map<string, WalkRecord>> {
  return new Map((await collect(root)).map((r) => [r.path, r]));
}

describe('walk', () => {
  test('reports every file type with its metadata', async () => {
    await writeFile(join(dir, 'file'), 'hello');
    await chmod(join(dir, 'file'), 0o640);
    await utimes(join(dir, 'file'), 1_700_000_000.5, 1_700_000_000.5);
    await mkdir(join(dir, 'sub'), { mode: 0o750 });
    await chmod(join(dir, 'sub'), 0o750);
    await symlink('sub/../file', join(dir, 'link'));
    await link(join(dir, 'file'), join(dir, 'hard'));
    await writeFile(join(dir, 'suid'), '#!/bin/sh\n');
    await chmod(join(dir, 'suid'), 0o4755);
    await applyOps([
      { op: 'mknod', path: join(dir, 'fifo'), type: 'p', mode: 0o600, major: 0, minor: 0, uid: 0, gid: 0 },
      { op: 'mknod', path: join(dir, 'whiteout'), type: 'c', mode: 0o644, major: 0, minor: 0, uid: 1000, gid: 1001 },
      { op: 'mknod', path: join(dir, 'block'), type: 'b', mode: 0o660, major: 7, minor: 1, uid: 0, gid: 6 },
      { op: 'mknod', path: join(dir, 'sgid-dev'), type: 'c', mode: 0o2620, major: 1, minor: 3, uid: 5, gid: 5 },
    ]);

    const records = await byPath(dir);
    const file = records.get('file')!;
    expect(file).toMatchObject({ type: 'f', mode: 0o640, uid: 0, gid: 0, size: 5, mtime: 1_700_000_000, mtimeNs: 500_000_000, nlink: 2 });
    expect(file.link).toBeUndefined();
    expect(records.get('hard')).toMatchObject({ type: 'f', ino: file.ino, nlink: 2 });
    expect(records.get('sub')).toMatchObject({ type: 'd', mode: 0o750, size: 0 });
    expect(records.get('link')).toMatchObject({ type: 'l', link: 'sub/../file', size: 0, mode: 0o777 });
    expect(records.get('suid')).toMatchObject({ type: 'f', mode: 0o4755 });
    expect(records.get('fifo')).toMatchObject({ type: 'p', mode: 0o600 });
    expect(records.get('fifo')!.devMajor).toBeUndefined();
    expect(records.get('whiteout')).toMatchObject({ type: 'c', mode: 0o644, devMajor: 0, devMinor: 0, uid: 1000, gid: 1001 });
    expect(records.get('block')).toMatchObject({ type: 'b', devMajor: 7, devMinor: 1, gid: 6 });
    // chown clears setgid on anything but a directory; applyOps puts the mode back as asked.
    expect(records.get('sgid-dev')).toMatchObject({ type: 'c', mode: 0o2620, uid: 5, gid: 5 });
    expect([...records.keys()].sort()).toEqual(['block', 'fifo', 'file', 'hard', 'link', 'sgid-dev', 'sub', 'suid', 'whiteout']);
  });

  test('is depth-first pre-order with children in byte order: tar order, not sorted full paths', async () => {
    // Full-path sorting would put "b-c" before "b/x" ('-' < '/'); a tar lists b's children right after b.
    for (const f of ['b-c', 'a', 'Z', 'b/x', 'b/y/z', 'b/Y', '_', 'é', 'e']) {
      await mkdir(join(dir, f, '..'), { recursive: true });
      await writeFile(join(dir, f), f);
    }
    const paths = (await collect(dir)).map((r) => r.path);
    expect(paths).toEqual(['Z', '_', 'a', 'b', 'b/Y', 'b/x', 'b/y', 'b/y/z', 'b-c', 'e', 'é']);
  });

  test('does not follow symlinks, to files or to directories', async () => {
    await mkdir(join(dir, 'real'));
    await writeFile(join(dir, 'real', 'inside'), '');
    await symlink('real', join(dir, 'dirlink'));
    await symlink('/', join(dir, 'rootlink'));
    const paths = (await collect(dir)).map((r) => r.path);
    expect(paths).toEqual(['dirlink', 'real', 'real/inside', 'rootlink']);
  });

  test('JSON-escapes names and link targets', async () => {
    const odd = 'quote" back\\slash\nnewline\ttab\u0001ctl';
    await writeFile(join(dir, odd), '');
    await symlink(`target with "${odd}"`, join(dir, 'oddlink'));
    const records = await byPath(dir);
    expect(records.has(odd)).toBe(true);
    expect(records.get('oddlink')!.link).toBe(`target with "${odd}"`);
  });

  test('reports xattrs set by applyOps, user.* and trusted.overlay.opaque, as raw bytes', async () => {
    await mkdir(join(dir, 'opaque'));
    await writeFile(join(dir, 'file'), '');
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x22, 0x5c, 0x0a]);
    await applyOps([
      { op: 'setxattr', path: join(dir, 'opaque'), name: 'trusted.overlay.opaque', value: Buffer.from('y') },
      { op: 'setxattr', path: join(dir, 'file'), name: 'user.comment', value: Buffer.from('héllo') },
      { op: 'setxattr', path: join(dir, 'file'), name: 'user.binary', value: binary },
      { op: 'setxattr', path: join(dir, 'file'), name: 'user.empty', value: Buffer.alloc(0) },
    ]);
    const records = await byPath(dir);
    expect(records.get('opaque')!.xattrs).toEqual({ 'trusted.overlay.opaque': Buffer.from('y') });
    const xattrs = records.get('file')!.xattrs!;
    expect(Object.keys(xattrs)).toEqual(['user.binary', 'user.comment', 'user.empty']);
    expect(xattrs['user.binary']).toEqual(binary);
    expect(xattrs['user.comment']!.toString()).toBe('héllo');
    expect(xattrs['user.empty']).toEqual(Buffer.alloc(0));
  });

  test('reports a name, link target or xattr name that is not UTF-8 with each such byte as a lone surrogate (src/fs/bytename.ts)', async () => {
    await mkdir(join(dir, 'sub'));
    const bad = Buffer.concat([Buffer.from(join(dir, 'sub') + '/bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('é')]);
    await writeFile(bad, '');
    await symlink(Buffer.from([0x61, 0xe9]), join(dir, 'sub', 'lnk'));
    await applyOps([{ op: 'setxattr', path: bad, name: Buffer.concat([Buffer.from('user.'), Buffer.of(0xff)]), value: Buffer.from('v') }]);
    const records = await collect(dir);
    expect(records.map((r) => r.path)).toEqual(['sub', 'sub/bad-\udcff\udcfeé', 'sub/lnk']);
    expect(records[2]!.link).toBe('a\udce9');
    // An xattr name too (the walk refused it: "an xattr name ... is not valid UTF-8").
    expect(records[1]!.xattrs).toEqual({ 'user.\udcff': Buffer.from('v') });
  });

  test('an empty directory yields nothing; a missing one is a HelperError', async () => {
    expect(await collect(dir)).toEqual([]);
    await expect(collect(join(dir, 'missing'))).rejects.toBeInstanceOf(HelperError);
  });

  test('streams: stopping early ends the helper, even on a large tree', async () => {
    for (let d = 0; d < 20; d++) {
      await mkdir(join(dir, `d${d}`));
      await Promise.all(Array.from({ length: 500 }, (_, f) => writeFile(join(dir, `d${d}`, `f${f}-${'x'.repeat(200)}`), '')));
    }
    let seen = 0;
    for await (const r of walk(dir)) {
      expect(r.path).toBe('d0');
      seen++;
      break;
    }
    expect(seen).toBe(1);
    // The walk runs in a served helper (served.ts): stopping it ends that, and no walk is left
    // running (one not stopped would block on its full pipe, its output unread).
    const deadline = Date.now() + 5000;
    while ((await walksBelow(dir)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const left = await walksBelow(dir);
    for (const pid of left) process.kill(pid, 'SIGKILL'); // ours: not left behind by a failure
    expect(left).toEqual([]);
    // And a full walk of the same 10,020 entries.
    let count = 0;
    for await (const _ of walk(dir)) count++;
    expect(count).toBe(20 * 501);
  });

  test('walks at once each get their own records, in order, with a slow reader among them', async () => {
    for (const top of ['a', 'b']) {
      for (let d = 0; d < 10; d++) {
        await mkdir(join(dir, top, `d${d}`), { recursive: true });
        await Promise.all(
          Array.from({ length: 400 }, (_, f) => writeFile(join(dir, top, `d${d}`, `${top}-file-with-a-longer-name-${f}`), '')),
        );
      }
    }
    const slow = async (): Promise<string[]> => {
      const paths: string[] = [];
      for await (const r of walk(join(dir, 'a'))) {
        paths.push(r.path);
        if (paths.length % 500 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      return paths;
    };
    const [a, b] = await Promise.all([slow(), collect(join(dir, 'b')).then((rs) => rs.map((r) => r.path))]);
    for (const [top, paths] of [
      ['a', a],
      ['b', b],
    ] as const) {
      expect(paths).toHaveLength(10 * 401);
      expect(paths.every((p) => p.startsWith('d') && (!p.includes('/') || p.includes(`/${top}-file`)))).toBe(true);
      expect(paths[0]).toBe('d0');
      expect(paths.at(-1)).toBe(
        'd9/' +
          [...Array(400).keys()]
            .map((f) => `${top}-file-with-a-longer-name-${f}`)
            .sort()
            .at(-1),
      );
    }
  });
});

describe('applyOps', () => {
  test('setxattr on a symlink sets it on the link itself, never on its target', async () => {
    await writeFile(join(dir, 'target'), '');
    await symlink('target', join(dir, 'link'));
    // user.* is not allowed on symlinks at all: the helper must fail rather than follow.
    await expect(applyOps([{ op: 'setxattr', path: join(dir, 'link'), name: 'user.x', value: Buffer.from('1') }])).rejects.toThrow(
      new RegExp(`^tsbuild-helper: apply-ops: setxattr user.x ${join(dir, 'link')}: Operation not permitted$`),
    );
    await applyOps([{ op: 'setxattr', path: join(dir, 'link'), name: 'trusted.overlay.opaque', value: Buffer.from('y') }]);
    const records = await byPath(dir);
    expect(records.get('target')!.xattrs).toBeUndefined();
    expect(records.get('link')!.xattrs).toEqual({ 'trusted.overlay.opaque': Buffer.from('y') });
  });

  test('mknod over an existing symlink fails and leaves its target alone', async () => {
    await symlink(join(dir, 'elsewhere'), join(dir, 'link'));
    await expect(
      applyOps([{ op: 'mknod', path: join(dir, 'link'), type: 'c', mode: 0o644, major: 0, minor: 0, uid: 0, gid: 0 }]),
    ).rejects.toThrow(/apply-ops: mknod .*link: File exists/);
    expect(existsSync(join(dir, 'elsewhere'))).toBe(false);
    expect((await lstat(join(dir, 'link'))).isSymbolicLink()).toBe(true);
  });

  test('stops at the first failure; earlier ops stay applied, later ones are not attempted', async () => {
    const err = await applyOps([
      { op: 'mknod', path: join(dir, 'first'), type: 'p', mode: 0o644, major: 0, minor: 0, uid: 0, gid: 0 },
      { op: 'mknod', path: join(dir, 'no/such/dir/x'), type: 'p', mode: 0o644, major: 0, minor: 0, uid: 0, gid: 0 },
      { op: 'mknod', path: join(dir, 'third'), type: 'p', mode: 0o644, major: 0, minor: 0, uid: 0, gid: 0 },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelperError);
    expect((err as HelperError).message).toMatch(/mknod .*no\/such\/dir\/x: No such file or directory/);
    expect(existsSync(join(dir, 'first'))).toBe(true);
    expect(existsSync(join(dir, 'third'))).toBe(false);
  });

  test('an empty batch does nothing; a path with a NUL byte is refused before the helper runs', async () => {
    await applyOps([]);
    await expect(applyOps([{ op: 'setxattr', path: `${dir}/a\0b`, name: 'user.x', value: Buffer.from('') }])).rejects.toThrow(/NUL byte/);
  });
});

/**
 * PIDs of served helpers (served.ts) that still have something below `root` open: a walk of it
 * still running, in a child of `tsbuild-helper serve` (a fork, so its command line is serve's),
 * whether or not its serve process is still there.
 */
async function walksBelow(root: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '')).split('\0');
    if (argv[1] !== 'serve') continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    const open = await Promise.all(fds.map((fd) => readlink(`/proc/${entry}/fd/${fd}`).catch(() => '')));
    if (open.some((target) => target === root || target.startsWith(`${root}/`))) found.push(Number(entry));
  }
  return found;
}
