// Shared helpers for the layer tests: temp dirs, change sets from real directories (through the
// native helper's walk, as the snapshot drivers produce them), tars in memory, GNU tar.
import { createHash } from 'node:crypto';
import { chmod, chown, link, lutimes, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { execa } from 'execa';
import { applyOps, walk } from '../../src/runtime/helper.js';
import type { Change } from '../../src/layer/index.js';
import { encodeHeader, END_OF_ARCHIVE, blockPadding, type TarHeader } from '../../src/layer/tarheader.js';

/** A fresh directory under os.tmpdir(); remove it with cleanup(). */
export async function tempDir(prefix = 'tsbuild-layer-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function cleanup(...dirs: string[]): Promise<void> {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

/** Every entry under dir as a Change, in tar order, with optional extra changes spliced in after `after`. */
export async function* changesOf(
  dir: string,
  extra: readonly { after: string | undefined; change: Change }[] = [],
): AsyncGenerator<Change> {
  for (const e of extra) if (e.after === undefined) yield e.change;
  for await (const record of walk(dir)) {
    yield { kind: 'entry', name: record.path, record, source: join(dir, record.path) };
    for (const e of extra) if (e.after === record.path) yield e.change;
  }
}

/** A Writable collecting everything into one Buffer. */
export function collector(): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  return { sink, bytes: () => Buffer.concat(parts) };
}

export function sha256hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function sha256Stream(s: AsyncIterable<unknown>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of s) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

export async function streamBytes(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of s) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** GNU tar's verbose listing of a tar given as bytes. */
export async function gnuList(tar: Buffer): Promise<string[]> {
  const { stdout } = await execa('tar', ['--numeric-owner', '--full-time', '-tvf', '-'], { input: tar });
  return stdout.split('\n').filter(Boolean);
}

/** Recursively lists a directory (relative paths, sorted), to prove nothing was written somewhere. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string, prefix: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const rel = prefix + e.name;
      out.push(rel + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) await visit(join(d, e.name), `${rel}/`);
    }
  };
  await visit(dir, '');
  return out.sort();
}

/** A header with defaults, for building archives by hand. */
export function header(name: string, over: Partial<TarHeader> = {}): TarHeader {
  return {
    type: 'file',
    name: Buffer.from(name),
    linkname: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 1_700_000_000,
    mtimeNs: 0,
    uname: '',
    gname: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
    ...over,
  };
}

/** An archive built by hand from headers and contents (hostile archives included). */
export function buildTar(entries: readonly { h: TarHeader; content?: Buffer }[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const { h, content } of entries) {
    const data = content ?? Buffer.alloc(0);
    parts.push(encodeHeader({ ...h, size: h.type === 'file' ? data.length : 0 }), data, Buffer.alloc(blockPadding(data.length)));
  }
  if (end) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export const LONG_DIR = `${'long-directory-name-'.repeat(6)}x`; // 121 bytes: no USTAR split possible
export const LONG_PATH = `deep/${'a'.repeat(100)}/${'b'.repeat(100)}/${'c'.repeat(60)}.txt`; // > 255 bytes

/**
 * A tree with one of everything a layer can hold, all mtimes fixed (1_700_000_000 + i), so two
 * builds of it are byte-identical. Returns the total overlay2-style size (files once + symlink targets).
 */
export async function makeTree(dir: string): Promise<{ size: number; big: Buffer }> {
  const p = (rel: string): string => join(dir, rel);
  for (const d of ['bin', 'dev', 'etc', 'home/u', 'tmp', 'shared', `${LONG_DIR}`, `deep/${'a'.repeat(100)}/${'b'.repeat(100)}`]) {
    await mkdir(p(d), { recursive: true });
  }
  const big = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  await writeFile(p('etc/hosts'), '127.0.0.1 localhost\n');
  await writeFile(p('etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(p('bin/suid'), '#!/bin/sh\n');
  await chmod(p('bin/suid'), 0o4755);
  await writeFile(p('bin/sgid'), '#!/bin/sh\n');
  await chmod(p('bin/sgid'), 0o2711);
  await chmod(p('tmp'), 0o1777);
  await chmod(p('shared'), 0o2775);
  await writeFile(p('home/u/file'), 'mine\n');
  await chown(p('home/u/file'), 1000, 1001);
  await chmod(p('home/u'), 0o700);
  await chown(p('home/u'), 1000, 1001);
  await writeFile(p('big.bin'), big);
  await writeFile(p('hard1'), 'linked\n');
  await link(p('hard1'), p('hard2'));
  await symlink('etc/hosts', p('link'));
  await writeFile(p(`${LONG_DIR}/f`), 'in a long dir\n');
  await writeFile(p(LONG_PATH), 'deep\n');
  await applyOps([
    { op: 'mknod', path: p('fifo'), type: 'p', mode: 0o644, major: 0, minor: 0, uid: 0, gid: 0 },
    { op: 'mknod', path: p('dev/null'), type: 'c', mode: 0o666, major: 1, minor: 3, uid: 0, gid: 0 },
    { op: 'setxattr', path: p('etc/hosts'), name: 'user.note', value: Buffer.from('hello') },
    {
      op: 'setxattr',
      path: p('bin/suid'),
      name: 'security.capability',
      value: Buffer.from('0100000200200000000000000000000000000000', 'hex'),
    },
    { op: 'setxattr', path: p('shared'), name: 'trusted.overlay.opaque', value: Buffer.from('y') },
  ]);
  // Fixed mtimes; in reverse walk order a directory comes after everything inside it, so its
  // time is not disturbed afterwards.
  const all: string[] = [];
  for await (const r of walk(dir)) all.push(r.path);
  for (let i = all.length - 1; i >= 0; i--) await lutimes(p(all[i]!), 1_700_000_000 + i, 1_700_000_000 + i);
  const size =
    Buffer.byteLength('127.0.0.1 localhost\n') +
    Buffer.byteLength('root:x:0:0:root:/root:/bin/sh\n') +
    2 * Buffer.byteLength('#!/bin/sh\n') +
    Buffer.byteLength('mine\n') +
    big.length +
    Buffer.byteLength('linked\n') +
    'etc/hosts'.length +
    Buffer.byteLength('in a long dir\n') +
    Buffer.byteLength('deep\n');
  return { size, big };
}
